"""Prescription review engine (DESIGN.md §3 ``medbrain rx review``): pure, data in → findings out.

References
----------
《医疗机构处方审核规范》(国卫办医发〔2018〕14号); 《处方管理办法》(卫生部令第53号, 2007);
《抗菌药物临床应用管理办法》(卫生部令第84号, 2012).
"""

from medbrain.rx.knowledge import RxKnowledge, load_rx_knowledge
from medbrain.rx.parse import parse_prescription
from medbrain.rx.review import ReviewResult, review, review_prescription

__all__ = [
    "ReviewResult",
    "RxKnowledge",
    "load_rx_knowledge",
    "parse_prescription",
    "review",
    "review_prescription",
]
