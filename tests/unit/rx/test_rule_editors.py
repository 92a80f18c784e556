"""Who may change prescription-review rules: admins and the pharmacists listed in
``MEDBRAIN_RX_RULE_EDITORS`` (default: the demo ``pharmacist``)."""

from __future__ import annotations

import pytest

from medbrain.api.deps import Principal
from medbrain.api.routers.rx_workbench import can_edit_rules
from medbrain.core.config import Settings


def _user(username: str, role: str) -> Principal:
    return Principal(user_id=1, username=username, display_name=username, role=role,
                     patient_id=None, csrf_token="x", via="cookie")  # fmt: skip


def test_editor_list_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDBRAIN_RX_RULE_EDITORS", raising=False)
    assert Settings.from_env().rx_rule_editors == ("pharmacist",)
    monkeypatch.setenv("MEDBRAIN_RX_RULE_EDITORS", " zhang.lead , ,li ")
    settings = Settings.from_env()
    assert settings.rx_rule_editors == ("zhang.lead", "li")
    assert can_edit_rules(_user("zhang.lead", "pharmacist"), settings)
    assert not can_edit_rules(_user("pharmacist", "pharmacist"), settings)
    assert can_edit_rules(_user("root", "admin"), settings)
    assert not can_edit_rules(_user("zhang.lead", "doctor"), settings)  # a listed name alone
    monkeypatch.setenv("MEDBRAIN_RX_RULE_EDITORS", "")
    assert Settings.from_env().rx_rule_editors == ()  # admins only
