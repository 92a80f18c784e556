"""Parse and validate a prescription (MedBrain JSON or a FHIR R4 Bundle).

Impossible or unreadable values raise :class:`~medbrain.core.errors.InputError` naming the
field (``patient.age_years``, ``items[2].dose``); facts that are merely missing (a child's
weight) are left for the checks to report as findings.

References
----------
DESIGN.md §3 (prescription JSON); HL7 FHIR R4: Bundle, Patient, MedicationRequest
(dosageInstruction.doseAndRate, timing.repeat, route), Condition, Observation (LOINC 2160-0
creatinine, 1742-6 ALT, 2823-3 potassium, 29463-7 body weight, 8302-2 body height),
AllergyIntolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from medbrain.core.errors import InputError
from medbrain.rx.hepatic import grade_points
from medbrain.rx.knowledge import Drug, RxKnowledge, normalize_text
from medbrain.rx.model import Item, Patient, Prescription
from medbrain.rx.names import resolve_name
from medbrain.rx.units import (
    COUNT,
    MASS,
    PER_KG,
    VOLUME,
    UnitProblem,
    canonical_route,
    convert_amount,
    form_from_name,
    parse_dose,
    per_day,
    strength_from_text,
)

#: Plausible ranges; values outside are refused as impossible.
RANGES: dict[str, tuple[float, float]] = {
    "age_years": (0.0, 130.0),
    "weight_kg": (0.3, 400.0),
    "height_cm": (20.0, 260.0),
    "creatinine_umol_l": (5.0, 3000.0),
    "alt_u_l": (0.0, 20000.0),
    "ast_u_l": (0.0, 20000.0),
    "potassium_mmol_l": (1.0, 12.0),
    "bilirubin_umol_l": (0.0, 1500.0),
    "albumin_g_l": (5.0, 70.0),
    "inr": (0.5, 20.0),
    "egfr_ml_min": (0.0, 250.0),
    "days": (0.0, 3650.0),
    "quantity": (0.0, 100000.0),
}
_SEX = {
    "male": "male",
    "m": "male",
    "男": "male",
    "男性": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "女性": "female",
    "unknown": None,
    "other": None,
    "未知": None,
}
_SETTINGS = ("outpatient", "emergency", "inpatient")


def _number(value: Any, source: str, field: str, name: str | None = None) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(source, field, "must be a number, not true/false")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InputError(source, field, f"must be a number, got {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(source, field, f"must be a finite number, got {value!r}")
    low, high = RANGES.get(name or field.rsplit(".", 1)[-1], (-math.inf, math.inf))
    if not low <= value <= high:
        raise InputError(source, field, f"impossible value {value:g} (expected {low:g}–{high:g})")
    return float(value)


def _bool(value: Any, source: str, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise InputError(source, field, f"must be true or false, got {value!r}")


def _texts(value: Any, source: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts = [
            p.strip()
            for p in value.replace("、", ",").replace(";", ",").replace("，", ",").split(",")
        ]
        return tuple(p for p in parts if p)
    if isinstance(value, list):
        out = []
        for n, v in enumerate(value):
            if not isinstance(v, str):
                raise InputError(source, f"{field}[{n}]", "must be text")
            if v.strip():
                out.append(v.strip())
        return tuple(out)
    raise InputError(source, field, "must be a list of text")


def _optional_text(value: Any, source: str, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(source, field, "must be text")
    return value


def parse_patient(data: Any, source: str) -> Patient:
    if data is None:
        return Patient()
    if not isinstance(data, Mapping):
        raise InputError(source, "patient", "must be an object")
    sex_raw = data.get("sex")
    if sex_raw is not None and (
        not isinstance(sex_raw, str) or normalize_text(sex_raw) not in _SEX
    ):
        raise InputError(source, "patient.sex", f"must be male or female, got {sex_raw!r}")
    labs_raw = data.get("labs") or {}
    if not isinstance(labs_raw, Mapping):
        raise InputError(source, "patient.labs", "must be an object of numbers")
    labs: dict[str, float] = {}
    for name, value in labs_raw.items():
        number = _number(value, source, f"patient.labs.{name}", str(name))
        if number is not None:
            labs[str(name)] = number
    child_pugh = data.get("child_pugh")
    if child_pugh is not None and (
        not isinstance(child_pugh, str) or child_pugh.upper() not in "ABC" or len(child_pugh) != 1
    ):
        raise InputError(source, "patient.child_pugh", f"must be A, B or C, got {child_pugh!r}")
    return Patient(
        age_years=_number(data.get("age_years"), source, "patient.age_years"),
        sex=_SEX[normalize_text(sex_raw)] if isinstance(sex_raw, str) else None,
        weight_kg=_number(data.get("weight_kg"), source, "patient.weight_kg"),
        height_cm=_number(data.get("height_cm"), source, "patient.height_cm"),
        pregnant=_bool(data.get("pregnant"), source, "patient.pregnant"),
        lactating=_bool(data.get("lactating"), source, "patient.lactating"),
        allergies=_texts(data.get("allergies"), source, "patient.allergies"),
        diagnoses=_texts(data.get("diagnoses"), source, "patient.diagnoses"),
        labs=labs,
        child_pugh=child_pugh.upper() if isinstance(child_pugh, str) else None,
        ascites=grade_points(data.get("ascites"), "patient.ascites", source),
        encephalopathy=grade_points(data.get("encephalopathy"), "patient.encephalopathy", source),
    )


def _amount(
    drug: Drug,
    parsed_value: float,
    family: str,
    factor: float,
    unit: str,
    form: str | None,
    strength: float | None,
    weight_kg: float | None,
    kb: RxKnowledge,
) -> tuple[float | None, str | None, float | None]:
    """Convert a written dose into the drug's unit: (amount, note if impossible, piece strength)."""
    vocab = kb.vocab
    if family == COUNT:
        if drug.unit == "piece":
            return parsed_value, None, 1.0
        candidate_forms = [f for f in vocab.count_units.get(unit, ()) if f in drug.forms]
        if form and form in candidate_forms:
            candidate_forms = [form]
        if strength is None:
            strengths = sorted({s for f in candidate_forms for s in drug.forms[f]})
            if not strengths:
                return None, "no_strength", None
            strength = strengths[0]  # several strengths: the smallest (never a false overdose)
        return parsed_value * strength, None, strength
    if family == PER_KG:
        if weight_kg is None:
            return None, "weight_missing", None
        amount = convert_amount(parsed_value * weight_kg, MASS, drug)
        return amount, None if amount is not None else "unit_incompatible", None
    if family == MASS and drug.unit == "piece" and drug.piece_g:
        return parsed_value * factor / (drug.piece_g * 1000.0), None, 1.0
    if family == VOLUME and drug.unit != "ml":
        concs = drug.per_ml
        if form and form in concs:
            return parsed_value * factor * concs[form], None, None
        if len(set(concs.values())) == 1:
            return parsed_value * factor * next(iter(concs.values())), None, None
        return None, "volume_unknown_concentration", None
    amount = convert_amount(parsed_value * factor, family, drug)
    if amount is None:
        return None, "unit_incompatible", None
    return amount, None, strength


