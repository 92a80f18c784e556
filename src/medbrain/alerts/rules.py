"""The alert rule families; each turns a :class:`PatientRecord` into alerts (Findings).

Families and their categories (DESIGN.md §3): critical values (``critical_value``), NEWS2 and
qSOFA (``early_warning``), sepsis screen (``sepsis``), KDIGO AKI (``aki``), electrolyte
disorders with correction guidance (``electrolyte``), drug–lab checks (``drug_lab``), trends
(``trend``) and combined patterns such as the seed's headache case (``early_warning``).

Every alert cites the measurements it used as ``Evidence(resource=..., quote=...)`` and its
rule's source as ``Evidence(source=...)``; ``recommended_tests`` and ``differential`` (each
with a reason) come from the rule's row in ``rules.yaml`` / ``critical_values.yaml``.

References
----------
KDIGO Clinical Practice Guideline for Acute Kidney Injury 2012, section 2.1.
RCP NEWS2 2017; Sepsis-3 (Singer 2016, Seymour 2016); ACCP/SCCM 1992.
Spasovski G et al. Eur J Endocrinol 2014;170:G1-G47 (hyponatraemia).
Adrogué HJ, Madias NE. N Engl J Med 2000;342:1493-9 (hypernatraemia).
UK Kidney Association, Treatment of Acute Hyperkalaemia in Adults, 2023.
FDA Drug Safety Communication on metformin, 8 April 2016.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from medbrain.alerts.knowledge import AlertKnowledge
from medbrain.alerts.record import Measurement, Medication, PatientRecord, Problem
from medbrain.alerts.scores import (
    Score,
    egfr_ckd_epi_2021,
    free_water_deficit_l,
    latest,
    total_body_water_fraction,
)
from medbrain.core.findings import Evidence, Finding, Severity

EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Alert:
    """A finding plus what repeat-suppression needs: the value and which way is worse."""

    finding: Finding
    value: float | None
    direction: str  # "higher" | "lower" | "none"
    time: datetime


@dataclass(frozen=True, slots=True)
class Context:
    record: PatientRecord
    knowledge: AlertKnowledge
    now: datetime
    lang: str
    vitals_lookback: timedelta
    labs_lookback: timedelta
    scores: Mapping[str, Score | None] = field(default_factory=dict)
    egfr: float | None = None
    creatinine: Measurement | None = None

    @property
    def rules(self) -> Mapping[str, Any]:
        return self.knowledge.rules

    def tx(self, node: Mapping[str, Any], **params: object) -> str:
        template = str(node["en" if self.lang == "en" else "zh"])
        return template.format(**params) if params else template

    def lab(self, analyte: str) -> Measurement | None:
        return latest(self.record, analyte, self.now, self.labs_lookback)

    @property
    def age(self) -> int | None:
        return self.record.patient.age_years(self.now)


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def build(
    ctx: Context,
    *,
    rule_id: str,
    category: str,
    severity: Severity,
    row: Mapping[str, Any],
    message: str,
    suggestion: str,
    source: str,
    measurements: Sequence[Measurement] = (),
    medications: Sequence[Medication] = (),
    conditions: Sequence[Problem] = (),
    value: float | None = None,
    unit: str = "",
    direction: str = "higher",
    extra: Mapping[str, Any] | None = None,
) -> Alert:
    """Assemble one alert with evidence, recommended tests and a reasoned differential."""
    evidence = [Evidence(source=source)]
    seen: set[tuple[str, str]] = set()
    for m in measurements:
        key = (m.resource, m.quote)
        if key not in seen:
            seen.add(key)
            evidence.append(Evidence(resource=m.resource, quote=m.quote))
    for med in medications:
        evidence.append(Evidence(resource=med.resource, quote=med.text))
    for cond in conditions:
        evidence.append(Evidence(resource=cond.resource, quote=cond.text))
    tests = [ctx.tx(t) for t in row.get("recommended_tests") or []]
    differential = [
        {
            "diagnosis": ctx.tx(d),
            "reason": str(d["reason_en" if ctx.lang == "en" else "reason_zh"]),
        }
        for d in row.get("differential") or []
    ]
    times = [m.time for m in measurements]
    observed = max(times) if times else ctx.now
    payload: dict[str, Any] = {
        "recommended_tests": tests,
        "differential": differential,
        "subject": ctx.record.patient.resource,
        "value": None if value is None else round(value, 4),
        "unit": unit,
        "observed_at": observed.isoformat(),
    }
    if extra:
        payload.update(extra)
    finding = Finding(
        rule_id=rule_id,
        category=category,
        severity=severity,
        message=message,
        suggestion=suggestion,
        evidence=tuple(evidence),
        confidence=float(row.get("confidence", 1.0)),
        extra=payload,
    )
    return Alert(finding=finding, value=value, direction=direction, time=observed)


# --- critical values -------------------------------------------------------------------


def _limit_breach(row: Mapping[str, Any], value: float) -> tuple[str, str] | None:
    """(side, limit text) of the first breached limit, or None."""
    checks = (
        ("lt", "low", "<", value < float(row.get("lt", 0)) - EPS),
        ("le", "low", "≤", value <= float(row.get("le", 0)) + EPS),
        ("gt", "high", ">", value > float(row.get("gt", 0)) + EPS),
        ("ge", "high", "≥", value >= float(row.get("ge", 0)) - EPS),
    )
    for key, side, symbol, hit in checks:
        if key in row and hit:
            return side, f"{symbol}{_num(float(row[key]))}"
    return None


def critical_values(ctx: Context) -> list[Alert]:
    table = ctx.knowledge.critical
    default_message = table["defaults"]["message"]
    out: list[Alert] = []
    for row in table["rows"]:
        analyte = ctx.knowledge.analytes[row["analyte"]]
        m = ctx.lab(analyte.id)
        if m is None:
            continue
        if row.get("positive"):
            if m.value < 0.5:
                continue
            side, limit_text = "none", ""
        else:
            breach = _limit_breach(row, m.value)
            if breach is None:
                continue
            side, limit = breach
            limit_text = f"{limit} {analyte.unit}".strip()
        direction = {"low": "lower", "high": "higher"}.get(side, "none")
        if row.get("worse") in ("higher", "lower", "none"):
            direction = str(row["worse"])
        message = ctx.tx(
            row.get("message") or default_message,
            label=analyte.name(ctx.lang),
            value_text=m.text(),
            limit_text=limit_text,
        )
        out.append(
            build(
                ctx,
                rule_id=str(row["id"]),
                category="critical_value",
                severity=Severity.CRITICAL,
                row=row,
                message=message,
                suggestion=ctx.tx(row.get("suggestion") or table["defaults"]["suggestion"]),
                source=str(row["source"]),
                measurements=[m],
                value=m.value,
                unit=m.unit,
                direction=direction,
                extra={"acknowledge": True},
            )
        )
    return out


# --- electrolytes ----------------------------------------------------------------------


def _band(row: Mapping[str, Any], value: float) -> tuple[str, Severity] | None:
    reached: tuple[str, Severity] | None = None
    for threshold, name, severity in row["bands"]:
        hit = (
            value >= float(threshold) - EPS
            if row["direction"] == "high"
            else value < float(threshold) - EPS
        )
        if hit:
            reached = (str(name), Severity(severity))
    return reached


def _deficit_text(ctx: Context, sodium: float) -> tuple[str, Measurement | None, float | None]:
    rules = ctx.rules["free_water"]
    weight = latest(ctx.record, "weight", ctx.now, None)
    fraction = total_body_water_fraction(ctx.record.patient.sex, ctx.age, rules)
    if weight is None or fraction is None:
        return ctx.tx(rules["unknown_text"]), None, None
    litres = free_water_deficit_l(sodium, weight.value, fraction, float(rules["target_na"]))
    text = ctx.tx(
        rules["known_text"],
        litres=f"{litres:.1f}",
        weight=_num(weight.value),
        fraction=_num(fraction),
    )
    return text, weight, litres


def electrolytes(ctx: Context) -> list[Alert]:
    names = ctx.rules["band_names"]
    out: list[Alert] = []
    for row in ctx.rules["electrolytes"]["rows"]:
        m = ctx.lab(str(row["analyte"]))
        if m is None:
            continue
        band = _band(row, m.value)
        if band is None:
            continue
        name, severity = band
        params: dict[str, object] = {
            "value_text": m.text(),
            "band_zh": names[name]["zh"],
            "band_en": names[name]["en"],
        }
        extra: dict[str, Any] = {"band": name}
        used = [m]
        if row["id"] == "electrolyte.hypernatraemia":
            text, weight, litres = _deficit_text(ctx, m.value)
            params["deficit_text"] = text
            extra["free_water_deficit_l"] = None if litres is None else round(litres, 2)
            extra["max_correction_mmol_l_per_24h"] = 10
            if weight is not None:
                used.append(weight)
        if row["id"] == "electrolyte.hyponatraemia":
            extra["max_correction_mmol_l_first_24h"] = 10
        out.append(
            build(
                ctx,
                rule_id=str(row["id"]),
                category="electrolyte",
                severity=severity,
                row=row,
                message=ctx.tx(row["message"], **params),
                suggestion=ctx.tx(row["suggestion"], **params),
                source=str(row["source"]),
                measurements=used,
                value=m.value,
                unit=m.unit,
                direction=str(row["worse"]),
                extra=extra,
            )
        )
    return out


# --- AKI (KDIGO 2012, section 2.1) -----------------------------------------------------


def aki(ctx: Context) -> list[Alert]:
    rules = ctx.rules["aki"]
    current = ctx.lab("creatinine")
    if current is None:
        return []
    prior = [m for m in ctx.record.values("creatinine") if m.time < current.time]
    window_48h = [
        m
        for m in prior
        if m.time >= current.time - timedelta(hours=float(rules["rise_window_hours"]))
    ]
    window_7d = [
        m
        for m in prior
        if m.time >= current.time - timedelta(days=float(rules["baseline_window_days"]))
    ]
    if not window_7d:
        return []
    low_48h = min(window_48h, key=lambda m: (m.value, m.time)) if window_48h else None
    baseline = min(window_7d, key=lambda m: (m.value, m.time))
    rise = current.value - low_48h.value if low_48h is not None else 0.0
    ratio = current.value / baseline.value
    by_rise = rise >= float(rules["rise_umol_l"]) - EPS
    by_ratio = ratio >= float(rules["ratio_stage1"]) - EPS
    if not (by_rise or by_ratio):
        return []
    stage = 1
    if ratio >= float(rules["ratio_stage2"]) - EPS:
        stage = 2
    by_absolute = current.value >= float(rules["stage3_absolute_umol_l"]) - EPS
    if ratio >= float(rules["ratio_stage3"]) - EPS or by_absolute:
        stage = 3
    if by_ratio:
        basis = ctx.tx(rules["basis_ratio"], baseline_text=baseline.text(), ratio=f"{ratio:.2f}")
        reference = baseline
    else:
        assert low_48h is not None
        basis = ctx.tx(rules["basis_rise"], rise=_num(rise), baseline_text=low_48h.text())
        reference = low_48h
    if stage == 3 and by_absolute and ratio < float(rules["ratio_stage3"]) - EPS:
        basis = f"{basis}; {ctx.tx(rules['basis_absolute'])}"
    severity = Severity(rules["severity_by_stage"][stage])
    return [
        build(
            ctx,
            rule_id=str(rules["id"]),
            category="aki",
            severity=severity,
            row=rules,
            message=ctx.tx(rules["message"], stage=stage, value_text=current.text(), basis=basis),
            suggestion=ctx.tx(rules["suggestion"]),
            source=str(rules["source"]),
            measurements=[reference, current],
            value=current.value,
            unit=current.unit,
            direction=str(rules["worse"]),
            extra={
                "stage": stage,
                "rise_umol_l_48h": round(rise, 1),
                "ratio_to_baseline_7d": round(ratio, 2),
                "baseline_umol_l": round(baseline.value, 1),
            },
        )
    ]


# --- drug-lab ----------------------------------------------------------------------------


def _class_members(ctx: Context, cls: str) -> list[Medication]:
    spec = ctx.rules["drug_classes"][cls]
    terms = [str(t).lower() for t in spec["terms"]]
    atc = [str(a).upper() for a in spec["atc"]]
    return [
        med
        for med in ctx.record.medications
        if any(t in med.search for t in terms)
        or any(code.upper().startswith(prefix) for code in med.codes for prefix in atc)
    ]


def drug_lab(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    fired: set[str] = set()
    for row in ctx.rules["drug_lab"]["rows"]:
        if row.get("excludes_rule") in fired:
            continue
        meds: list[Medication] = []
        if "requires_all" in row:
            groups = [
                [m for cls in group for m in _class_members(ctx, cls)]
                for group in row["requires_all"]
            ]
            if not all(groups):
                continue
            meds = [m for group in groups for m in group]
        if "requires_any" in row:
            meds = [m for cls in row["requires_any"] for m in _class_members(ctx, cls)]
            if not meds:
                continue
        unique = list({m.resource: m for m in meds}.values())
        drugs = (
            "、".join(m.text for m in unique)
            if ctx.lang == "zh"
            else ", ".join(m.text for m in unique)
        )
        measured: list[Measurement] = []
        params: dict[str, object] = {"drugs": drugs}
        value: float | None
        unit = ""
        if "analyte" in row:
            m = ctx.lab(str(row["analyte"]))
            if m is None or m.value < float(row["ge"]) - EPS:
                continue
            measured.append(m)
            params["value_text"] = m.text()
            value, unit = m.value, m.unit
        else:
            if ctx.egfr is None or ctx.creatinine is None:
                continue
            if ctx.egfr >= float(row["egfr_lt"]) - EPS:
                continue
            if "egfr_ge" in row and ctx.egfr < float(row["egfr_ge"]) - EPS:
                continue
            measured.append(ctx.creatinine)
            params["egfr"] = f"{ctx.egfr:.0f}"
            value, unit = ctx.egfr, "mL/min/1.73m2"
        fired.add(str(row["id"]))
        out.append(
            build(
                ctx,
                rule_id=str(row["id"]),
                category="drug_lab",
                severity=Severity(row["severity"]),
                row=row,
                message=ctx.tx(row["message"], **params),
                suggestion=ctx.tx(row["suggestion"]),
                source=str(row["source"]),
                measurements=measured,
                medications=unique,
                value=value,
                unit=unit,
                direction=str(row["worse"]),
                extra={"drugs": [m.text for m in unique]},
            )
        )
    return out


# --- trends ------------------------------------------------------------------------------


def trends(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    for row in ctx.rules["trends"]["rows"]:
        current = ctx.lab(str(row["analyte"]))
        if current is None:
            continue
        since = current.time - timedelta(hours=float(row["window_hours"]))
        earlier = [
            m for m in ctx.record.values(str(row["analyte"])) if since <= m.time < current.time
        ]
        if not earlier:
            continue
        peak = max(earlier, key=lambda m: (m.value, m.time))
        fall = peak.value - current.value
        if fall < float(row["fall_ge"]) - EPS:
            continue
        out.append(
            build(
                ctx,
                rule_id=str(row["id"]),
                category="trend",
                severity=Severity(row["severity"]),
                row=row,
                message=ctx.tx(
                    row["message"],
                    fall=_num(fall),
                    from_text=peak.text(),
                    value_text=current.text(),
                ),
                suggestion=ctx.tx(row["suggestion"]),
                source=str(row["source"]),
                measurements=[peak, current],
                value=fall,
                unit=current.unit,
                direction=str(row["worse"]),
                extra={"fall": round(fall, 2)},
            )
        )
    return out


# --- early warning scores and sepsis ------------------------------------------------------


def _parts_text(ctx: Context, score: Score) -> str:
    analytes = ctx.knowledge.analytes
    texts = []
    for part in score.parts:
        if part.measurement is None:
            continue
        name = analytes[part.measurement.analyte].name(ctx.lang)
        texts.append(f"{name} {part.measurement.text()} (+{part.points})")
    return "; ".join(texts) if ctx.lang == "en" else ";".join(texts)


def early_warning(ctx: Context, sepsis_fired: bool) -> list[Alert]:
    out: list[Alert] = []
    rules = ctx.rules["news2"]
    score = ctx.scores.get("news2")
    if score is not None:
        red = score.detail.get("red") or []
        level = None
        severity = Severity.WARNING
        if score.total >= int(rules["high_threshold"]):
            level, severity = "high", Severity.CRITICAL
        elif score.total >= int(rules["medium_threshold"]):
            level = "medium"
        elif red:
            level = "red"
        if level is not None:
            texts = rules["texts"][level]
            names = rules["parameter_names"]
            red_text = ", ".join(ctx.tx(names[p]) if p in names else str(p) for p in red)
            out.append(
                build(
                    ctx,
                    rule_id=str(rules["id"]),
                    category="early_warning",
                    severity=severity,
                    row=rules["texts"],
                    message=ctx.tx(
                        texts["message"],
                        score=score.total,
                        parts=_parts_text(ctx, score),
                        red=red_text,
                    ),
                    suggestion=ctx.tx(texts["suggestion"]),
                    source=str(rules["source"]),
                    measurements=score.measurements,
                    value=float(score.total),
                    unit="",
                    direction="higher",
                    extra={"score": score.total, "risk": level, "missing": list(score.missing)},
                )
            )
    q = ctx.scores.get("qsofa")
    qrules = ctx.rules["qsofa"]
    if q is not None and q.total >= int(qrules["positive"]) and not sepsis_fired:
        texts = qrules["texts"]
        out.append(
            build(
                ctx,
                rule_id=str(qrules["id"]),
                category="early_warning",
                severity=Severity(qrules["severity"]),
                row=texts,
                message=ctx.tx(texts["message"], score=q.total, parts=_parts_text(ctx, q)),
                suggestion=ctx.tx(texts["suggestion"]),
                source=str(qrules["source"]),
                measurements=q.measurements,
                value=float(q.total),
                direction="higher",
                extra={"score": q.total},
            )
        )
    return out


def infection_evidence(ctx: Context) -> tuple[list[Problem], list[Medication], list[Measurement]]:
    rules = ctx.rules["sepsis"]
    terms = [str(t).lower() for t in rules["infection_terms"]]
    codes = [str(c).upper() for c in rules["infection_codes"]]
    conditions = [
        c
        for c in ctx.record.conditions
        if any(t in c.search for t in terms)
        or any(code.upper().startswith(prefix) for code in c.codes for prefix in codes)
    ]
    mterms = [str(t).lower() for t in rules["antimicrobial_terms"]]
    atc = [str(a).upper() for a in rules["antimicrobial_atc"]]
    meds = [
        m
        for m in ctx.record.medications
        if any(t in m.search for t in mterms)
        or any(code.upper().startswith(prefix) for code in m.codes for prefix in atc)
    ]
    culture = ctx.lab("blood_culture")
    cultures = [culture] if culture is not None and culture.value >= 0.5 else []
    return conditions, meds, cultures


def sepsis(ctx: Context) -> list[Alert]:
    rules = ctx.rules["sepsis"]
    conditions, meds, cultures = infection_evidence(ctx)
    if not (conditions or meds or cultures):
        return []
    infection = ", ".join(
        [c.text for c in conditions] + [m.text for m in meds] + [m.quote for m in cultures]
    )
    rows = {str(r["id"]): r for r in rules["rows"]}
    q = ctx.scores.get("qsofa")
    s = ctx.scores.get("sirs")
    n = ctx.scores.get("news2")
    if q is not None and q.total >= int(ctx.rules["qsofa"]["positive"]) and "sepsis.qsofa" in rows:
        row = rows["sepsis.qsofa"]
        return [
            build(
                ctx,
                rule_id="sepsis.qsofa",
                category="sepsis",
                severity=Severity(row["severity"]),
                row=row,
                message=ctx.tx(
                    row["message"], infection=infection, score=q.total, parts=_parts_text(ctx, q)
                ),
                suggestion=ctx.tx(row["suggestion"]),
                source=str(row["source"]),
                measurements=[*q.measurements, *cultures],
                medications=meds,
                conditions=conditions,
                value=float(q.total),
                direction=str(row["worse"]),
                extra={"qsofa": q.total, "sirs": None if s is None else s.total},
            )
        ]
    criteria: list[str] = []
    used: list[Measurement] = []
    value = 0.0
    if s is not None and s.total >= int(ctx.rules["sirs"]["positive"]):
        criteria.append(f"SIRS {s.total}/4 ({_parts_text(ctx, s)})")
        used.extend(p.measurement for p in s.parts if p.points and p.measurement is not None)
        value = float(s.total)
    if n is not None and n.total >= int(rules["news2_ge"]):
        criteria.append(f"NEWS2 {n.total}")
        used.extend(n.measurements)
    lactate = ctx.lab("lactate")
    if lactate is not None and lactate.value > float(rules["lactate_gt"]) + EPS:
        name = ctx.knowledge.analytes["lactate"].name(ctx.lang)
        criteria.append(f"{name} {lactate.text()}")
        used.append(lactate)
    if not criteria or "sepsis.screen" not in rows:
        return []
    row = rows["sepsis.screen"]
    return [
        build(
            ctx,
            rule_id="sepsis.screen",
            category="sepsis",
            severity=Severity(row["severity"]),
            row=row,
            message=ctx.tx(row["message"], infection=infection, criteria="; ".join(criteria)),
            suggestion=ctx.tx(row["suggestion"]),
            source=str(row["source"]),
            measurements=[*used, *cultures],
            medications=meds,
            conditions=conditions,
            value=value,
            direction=str(row["worse"]),
            extra={"sirs": None if s is None else s.total, "news2": None if n is None else n.total},
        )
    ]


# --- combined patterns -------------------------------------------------------------------


def patterns(ctx: Context) -> list[Alert]:
    out: list[Alert] = []
    age = ctx.age
    for row in ctx.rules["patterns"]["rows"]:
        if age is None or age < int(row["min_age_years"]):
            continue
        terms = [str(t).lower() for t in row["condition_terms"]]
        codes = [str(c).upper() for c in row["condition_codes"]]
        matches = [
            c
            for c in ctx.record.conditions
            if any(t in c.search for t in terms)
            or any(code.upper().startswith(prefix) for code in c.codes for prefix in codes)
        ]
        neut = ctx.lab("neutrophil_pct")
        sodium = ctx.lab("sodium")
        if not matches or neut is None or sodium is None:
            continue
        if (
            neut.value <= float(row["neutrophil_pct_gt"]) + EPS
            or sodium.value <= float(row["sodium_gt"]) + EPS
        ):
            continue
        deficit, weight, litres = _deficit_text(ctx, sodium.value)
        used = [neut, sodium] + ([weight] if weight is not None else [])
        out.append(
            build(
                ctx,
                rule_id=str(row["id"]),
                category=str(row["category"]),
                severity=Severity(row["severity"]),
                row=row,
                message=ctx.tx(
                    row["message"], age=age, neut_text=neut.text(), na_text=sodium.text()
                ),
                suggestion=ctx.tx(row["suggestion"]),
                source=str(row["source"]),
                measurements=used,
                conditions=matches,
                value=sodium.value,
                unit=sodium.unit,
                direction=str(row["worse"]),
                extra={
                    "free_water_deficit": deficit,
                    "free_water_deficit_l": None if litres is None else round(litres, 2),
                    "max_correction_mmol_l_per_24h": 10,
                },
            )
        )
    return out


def creatinine_egfr(
    ctx_record: PatientRecord, knowledge: AlertKnowledge, now: datetime, lookback: timedelta
) -> tuple[Measurement | None, float | None]:
    """Latest creatinine and its CKD-EPI 2021 eGFR (None for children or unknown sex/age)."""
    creat = latest(ctx_record, "creatinine", now, lookback)
    age = ctx_record.patient.age_years(now)
    sex = ctx_record.patient.sex
    rules = knowledge.rules["egfr"]
    if creat is None or age is None or sex is None or age < int(rules["min_age_years"]):
        return creat, None
    return creat, egfr_ckd_epi_2021(creat.value, age, sex, rules)
