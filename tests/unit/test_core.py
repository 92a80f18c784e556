from pathlib import Path

import pytest

from medbrain.core.config import Settings
from medbrain.core.errors import InputError
from medbrain.core.findings import (
    Evidence,
    Finding,
    Severity,
    apply_review_threshold,
    sort_findings,
)
from medbrain.core.i18n import catalog, t


def _finding(rule_id: str, severity: Severity, confidence: float = 1.0) -> Finding:
    return Finding(
        rule_id=rule_id,
        category="interaction",
        severity=severity,
        message="m",
        confidence=confidence,
        evidence=(Evidence(source="label 2020 §4"),),
    )


def test_findings_sort_by_severity_then_rule_id() -> None:
    ordered = sort_findings(
        [
            _finding("b", Severity.INFO),
            _finding("c", Severity.CRITICAL),
            _finding("a", Severity.INFO),
        ]
    )
    assert [f.rule_id for f in ordered] == ["c", "a", "b"]


def test_review_threshold_marks_only_low_confidence() -> None:
    marked = apply_review_threshold(
        [_finding("a", Severity.WARNING, 0.5), _finding("b", Severity.WARNING, 0.9)], threshold=0.7
    )
    assert [f.needs_review for f in marked] == [True, False]


def test_confidence_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        _finding("a", Severity.INFO, 1.5)


def test_finding_dict_matches_design_contract() -> None:
    out = Finding(
        rule_id="rx.x",
        category="dose",
        severity=Severity.WARNING,
        message="m",
        extra={"drugs": ["阿莫西林"]},
        evidence=(Evidence(document="course", quote="q"),),
    ).to_dict()
    assert set(out) >= {
        "rule_id",
        "category",
        "severity",
        "message",
        "suggestion",
        "evidence",
        "confidence",
        "needs_review",
        "drugs",
    }
    assert out["evidence"] == [{"document": "course", "quote": "q"}]


def test_every_message_has_zh_and_en() -> None:
    for key, value in catalog().items():
        assert value["zh"] and value["en"], key


def test_message_placeholders_are_filled() -> None:
    assert "3" in t("login.rate_limited", "en", minutes=3)
    assert t("nav.patients", "zh") == "患者"


def test_settings_refuse_bad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDBRAIN_MAX_UPLOAD_MB", "lots")
    with pytest.raises(InputError, match="MEDBRAIN_MAX_UPLOAD_MB"):
        Settings.from_env()
    monkeypatch.setenv("MEDBRAIN_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("MEDBRAIN_LANG", "fr")
    with pytest.raises(InputError, match="MEDBRAIN_LANG"):
        Settings.from_env()


def test_settings_default_database_lives_in_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDBRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("MEDBRAIN_DATABASE_URL", raising=False)
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'medbrain.db'}"
