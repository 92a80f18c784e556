"""Rare-disease case input (DESIGN.md §3 ``medbrain rare rank``) and its validation.

A case is ``{"hpo": [...], "excluded_hpo": [...], "text": "...", "sex": "...",
"age_years": 70}``; every field is optional but at least one phenotype must remain after
reading ``hpo`` and ``text``. Unknown ids are refused (all listed at once); obsolete ids are
mapped to their replacement (``replaced_by`` in HPO) and reported.

References
----------
- Köhler S, et al. The Human Phenotype Ontology in 2021. Nucleic Acids Res 2021;49:D1207-17
  (obsolete terms carry ``replaced_by``).
- GA4GH Phenopacket schema v2: ``phenotypicFeatures[].excluded``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medbrain.core.errors import InputError
from medbrain.core.i18n import t
from medbrain.rare.knowledge import RareKnowledge
from medbrain.rare.labs import (
    LabHpoTable,
    LabPhenotype,
    default_lab_hpo,
    phenotypes_from_labs,
    read_lab_values,
)
from medbrain.rare.ontology import PhenotypeIndex, hpo_id
from medbrain.rare.text import TextMatch, extract_phenotypes

HPO_PATTERN = re.compile(r"^HP:\d{7}$")
SEXES = {
    "male": "male",
    "m": "male",
    "男": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "other": "other",
    "unknown": "unknown",
    "": "unknown",
}


@dataclass(frozen=True, slots=True)
class Replacement:
    """An obsolete id from the input and the current term used instead."""

    obsolete: str
    replacement: str


@dataclass(frozen=True, slots=True)
class RareCase:
    """A validated case: current HPO term numbers, observed and excluded."""

    observed: tuple[int, ...]
    excluded: tuple[int, ...]
    sex: str | None = None
    age_years: float | None = None
    replaced: tuple[Replacement, ...] = ()
    text_matches: tuple[TextMatch, ...] = field(default=())
    lab_matches: tuple[LabPhenotype, ...] = field(default=())


def _ids(
    raw: Any, source: str, name: str, index: PhenotypeIndex, lang: str
) -> tuple[list[int], list[Replacement]]:
    if raw is None:
        return [], []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InputError(source, name, t("rare.error.not_list", lang))
    malformed = [x for x in raw if not HPO_PATTERN.match(x.strip())]
    if malformed:
        raise InputError(source, name, t("rare.error.bad_id", lang, ids=", ".join(malformed)))
    numbers: list[int] = []
    replaced: list[Replacement] = []
    unknown: list[str] = []
    dead: list[str] = []
    for text in raw:
        number = int(text.strip()[3:])
        if number in index.term_row:
            numbers.append(number)
        elif number in index.replaced_by:
            target = index.replaced_by[number]
            new = int(target[3:]) if target and HPO_PATTERN.match(target) else None
            if new is None or new not in index.term_row:
                dead.append(text.strip())
            else:
                numbers.append(new)
                replaced.append(Replacement(text.strip(), hpo_id(new)))
        else:
            unknown.append(text.strip())
    if unknown:
        raise InputError(source, name, t("rare.error.unknown", lang, ids=", ".join(unknown)))
    if dead:
        raise InputError(source, name, t("rare.error.obsolete", lang, ids=", ".join(dead)))
    return numbers, replaced


def contradictions(
    observed: Sequence[int], excluded: Sequence[int], index: PhenotypeIndex
) -> list[tuple[int, int]]:
    """``(excluded, observed)`` term-number pairs where the excluded term is the observed one
    or one of its ancestors: a patient cannot lack a feature they show (excluding a
    narrower term, *focal seizure* beside observed *seizure*, is fine)."""
    pairs = []
    for e in dict.fromkeys(excluded):
        row = index.term_row[e]
        for o in dict.fromkeys(observed):
            if row in index.ancestors[index.term_row[o]]:
                pairs.append((e, o))
    return pairs


def parse_case(
    document: Any,
    index: PhenotypeIndex,
    knowledge: RareKnowledge,
    *,
    source: str = "case",
    prefix: str = "",
    lang: str = "zh",
    lab_table: LabHpoTable | None = None,
) -> RareCase:
    """Validate one case document; raise :class:`InputError` naming the field.

    ``labs`` (``[{"loinc", "value", "unit"}]``) become phenotypes through the lab → HPO
    table (:mod:`medbrain.rare.labs`): abnormal results observed, measured normal excluded.
    """
    if not isinstance(document, dict):
        raise InputError(source, prefix or "$", t("rare.error.not_object", lang))
    observed, replaced = _ids(document.get("hpo"), source, f"{prefix}hpo", index, lang)
    excluded, replaced2 = _ids(
        document.get("excluded_hpo"), source, f"{prefix}excluded_hpo", index, lang
    )
    conflicts = contradictions(observed, excluded, index)
    if conflicts:
        pairs = ", ".join(f"{hpo_id(e)} ⊇ {hpo_id(o)}" for e, o in conflicts)
        raise InputError(
            source, f"{prefix}excluded_hpo", t("rare.error.contradiction", lang, pairs=pairs)
        )
    matches: list[TextMatch] = []
    text = document.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise InputError(source, f"{prefix}text", t("rare.error.text", lang))
        matches = extract_phenotypes(text, index, knowledge)
    for m in matches:
        (excluded if m.excluded else observed).append(int(m.hpo[3:]))
    sex_raw = document.get("sex")
    sex = None
    if sex_raw is not None:
        if not isinstance(sex_raw, str) or sex_raw.strip().lower() not in SEXES:
            raise InputError(source, f"{prefix}sex", t("rare.error.sex", lang))
        sex = SEXES[sex_raw.strip().lower()]
    lab_matches: list[LabPhenotype] = []
    if document.get("labs") is not None:
        labs = read_lab_values(document["labs"], source, f"{prefix}labs")
        table = lab_table if lab_table is not None else default_lab_hpo()
        lab_matches = [
            p
            for p in phenotypes_from_labs(labs, table, sex=sex, source=source)
            if int(p.hpo[3:]) in index.term_row
        ]
        for p in lab_matches:
            (excluded if p.excluded else observed).append(int(p.hpo[3:]))
    age = document.get("age_years")
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age <= 130
    ):
        raise InputError(source, f"{prefix}age_years", t("rare.error.age", lang))
    observed_unique = tuple(dict.fromkeys(observed))
    # what text or labs exclude but the record shows ("无发热" in one note, "高热" in another)
    # is dropped; the explicit lists were refused above
    dropped = {e for e, _ in contradictions(observed_unique, excluded, index)}
    excluded_unique = tuple(n for n in dict.fromkeys(excluded) if n not in dropped)
    if not observed_unique:
        raise InputError(source, f"{prefix}hpo", t("rare.error.empty", lang))
    return RareCase(
        observed=observed_unique,
        excluded=excluded_unique,
        sex=sex,
        age_years=float(age) if age is not None else None,
        replaced=tuple(replaced + replaced2),
        text_matches=tuple(matches),
        lab_matches=tuple(lab_matches),
    )
