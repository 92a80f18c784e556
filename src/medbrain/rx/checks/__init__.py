"""The review checks: one function per check kind, each returning :class:`Finding` s.

Every check reads its rules from the knowledge (``knowledge/rx/*.yaml``) and cites the row's
``source`` as evidence; none hold clinical numbers of their own. ``CHECKS`` lists them in the
order they run; a hospital disables a rule by id in its policy, not by editing this list.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号) 第十三–十五条 (合法性、规范性、适宜性审核);
《处方管理办法》(卫生部令第53号, 2007) 第十九条, 第三十五条;
《抗菌药物临床应用管理办法》(卫生部令第84号, 2012) 第二十四条, 第二十八条.
"""

from __future__ import annotations

from collections.abc import Callable

from medbrain.core.findings import Finding
from medbrain.rx.checks.allergy import check_allergy
from medbrain.rx.checks.context import Context, make_context, make_finding
from medbrain.rx.checks.contraindication import check_contraindication
from medbrain.rx.checks.dose import check_dose
from medbrain.rx.checks.duplication import check_duplication
from medbrain.rx.checks.incompatibility import check_incompatibility
from medbrain.rx.checks.interaction import check_interaction
from medbrain.rx.checks.populations import (
    check_age,
    check_hepatic,
    check_lactation,
    check_pregnancy,
    check_renal,
)
from medbrain.rx.checks.stewardship import check_antimicrobial, check_indication
from medbrain.rx.checks.supply import check_duration, check_quantity
from medbrain.rx.checks.unknown import check_unknown
from medbrain.rx.checks.usage import check_frequency, check_route

CHECKS: tuple[tuple[str, Callable[[Context], list[Finding]]], ...] = (
    ("unknown_drug", check_unknown),
    ("allergy", check_allergy),
    ("contraindication", check_contraindication),
    ("interaction", check_interaction),
    ("duplication", check_duplication),
    ("dose", check_dose),
    ("frequency", check_frequency),
    ("route", check_route),
    ("duration", check_duration),
    ("quantity", check_quantity),
    ("renal", check_renal),
    ("hepatic", check_hepatic),
    ("age", check_age),
    ("pregnancy", check_pregnancy),
    ("lactation", check_lactation),
    ("indication", check_indication),
    ("antimicrobial", check_antimicrobial),
    ("incompatibility", check_incompatibility),
)


__all__ = ["CHECKS", "Context", "make_context", "make_finding"]
