"""Drug rows added in 2026.11: label doses pass, doses above the label's maximum are caught,
hidden Western ingredients in Chinese patent medicines are counted, and every row is sourced."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from medbrain.rx import load_rx_knowledge, review
from medbrain.rx.names import resolve_name

KB = load_rx_knowledge(None)
ADULT = {
    "age_years": 50,
    "sex": "male",
    "weight_kg": 70,
    "height_cm": 172,
    "diagnoses": ["肺部真菌感染"],
}


def _item(drug: str, dose: float, unit: str, route: str, freq: str, days: int = 5) -> Any:
    return {"drug": drug, "dose": dose, "unit": unit, "route": route, "frequency": freq,
            "days": days}  # fmt: skip


def _rules(*items: dict[str, Any]) -> list[str]:
    document = {
        "patient": ADULT,
        "setting": "inpatient",
        "consultation": True,
        "items": list(items),
    }
    result = review(document, KB)
    return [f.rule_id for f in result.findings]


# (label dose that must pass, dose above the label maximum)
CASES = [
    (_item("阿哌沙班片", 5, "mg", "po", "bid"), _item("阿哌沙班片", 15, "mg", "po", "bid")),
    (_item("氢溴酸西酞普兰片", 20, "mg", "po", "qd"), _item("氢溴酸西酞普兰片", 60, "mg", "po", "qd")),
    (_item("盐酸度洛西汀肠溶胶囊", 60, "mg", "po", "qd"),
     _item("盐酸度洛西汀肠溶胶囊", 90, "mg", "po", "bid")),
    (_item("注射用帕瑞昔布钠", 40, "mg", "iv", "bid", 3),
     _item("注射用帕瑞昔布钠", 40, "mg", "iv", "q6h", 3)),
    (_item("利拉鲁肽注射液", 1.2, "mg", "ih", "qd"), _item("利拉鲁肽注射液", 3, "mg", "ih", "qd")),
    (_item("噻托溴铵粉吸入剂", 18, "ug", "吸入", "qd"),
     _item("噻托溴铵粉吸入剂", 18, "ug", "吸入", "bid")),
    (_item("加巴喷丁胶囊", 300, "mg", "po", "tid"), _item("加巴喷丁胶囊", 1600, "mg", "po", "tid")),
    (_item("伏立康唑片", 200, "mg", "po", "q12h"), _item("伏立康唑片", 600, "mg", "po", "q12h")),
    (_item("鼻炎康片", 4, "片", "po", "tid"), _item("鼻炎康片", 6, "片", "po", "tid")),
    (_item("注射用氨苄西林钠", 2, "g", "ivgtt", "q6h"), _item("注射用氨苄西林钠", 4, "g", "ivgtt", "q6h")),
    (_item("连花清瘟胶囊", 4, "粒", "po", "tid"), _item("连花清瘟胶囊", 6, "粒", "po", "tid")),
    (_item("恩替卡韦片", 0.5, "mg", "po", "qd"), _item("恩替卡韦片", 1, "mg", "po", "bid")),
    (_item("沙美特罗替卡松粉吸入剂", 1, "吸", "吸入", "bid"),
     _item("沙美特罗替卡松粉吸入剂", 2, "吸", "吸入", "bid")),
]  # fmt: skip


@pytest.mark.parametrize(("ok", "too_much"), CASES, ids=[c[0]["drug"] for c in CASES])
def test_label_dose_passes_and_above_maximum_is_a_dose_finding(
    ok: dict[str, Any], too_much: dict[str, Any]
) -> None:
    assert _rules(ok) == []
    assert any(r.startswith("rx.dose.") for r in _rules(too_much))


def test_hidden_chlorphenamine_in_biyankang_duplicates_plain_chlorphenamine() -> None:
    rules = _rules(
        _item("鼻炎康片", 4, "片", "po", "tid"), _item("马来酸氯苯那敏片", 4, "mg", "po", "tid")
    )
    assert "rx.duplication.same-ingredient" in rules


def test_sucralfate_chelates_a_fluoroquinolone() -> None:
    rules = _rules(
        _item("左氧氟沙星片", 0.5, "g", "po", "qd"), _item("硫糖铝片", 1, "g", "po", "qid")
    )
    assert rules == ["rx.interaction.fluoroquinolone-cation"]


def test_two_qt_prolonging_drugs_added_now_interact() -> None:
    rules = _rules(
        _item("氢溴酸西酞普兰片", 20, "mg", "po", "qd"),
        _item("硫酸羟氯喹片", 200, "mg", "po", "bid"),
    )
    assert rules == ["rx.interaction.qt-qt"]


@pytest.mark.parametrize(
    ("name", "drug_id"),
    [
        ("注射用阿莫西林钠克拉维酸钾", "amoxicillin_clavulanate"),
        ("吸入用硫酸沙丁胺醇溶液", "salbutamol"),
        ("吸入用布地奈德混悬液", "budesonide_inhaled"),
        ("咳特灵胶囊", "ketelin"),
        ("Eliquis", "apixaban"),
    ],
)
def test_names_resolve(name: str, drug_id: str) -> None:
    found = resolve_name(name, KB)
    assert found is not None and found.drug_id == drug_id


def test_nebulised_suspension_is_an_inhaled_form_not_an_oral_one() -> None:
    assert _rules(_item("吸入用布地奈德混悬液", 1, "mg", "雾化吸入", "bid")) == []


def test_formulary_has_grown_and_every_row_cites_a_source() -> None:
    text = resources.files("medbrain.knowledge").joinpath("rx/drugs.yaml").read_text("utf-8")
    rows = yaml.safe_load(text)["drugs"]
    assert len(rows) == len(KB.drugs) >= 275
    assert all(isinstance(r.get("source"), str) and len(r["source"]) > 20 for r in rows)
    patent = [d for d in KB.drugs.values() if "chinese_patent_medicine" in d.classes]
    assert {"biyankang", "ketelin", "vc_yinqiao"} <= {d.id for d in patent if d.components}
