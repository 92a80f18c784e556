"""`medbrain llm check` and `medbrain llm serve-local` error handling, through Typer's runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medbrain.cli import app
from medbrain.llm import local
from tests.unit.llm.fake_server import FakeLLM

runner = CliRunner()


def test_check_without_a_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDBRAIN_LLM_URL", raising=False)
    result = runner.invoke(app, ["llm", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["configured"] is False and report["available"] is False
    assert "local_server" in report


def test_check_reports_a_reachable_local_server(
    fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDBRAIN_LLM_URL", fake_llm.url)
    monkeypatch.delenv("MEDBRAIN_LLM_MODEL", raising=False)
    result = runner.invoke(app, ["llm", "check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["available"] is True
    assert report["model"] == "fake-model"
    assert report["deidentify"] is False  # loopback: data stays on this host


def test_bad_llm_setting_exits_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDBRAIN_LLM_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("MEDBRAIN_LLM_DEID", "sometimes")
    result = runner.invoke(app, ["llm", "check", "--json"])
    assert result.exit_code == 2
    assert "MEDBRAIN_LLM_DEID" in result.stderr and result.stdout == ""


def test_serve_local_without_packages_exits_2_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        local, "unavailable_reason", lambda: "not installed: xllamacpp (pip install xllamacpp)"
    )
    result = runner.invoke(app, ["llm", "serve-local", "--port", "1"])
    assert result.exit_code == 2
    assert "pip install xllamacpp" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