def parse_item(n: int, data: Any, kb: RxKnowledge, source: str, weight_kg: float | None) -> Item:
    field = f"items[{n}]"
    if not isinstance(data, Mapping):
        raise InputError(source, field, "must be an object")
    drug_text = data.get("drug")
    if not isinstance(drug_text, str) or not drug_text.strip():
        raise InputError(source, f"{field}.drug", "drug name is missing")
    resolution = resolve_name(drug_text, kb)
    drug = kb.drugs[resolution.drug_id] if resolution else None
    vocab = kb.vocab

    if data.get("dose") is None:
        raise InputError(source, f"{field}.dose", "dose is missing")
    try:
        parsed = parse_dose(data.get("dose"), data.get("unit"), vocab)
    except UnitProblem as exc:
        where = "unit" if "unit" in str(exc) and "dose text" not in str(exc) else "dose"
        raise InputError(source, f"{field}.{where}", str(exc)) from None

    route_text = data.get("route")
    route: str | None = None
    if route_text not in (None, ""):
        try:
            route = canonical_route(route_text, vocab)
        except UnitProblem as exc:
            raise InputError(source, f"{field}.route", str(exc)) from None
    frequency: str | None = None
    times: float | None = None
    if data.get("frequency") not in (None, ""):
        try:
            frequency, times = per_day(data.get("frequency"), vocab)
        except UnitProblem as exc:
            raise InputError(source, f"{field}.frequency", str(exc)) from None
    days = _number(data.get("days"), source, f"{field}.days", "days")
    quantity = _number(data.get("quantity"), source, f"{field}.quantity", "quantity")
    quantity_unit = data.get("quantity_unit")
    if quantity_unit is not None and not isinstance(quantity_unit, str):
        raise InputError(source, f"{field}.quantity_unit", "must be text")
    group = data.get("group")
    if group is not None and not isinstance(group, str | int):
        raise InputError(source, f"{field}.group", "must be text or a number")
    spec = data.get("spec", data.get("strength"))
    if spec is not None and not isinstance(spec, str | int | float):
        raise InputError(source, f"{field}.spec", "must be text such as '0.25g'")

    form = form_from_name(drug_text, vocab)
    amount: float | None = None
    note: str | None = None
    piece_strength: float | None = None
    if drug is not None:
        if route is None:
            if form and len(vocab.form_routes.get(form, ())) >= 1 and form != "injection":
                route = (
                    vocab.form_routes[form][0]
                    if vocab.form_routes[form][0] in drug.routes
                    else None
                )
            if route is None and len(drug.routes) == 1:
                route = drug.routes[0]
        if form is None and parsed.family == COUNT:
            counted = [f for f in vocab.count_units.get(parsed.unit, ()) if f in drug.forms]
            form = counted[0] if len(counted) == 1 else None
        strength = None
        if spec is not None:
            strength = strength_from_text(str(spec), drug, vocab)
            if strength is None:
                raise InputError(source, f"{field}.spec", f"cannot read strength {spec!r}")
        else:
            strength = strength_from_text(drug_text, drug, vocab)
        amount, note, piece_strength = _amount(
            drug,
            parsed.value,
            parsed.family,
            parsed.factor,
            parsed.unit,
            form,
            strength,
            weight_kg,
            kb,
        )
        if piece_strength is None and strength is not None:
            piece_strength = strength
        if piece_strength is None and drug.unit != "piece":
            forms: list[str] = (
                [form] if form is not None and form in drug.forms else list(drug.forms)
            )
            strengths = sorted({s for f in forms for s in drug.forms.get(f, ())})
            piece_strength = strengths[0] if len(strengths) == 1 else None
        elif drug.unit == "piece":
            piece_strength = 1.0
    return Item(
        index=n,
        drug_text=drug_text.strip(),
        drug=drug,
        route=route,
        route_text=str(route_text) if route_text not in (None, "") else None,
        frequency=frequency,
        per_day=times,
        days=days,
        quantity=quantity,
        quantity_unit=normalize_text(quantity_unit) if isinstance(quantity_unit, str) else None,
        dose_value=parsed.value,
        dose_unit=parsed.unit,
        dose_amount=amount,
        dose_note=note,
        form=form,
        group=str(group) if group is not None else None,
        piece_strength=piece_strength,
        resolution=resolution.method if resolution else None,
    )


