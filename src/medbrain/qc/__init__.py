"""EMR quality control: parse Chinese inpatient records, run the rule library, score.

Entry points: :func:`read_record_dir` / :func:`record_from_mapping` (input),
:func:`load_qc_knowledge` + :class:`RuleRegistry` (rules as data, hospital overrides),
:func:`check_record` (pure engine → :class:`QCReport`), :func:`compute_indicators` (2021
national indicators over any set of checked records), :mod:`medbrain.qc.corpus` (seeded
labelled synthetic records).

References
----------
DESIGN.md §3 ``medbrain qc check``; 《病历书写基本规范》(卫医政发〔2010〕11号);
《病案管理质量控制指标(2021年版)》(国卫办医函〔2021〕28号).
"""

from medbrain.qc.engine import QCReport, check_record
from medbrain.qc.indicators import Indicator, compute_indicators
from medbrain.qc.model import Document, Meta, Note, Record, Section
from medbrain.qc.parse import read_record_dir, record_from_mapping
from medbrain.qc.registry import CATEGORIES, QCKnowledge, RuleRegistry, load_qc_knowledge

__all__ = [
    "CATEGORIES",
    "Document",
    "Indicator",
    "Meta",
    "Note",
    "QCKnowledge",
    "QCReport",
    "Record",
    "RuleRegistry",
    "Section",
    "check_record",
    "compute_indicators",
    "load_qc_knowledge",
    "read_record_dir",
    "record_from_mapping",
]
