"""Drug-name resolution: Chinese/English generic, brands, synonyms, full/half width."""

from __future__ import annotations

import pytest

from medbrain.rx import load_rx_knowledge
from medbrain.rx.names import resolve_name

KB = load_rx_knowledge()


@pytest.mark.parametrize(
    ("written", "drug_id"),
    [
        ("阿莫西林", "amoxicillin"),
        ("阿莫西林胶囊", "amoxicillin"),
        ("阿莫西林胶囊(0.25g)", "amoxicillin"),
        ("阿莫西林胶囊（０．２５ｇ）", "amoxicillin"),
        ("Amoxicillin", "amoxicillin"),
        ("AMOXIL", "amoxicillin"),
        ("注射用头孢曲松钠", "ceftriaxone"),
        ("罗氏芬", "ceftriaxone"),
        ("盐酸左氧氟沙星注射液", "levofloxacin"),
        ("左氧氟沙星片 0.5g", "levofloxacin"),
        ("苯磺酸氨氯地平片", "amlodipine"),
        ("Norvasc", "amlodipine"),
        ("amlodipine besylate", "amlodipine"),
        ("硝苯地平控释片", "nifedipine_cr"),
        ("硝苯地平片", "nifedipine"),
        ("格列齐特缓释片", "gliclazide_mr"),
        ("阿司匹林肠溶片", "aspirin"),
        ("拜阿司匹灵", "aspirin"),
        ("扑热息痛", "paracetamol"),
        ("acetaminophen", "paracetamol"),
        ("维C银翘片", "vc_yinqiao"),
        ("感冒灵颗粒", "ganmaoling"),
        ("新康泰克", "xinkangtaike"),
        ("消渴丸", "xiaokewan"),
        ("诺和灵30R", "insulin_premix_30"),
        ("甘精胰岛素注射液", "insulin_glargine"),
        ("0.9%氯化钠注射液", "sodium_chloride_09"),
        ("metoprolol succinate", "metoprolol"),
        ("Lipitor", "atorvastatin"),
        ("硫酸氢氯吡格雷片", "clopidogrel"),
    ],
)
def test_names_resolve(written: str, drug_id: str) -> None:
    resolution = resolve_name(written, KB)
    assert resolution is not None, written
    assert resolution.drug_id == drug_id


@pytest.mark.parametrize("written", ["神奇消炎胶囊", "复方对乙酰氨基酚片", "XYZ-123", "片"])
def test_unknown_names_stay_unknown(written: str) -> None:
    assert resolve_name(written, KB) is None


def test_dictionary_size_and_every_drug_has_a_source() -> None:
    assert len(KB.drugs) >= 120
    assert all(d.source for d in KB.drugs.values())
    assert all(d.zh and d.en for d in KB.drugs.values())