def _setting(data: Mapping[str, Any], department: str | None, source: str) -> str:
    raw = data.get("setting")
    if raw is not None:
        if raw not in _SETTINGS:
            raise InputError(source, "setting", f"must be one of {', '.join(_SETTINGS)}")
        return str(raw)
    if department and "急诊" in department:
        return "emergency"
    if department and any(w in department for w in ("病区", "病房", "住院")):
        return "inpatient"
    return "outpatient"


def parse_prescription(data: Any, kb: RxKnowledge, source: str = "prescription") -> Prescription:
    """Validate a DESIGN.md §3 prescription (or a FHIR R4 Bundle) into a :class:`Prescription`.

    Raises
    ------
    InputError
        An impossible or unreadable value; ``field`` names where it is.
    """
    if isinstance(data, Mapping) and data.get("resourceType") == "Bundle":
        data = bundle_to_prescription(data, source)
    if not isinstance(data, Mapping):
        raise InputError(source, "", "must be a JSON object with patient and items")
    patient = parse_patient(data.get("patient"), source)
    department = data.get("department")
    if department is not None and not isinstance(department, str):
        raise InputError(source, "department", "must be text")
    level = data.get("prescriber_level")
    levels = kb.antimicrobial.prescriber_levels
    if level is not None and (not isinstance(level, str) or normalize_text(level) not in levels):
        known = "、".join(sorted(t for t in levels if not t.isascii()))
        raise InputError(source, "prescriber_level", f"unknown title {level!r} (known: {known})")
    items_raw = data.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise InputError(source, "items", "must list at least one drug")
    items = tuple(
        parse_item(n, item, kb, source, patient.weight_kg) for n, item in enumerate(items_raw)
    )
    return Prescription(
        patient=patient,
        items=items,
        department=department,
        prescriber_level=level,
        setting=_setting(data, department, source),
        consultation=_bool(data.get("consultation"), source, "consultation"),
        supply_reason=_optional_text(data.get("supply_reason"), source, "supply_reason"),
        note=_optional_text(data.get("note"), source, "note"),
        source=source,
    )


