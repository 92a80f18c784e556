"""Bedside scores and derived values: NEWS2, qSOFA, SIRS, eGFR (CKD-EPI 2021), free-water deficit.

Each score reports the data points it used (:class:`ScorePart`, with the measurement it came
from) and the parameters that were missing, so a partial score is never mistaken for a full one.
All thresholds come from ``rules.yaml``; this module only applies them.

References
----------
Royal College of Physicians. National Early Warning Score (NEWS) 2, 2017, Chart 1 (including
SpO₂ scale 2 for hypercapnic respiratory failure) and Chart 2.
Seymour CW et al. JAMA 2016;315(8):762-774 (qSOFA, Sepsis-3).
Bone RC et al. ACCP/SCCM Consensus Conference. Chest 1992;101:1644-55 (SIRS).
Inker LA et al. N Engl J Med 2021;385:1737-49 (CKD-EPI 2021 creatinine equation).
Adrogué HJ, Madias NE. Hypernatremia. N Engl J Med 2000;342:1493-9 (total body water).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from medbrain.alerts.record import ACVPU, Measurement, PatientRecord

CREATININE_UMOL_PER_MG_DL = 88.4


@dataclass(frozen=True, slots=True)
class ScorePart:
    """One parameter's contribution to a score, with the measurement it came from."""

    parameter: str
    points: int
    measurement: Measurement | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parameter": self.parameter, "points": self.points}
        if self.measurement is not None:
            out["resource"] = self.measurement.resource
            out["quote"] = self.measurement.quote
            out["time"] = self.measurement.time.isoformat()
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class Score:
    name: str
    total: int
    parts: tuple[ScorePart, ...]
    missing: tuple[str, ...]
    detail: Mapping[str, Any]

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return tuple(p.measurement for p in self.parts if p.measurement is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "parts": [p.to_dict() for p in self.parts],
            "missing": list(self.missing),
            **self.detail,
        }


def latest(
    record: PatientRecord, analyte: str, now: datetime, lookback: timedelta | None
) -> Measurement | None:
    """The most recent measurement at or before ``now`` (and after ``now - lookback``)."""
    for m in reversed(record.values(analyte)):
        if m.time > now:
            continue
        if lookback is not None and m.time < now - lookback:
            return None
        return m
    return None


def _round_half_up(value: float, digits: int) -> float:
    """Round as a chart reader would (38.05 → 38.1), on the decimal text, not the binary float."""
    quantum = Decimal(1).scaleb(-digits)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def band_points(value: float, bands: Sequence[Sequence[Any]], oxygen: bool | None = None) -> int:
    """Points for ``value`` from inclusive ``[lo, hi, points(, air|o2)]`` bands (None = open)."""
    for band in bands:
        lo, hi, points = band[0], band[1], band[2]
        if len(band) > 3 and oxygen is not None and band[3] != ("o2" if oxygen else "air"):
            continue
        if (lo is None or value >= lo) and (hi is None or value <= hi):
            return int(points)
    raise ValueError(f"value {value} falls in no band of {bands!r}")


def _not_alert(m: Measurement, gcs_alert_min: float) -> bool:
    if m.analyte == "avpu":
        return ACVPU[int(m.value)] != "A"
    return m.value < gcs_alert_min


def _consciousness(record: PatientRecord, now: datetime, lookback: timedelta) -> Measurement | None:
    candidates = [latest(record, a, now, lookback) for a in ("avpu", "gcs")]
    present = [m for m in candidates if m is not None]
    return max(present, key=lambda m: m.time) if present else None


def uses_spo2_scale2(record: PatientRecord, rules: Mapping[str, Any]) -> bool:
    """Scale 2 when a documented hypercapnic respiratory failure (target 88–92 %) is active."""
    terms = [t.lower() for t in rules["scale2_condition_terms"]]
    codes = set(rules["scale2_condition_codes"])
    return any(
        any(t in c.search for t in terms) or codes.intersection(c.codes) for c in record.conditions
    )


