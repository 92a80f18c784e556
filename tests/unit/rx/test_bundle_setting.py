"""A FHIR Bundle's Encounter.class decides the setting, and with it the supply limit."""

from typing import Any

import pytest

from medbrain.rx.knowledge import load_rx_knowledge
from medbrain.rx.review import review


def _bundle(encounter_class: str | None, route_text: str = "口服") -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "p",
                "gender": "male",
                "birthDate": "1970-01-01",
            }
        },
        {"resource": {"resourceType": "Condition", "id": "c", "code": {"text": "急性扁桃体炎"}}},
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "m",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/p"},
                "authoredOn": "2026-11-01",
                "medicationCodeableConcept": {"text": "阿莫西林胶囊"},
                "dosageInstruction": [
                    {
                        "route": {"text": route_text},
                        "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                        "doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "g"}}],
                    }
                ],
                "dispenseRequest": {"expectedSupplyDuration": {"value": 10, "unit": "d"}},
            }
        },
    ]
    if encounter_class is not None:
        entries.append(
            {
                "resource": {
                    "resourceType": "Encounter",
                    "id": "e",
                    "status": "finished",
                    "class": {"code": encounter_class},
                }
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _supply_rules(encounter_class: str | None) -> set[str]:
    result = review(_bundle(encounter_class), load_rx_knowledge(None))
    return {f.rule_id for f in result.findings if f.rule_id.startswith("rx.duration.supply")}


def test_inpatient_encounter_is_not_held_to_the_outpatient_supply_limit() -> None:
    assert _supply_rules("IMP") == set()


@pytest.mark.parametrize("encounter_class", ["EMER", None])
def test_emergency_or_unknown_setting_keeps_the_supply_check(encounter_class: str | None) -> None:
    assert _supply_rules(encounter_class)


def test_rectal_route_written_in_full_is_understood() -> None:
    result = review(_bundle("IMP", route_text="直肠给药"), load_rx_knowledge(None))
    assert result.verdict in ("pass", "warn", "block")
