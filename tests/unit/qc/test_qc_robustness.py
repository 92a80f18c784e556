"""Bad input never crashes the engine: arbitrary text, shuffled documents, odd times."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medbrain.qc import check_record
from medbrain.qc.parse import DOCUMENT_TYPES, record_from_mapping
from tests.unit.qc.helpers import load_fixture, registry

CHARS = st.sampled_from(
    list(
        "主诉现病史既往个人婚育月经家族体格检查专科辅助初步诊断出院记录签名医师过敏否认左右侧病危病重"
    )
    + list("0123456789:：-./年月日时分 \n\t，。、【】()")
    + list(string.ascii_letters)
)
TEXT = st.text(CHARS, min_size=0, max_size=400)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(DOCUMENT_TYPES), TEXT, min_size=1, max_size=6),
    st.sampled_from(["realtime", "final"]),
)
def test_arbitrary_documents_never_crash(documents: dict[str, str], stage: str) -> None:
    if not any(t.strip() for t in documents.values()):
        documents = {**documents, "admission": "主诉:咳嗽3天"}
    report = check_record(record_from_mapping({"documents": documents}), registry(), stage=stage)
    assert 0.0 <= report.score <= 100.0
    for finding in report.defects:
        assert finding.category and finding.message


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=4000),
    st.sampled_from(["admission", "course", "discharge", "orders", "labs"]),
)
def test_truncated_real_documents_never_crash(cut_a: int, cut_b: int, doc: str) -> None:
    body = load_fixture("02_hernia_clean")
    text = body["documents"][doc]
    lo, hi = sorted((cut_a % (len(text) + 1), cut_b % (len(text) + 1)))
    body["documents"][doc] = text[:lo] + text[hi:]
    if not body["documents"][doc].strip():
        body["documents"][doc] = "x"
    report = check_record(record_from_mapping(body), registry())
    assert report.grade in ("甲", "乙", "丙")


def test_times_in_impossible_order_are_defects() -> None:
    body = load_fixture("08_death_late")
    body["documents"]["death"] = body["documents"]["death"].replace(
        "死亡时间:2024年11月11日19时05分", "死亡时间:2024年11月10日19时05分"
    )
    report = check_record(record_from_mapping(body), registry())
    assert "qc.consistency.time-order" in {d.rule_id for d in report.defects}