def news2(
    record: PatientRecord, rules: Mapping[str, Any], now: datetime, lookback: timedelta
) -> Score | None:
    """NEWS2 from the latest value of each parameter within ``lookback`` of ``now``.

    Values are rounded to chart precision first (integers; temperature to 0.1 °C). Oxygen is
    "on" when inhaled O₂ flow > 0 or FiO₂ above room air; with neither recorded, air is
    assumed and said so. Returns None when no NEWS2 parameter was observed.
    """
    parts: list[ScorePart] = []
    missing: list[str] = []
    scale2 = uses_spo2_scale2(record, rules)
    flow = latest(record, "o2_flow", now, lookback)
    fio2 = latest(record, "fio2", now, lookback)
    oxygen_source = max(
        (m for m in (flow, fio2) if m is not None), key=lambda m: m.time, default=None
    )
    if oxygen_source is None:
        on_oxygen = False
    elif oxygen_source.analyte == "o2_flow":
        on_oxygen = oxygen_source.value > 0
    else:
        on_oxygen = oxygen_source.value > float(rules["fio2_air_max_pct"])
    table = (
        ("resp_rate", "resp_rate", 0),
        ("spo2", "spo2_scale2" if scale2 else "spo2_scale1", 0),
        ("sbp", "sbp", 0),
        ("heart_rate", "heart_rate", 0),
        ("temperature", "temperature", 1),
    )
    observed_any = False
    for analyte, key, digits in table:
        m = latest(record, analyte, now, lookback)
        if m is None:
            missing.append(analyte)
            continue
        observed_any = True
        value = _round_half_up(m.value, digits)
        oxygen = on_oxygen if key == "spo2_scale2" else None
        parts.append(ScorePart(analyte, band_points(value, rules[key], oxygen), m))
    parts.insert(
        2,
        ScorePart(
            "oxygen",
            int(rules["on_oxygen_score"]) if on_oxygen else 0,
            oxygen_source,
            "" if oxygen_source is not None else "no oxygen recorded: air assumed",
        ),
    )
    conscious = _consciousness(record, now, lookback)
    if conscious is None:
        missing.append("consciousness")
    else:
        observed_any = True
        points = (
            int(rules["consciousness_not_alert_score"])
            if _not_alert(conscious, float(rules["gcs_alert_min"]))
            else 0
        )
        parts.append(ScorePart("consciousness", points, conscious))
    if not observed_any:
        return None
    total = sum(p.points for p in parts)
    red = tuple(p.parameter for p in parts if p.points >= int(rules["single_parameter_red"]))
    return Score(
        name="news2",
        total=total,
        parts=tuple(parts),
        missing=tuple(missing),
        detail={"spo2_scale": 2 if scale2 else 1, "on_oxygen": on_oxygen, "red": list(red)},
    )


def qsofa(
    record: PatientRecord, rules: Mapping[str, Any], now: datetime, lookback: timedelta
) -> Score | None:
    """qSOFA: RR ≥22, SBP ≤100, altered mentation (GCS <15 or ACVPU other than A)."""
    parts: list[ScorePart] = []
    missing: list[str] = []
    rr = latest(record, "resp_rate", now, lookback)
    sbp = latest(record, "sbp", now, lookback)
    conscious = _consciousness(record, now, lookback)
    if rr is None:
        missing.append("resp_rate")
    else:
        parts.append(ScorePart("resp_rate", int(rr.value >= float(rules["rr_ge"])), rr))
    if sbp is None:
        missing.append("sbp")
    else:
        parts.append(ScorePart("sbp", int(sbp.value <= float(rules["sbp_le"])), sbp))
    if conscious is None:
        missing.append("mentation")
    else:
        parts.append(
            ScorePart("mentation", int(_not_alert(conscious, float(rules["gcs_lt"]))), conscious)
        )
    if not parts:
        return None
    return Score("qsofa", sum(p.points for p in parts), tuple(parts), tuple(missing), {})