# --------------------------------------------------------------------------- FHIR R4 Bundle

_LOINC_LABS = {
    "2160-0": "creatinine",  # mg/dL or µmol/L by unit
    "14682-9": "creatinine_umol_l",
    "1742-6": "alt_u_l",
    "1920-8": "ast_u_l",
    "2823-3": "potassium_mmol_l",
    "6298-4": "potassium_mmol_l",
    "29463-7": "weight_kg",
    "3141-9": "weight_kg",
    "8302-2": "height_cm",
}
# FHIR R4 Encounter.class codes (HL7 v3 ActCode) → MedBrain prescription setting.
_ENCOUNTER_SETTINGS = {
    "AMB": "outpatient",
    "VR": "outpatient",
    "HH": "outpatient",
    "EMER": "emergency",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "SS": "inpatient",
}

_FHIR_ROUTES = {
    "26643006": "po",
    "47625008": "iv",
    "78421000": "im",
    "34206005": "sc",
    "37161004": "pr",
}


def _text_of(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
            return str(coding["display"])
    return None


def _age_years(birth: str, on: date | None) -> float | None:
    try:
        born = date.fromisoformat(birth[:10])
    except ValueError:
        return None
    if on is None:
        return None
    return (on - born).days / 365.25


def bundle_to_prescription(bundle: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Map a FHIR R4 Bundle into the MedBrain prescription shape (then validated as usual).

    Age comes from ``Patient.birthDate`` relative to the first ``MedicationRequest.authoredOn``
    (no clock is read); an explicit ``extension`` is not needed.
    """
    patient: dict[str, Any] = {"allergies": [], "diagnoses": [], "labs": {}}
    items: list[dict[str, Any]] = []
    setting: str | None = None
    birth: str | None = None
    authored: date | None = None
    for n, entry in enumerate(bundle.get("entry") or []):
        res = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(res, Mapping):
            raise InputError(source, f"entry[{n}].resource", "missing resource")
        kind = res.get("resourceType")
        where = f"entry[{n}].resource"
        if kind == "Patient":
            if res.get("gender") in ("male", "female"):
                patient["sex"] = res["gender"]
            if isinstance(res.get("birthDate"), str):
                birth = res["birthDate"]
        elif kind == "Encounter":
            # Supply limits differ by setting (《处方管理办法》第十九条), so the class matters.
            code = (res.get("class") or {}).get("code")
            setting = _ENCOUNTER_SETTINGS.get(str(code), setting)
        elif kind == "Condition":
            text = _text_of(res.get("code"))
            if text:
                patient["diagnoses"].append(text)
        elif kind == "AllergyIntolerance":
            text = _text_of(res.get("code"))
            if text:
                patient["allergies"].append(text)
        elif kind == "Observation":
            codes = [
                c.get("code")
                for c in (res.get("code") or {}).get("coding") or []
                if isinstance(c, Mapping)
            ]
            qty = res.get("valueQuantity") or {}
            value = qty.get("value")
            for code in codes:
                name = _LOINC_LABS.get(str(code))
                if name is None or value is None:
                    continue
                if name == "creatinine":
                    unit = str(qty.get("unit") or qty.get("code") or "").lower()
                    name = "creatinine_umol_l"
                    if "mg" in unit:
                        value = round(float(value) * 88.42, 1)
                if name in ("weight_kg", "height_cm"):
                    patient[name] = value
                else:
                    patient["labs"][name] = value
        elif kind == "MedicationRequest":
            med = _text_of(res.get("medicationCodeableConcept"))
            if not med:
                raise InputError(
                    source, f"{where}.medicationCodeableConcept", "medication name is missing"
                )
            if isinstance(res.get("authoredOn"), str) and authored is None:
                try:
                    authored = date.fromisoformat(res["authoredOn"][:10])
                except ValueError:
                    raise InputError(source, f"{where}.authoredOn", "not an ISO date") from None
            dosage = (res.get("dosageInstruction") or [{}])[0]
            item: dict[str, Any] = {"drug": med}
            dr = (dosage.get("doseAndRate") or [{}])[0].get("doseQuantity") or {}
            if dr.get("value") is None:
                raise InputError(
                    source,
                    f"{where}.dosageInstruction[0].doseAndRate[0].doseQuantity.value",
                    "dose is missing",
                )
            item["dose"] = dr.get("value")
            item["unit"] = dr.get("unit") or dr.get("code")
            route = dosage.get("route") or {}
            codes = [c.get("code") for c in route.get("coding") or [] if isinstance(c, Mapping)]
            item["route"] = next(
                (_FHIR_ROUTES[c] for c in codes if c in _FHIR_ROUTES), _text_of(route)
            )
            repeat = (dosage.get("timing") or {}).get("repeat") or {}
            if (
                repeat.get("frequency")
                and repeat.get("period")
                and repeat.get("periodUnit") in ("d", "h", "wk")
            ):
                hours = {"d": 24.0, "h": 1.0, "wk": 168.0}[repeat["periodUnit"]] * float(
                    repeat["period"]
                )
                times = float(repeat["frequency"]) * 24.0 / hours
                item["frequency"] = {1.0: "qd", 2.0: "bid", 3.0: "tid", 4.0: "qid"}.get(
                    round(times, 6),
                    f"q{24.0 / times:g}h" if times >= 1 else ("qw" if hours == 168.0 else "qod"),
                )
            supply = res.get("dispenseRequest") or {}
            if (supply.get("expectedSupplyDuration") or {}).get("value") is not None:
                item["days"] = supply["expectedSupplyDuration"]["value"]
            if (supply.get("quantity") or {}).get("value") is not None:
                item["quantity"] = supply["quantity"]["value"]
            items.append(item)
    if birth:
        age = _age_years(birth, authored)
        if age is not None:
            patient["age_years"] = round(age, 2)
    prescription: dict[str, Any] = {"patient": patient, "items": items}
    if setting is not None:
        prescription["setting"] = setting
    return prescription