def sirs(
    record: PatientRecord,
    rules: Mapping[str, Any],
    now: datetime,
    vitals_lookback: timedelta,
    labs_lookback: timedelta,
) -> Score | None:
    """SIRS (ACCP/SCCM 1992): temperature, heart rate, RR or PaCO₂, WBC or bands."""
    parts: list[ScorePart] = []
    missing: list[str] = []
    temp = latest(record, "temperature", now, vitals_lookback)
    if temp is None:
        missing.append("temperature")
    else:
        hit = temp.value > float(rules["temp_gt"]) or temp.value < float(rules["temp_lt"])
        parts.append(ScorePart("temperature", int(hit), temp))
    hr = latest(record, "heart_rate", now, vitals_lookback)
    if hr is None:
        missing.append("heart_rate")
    else:
        parts.append(ScorePart("heart_rate", int(hr.value > float(rules["hr_gt"])), hr))
    rr = latest(record, "resp_rate", now, vitals_lookback)
    paco2 = latest(record, "paco2", now, labs_lookback)
    if rr is not None and rr.value > float(rules["rr_gt"]):
        parts.append(ScorePart("resp_rate", 1, rr))
    elif paco2 is not None and paco2.value < float(rules["paco2_lt"]):
        parts.append(ScorePart("resp_rate", 1, paco2, "PaCO2"))
    elif rr is not None or paco2 is not None:
        parts.append(ScorePart("resp_rate", 0, rr or paco2))
    else:
        missing.append("resp_rate")
    wbc = latest(record, "wbc", now, labs_lookback)
    bands = latest(record, "band_pct", now, labs_lookback)
    if wbc is not None and (
        wbc.value > float(rules["wbc_gt"]) or wbc.value < float(rules["wbc_lt"])
    ):
        parts.append(ScorePart("wbc", 1, wbc))
    elif bands is not None and bands.value > float(rules["bands_gt"]):
        parts.append(ScorePart("wbc", 1, bands, "bands"))
    elif wbc is not None or bands is not None:
        parts.append(ScorePart("wbc", 0, wbc or bands))
    else:
        missing.append("wbc")
    if not parts:
        return None
    return Score("sirs", sum(p.points for p in parts), tuple(parts), tuple(missing), {})


def egfr_ckd_epi_2021(
    creatinine_umol_l: float, age_years: int, sex: str, rules: Mapping[str, Any]
) -> float:
    """eGFR (mL/min/1.73 m²) by the race-free CKD-EPI 2021 creatinine equation.

    References
    ----------
    Inker LA et al. N Engl J Med 2021;385:1737-49.
    """
    scr = creatinine_umol_l / CREATININE_UMOL_PER_MG_DL
    female = sex == "female"
    kappa = float(rules["kappa_female"] if female else rules["kappa_male"])
    alpha = float(rules["alpha_female"] if female else rules["alpha_male"])
    ratio = scr / kappa
    egfr: float = 142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age_years
    return egfr * 1.012 if female else egfr


def total_body_water_fraction(
    sex: str | None, age_years: int | None, rules: Mapping[str, Any]
) -> float | None:
    """TBW as a fraction of body weight (Adrogué & Madias 2000)."""
    if sex not in ("male", "female") or age_years is None:
        return None
    elderly = age_years >= int(rules["elderly_age_years"])
    key = f"fraction_{'elderly_' if elderly else ''}{sex}"
    return float(rules[key])


def free_water_deficit_l(
    sodium_mmol_l: float, weight_kg: float, fraction: float, target: float
) -> float:
    """Water deficit (L) = TBW × (Na / target − 1) (Adrogué & Madias 2000)."""
    return fraction * weight_kg * (sodium_mmol_l / target - 1.0)
