"""Emergency pre-triage: level Ⅰ–Ⅳ, zone, maximum wait, care, department and pathway.

The level is the most urgent of every criterion that fires: objective vital-sign criteria
(adult table, or age-band paediatric ranges under 14 years), complaint patterns, NEWS2 as a
supporting score, pregnancy rules and the time-critical pathways (chest pain, stroke with
BE-FAST and treatment windows, trauma, sepsis by qSOFA). With no criterion the level is Ⅳ.
Every reason names the rule and its source. Missing vital signs lower the stated confidence.

This module is pure: no clock, no environment, no I/O. Knowledge comes in as an argument.

References
----------
急诊预检分诊专家共识组. 急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604
(§1.2-1.3 levels and response times; Table 1 objective and manual indicators; zones).
Royal College of Physicians. National Early Warning Score (NEWS) 2, 2017 (Charts 1-2).
Seymour CW et al. JAMA 2016;315(8):762-774 (qSOFA).
Aroor S et al. BE-FAST. Stroke 2017;48:479-481.
Powers WJ et al. AHA/ASA acute ischaemic stroke guideline. Stroke 2019;50:e344 (§3.5, §3.7).
Gulati M et al. AHA/ACC chest pain guideline. Circulation 2021;144:e368 (§2.1, ECG ≤10 min).
NICE NG143 Fever in under 5s (Table 1, traffic-light system).
《医疗机构诊疗科目名录》(卫医发〔1994〕第27号).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medbrain.core.findings import Evidence, Finding, Severity
from medbrain.triage.knowledge import ComplaintRule, TriageKnowledge
from medbrain.triage.model import Criterion, Department, TriageResult, Visit
from medbrain.triage.news2 import News2, score_news2

CLAUSE_BREAK = re.compile(r"[,.;:!?、，。；：！？\n]")
SEVERITY_BY_LEVEL = {
    1: Severity.CRITICAL,
    2: Severity.CRITICAL,
    3: Severity.WARNING,
    4: Severity.INFO,
}


@dataclass(frozen=True, slots=True)
class _Ctx:
    visit: Visit
    knowledge: TriageKnowledge
    lang: str
    text: str

    @property
    def is_child(self) -> bool:
        age = self.visit.age_years
        return age is not None and age < float(self.knowledge.paediatric.get("max_age_years", 14))


def normalise(text: str) -> str:
    """NFKC (full-width → half-width) and lower case, so patterns match either script."""
    return unicodedata.normalize("NFKC", text).lower()


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}"


def _reason(ctx: _Ctx, text: str, rule_id: str, source: str, section: str) -> str:
    cite = ctx.knowledge.cite(source, section, ctx.lang)
    return f"{text} [{rule_id}; {cite}]"


# --------------------------------------------------------------------------- complaint rules


def _negated(ctx: _Ctx, start: int) -> bool:
    before = ctx.text[:start]
    clause = CLAUSE_BREAK.split(before)[-1]
    return bool(
        ctx.knowledge.negation_zh.search(clause) or ctx.knowledge.negation_en.search(clause)
    )


def _history(ctx: _Ctx, end: int) -> bool:
    """The match is past history (``过敏性休克史``), not the present complaint."""
    return bool(ctx.knowledge.history_after.match(ctx.text, end))


def _find(ctx: _Ctx, pattern: re.Pattern[str]) -> bool:
    return any(
        not _negated(ctx, m.start()) and not _history(ctx, m.end())
        for m in pattern.finditer(ctx.text)
    )


def _when_holds(ctx: _Ctx, when: Mapping[str, Any]) -> bool:
    visit = ctx.visit
    age = visit.age_years
    if "age_ge" in when and (age is None or age < float(when["age_ge"])):
        return False
    if "age_lt" in when and (age is None or age >= float(when["age_lt"])):
        return False
    if "age_months_lt" in when:
        months = visit.age_months
        if months is None or months >= float(when["age_months_lt"]):
            return False
    if "sex" in when and visit.sex != when["sex"]:
        return False
    return not ("pregnant" in when and visit.pregnant != bool(when["pregnant"]))


def _complaint_matches(ctx: _Ctx, rule: ComplaintRule) -> bool:
    if not _when_holds(ctx, rule.when):
        return False
    if not _find(ctx, rule.patterns):
        return False
    if rule.unless is not None and rule.unless.search(ctx.text):
        return False
    return rule.also_any is None or _find(ctx, rule.also_any)


def _complaint_criteria(ctx: _Ctx) -> tuple[list[Criterion], list[ComplaintRule]]:
    fired: list[ComplaintRule] = [r for r in ctx.knowledge.complaints if _complaint_matches(ctx, r)]
    criteria = [
        Criterion(
            rule_id=r.id,
            level=r.level,
            reason=_reason(ctx, r.text[ctx.lang], r.id, r.source, r.section),
            source=ctx.knowledge.cite(r.source, r.section, "en"),
            red_flag=r.red_flag,
            pathway=r.pathway,
            kind="complaint",
        )
        for r in fired
    ]
    return criteria, fired


# --------------------------------------------------------------------------- vital signs


def _condition(value: float, condition: Mapping[str, Any]) -> bool:
    ((op, limit),) = condition.items()
    if op == "lt":
        return bool(value < limit)
    if op == "le":
        return bool(value <= limit)
    if op == "gt":
        return bool(value > limit)
    if op == "ge":
        return bool(value >= limit)
    lo, hi = limit
    return bool(lo <= value <= hi)


def _objective_criteria(ctx: _Ctx) -> list[Criterion]:
    vitals = ctx.visit.vitals
    out: list[Criterion] = []
    fired: dict[str, int] = {}
    for row in ctx.knowledge.objective:
        applies = row.get("applies", "all")
        if (applies == "adult" and ctx.is_child) or (applies == "child" and not ctx.is_child):
            continue
        if row.get("pregnant") and not ctx.visit.pregnant:
            continue
        parameter = row["parameter"]
        shown: float | str
        if parameter == "bp":
            sbp, dbp = vitals.sbp, vitals.dbp
            hit = (sbp is not None and sbp >= row["sbp_ge"]) or (
                dbp is not None and dbp >= row["dbp_ge"]
            )
            if not hit:
                continue
            shown = (
                f"{_fmt(sbp) if sbp is not None else '-'}/{_fmt(dbp) if dbp is not None else '-'}"
            )
        elif parameter == "consciousness":
            letter = vitals.consciousness
            if letter is None or letter not in row["equals"]:
                continue
            shown = letter
        else:
            value = vitals.value(parameter)
            if not isinstance(value, int | float):
                continue
            if not any(_condition(float(value), c) for c in row["any"]):
                continue
            shown = value
        if fired.get(parameter, 5) <= int(row["level"]):
            continue  # a shared band boundary: keep only the more urgent row
        fired[parameter] = int(row["level"])
        text = row["text"][ctx.lang].format(value=_fmt(shown))
        out.append(
            Criterion(
                rule_id=str(row["id"]),
                level=int(row["level"]),
                reason=_reason(
                    ctx, text, str(row["id"]), str(row["source"]), str(row.get("section", ""))
                ),
                source=ctx.knowledge.cite(str(row["source"]), str(row.get("section", "")), "en"),
                red_flag=int(row["level"]) <= 2,
                kind="vital",
            )
        )
    return out


def _paediatric_band(ctx: _Ctx) -> Mapping[str, Any] | None:
    months = ctx.visit.age_months
    if months is None:
        return None
    for band in ctx.knowledge.paediatric.get("bands") or []:
        lo, hi = band["months"]
        if lo <= months < hi:
            result: Mapping[str, Any] = band
            return result
    return None


def _paediatric_criteria(ctx: _Ctx) -> list[Criterion]:
    if not ctx.is_child:
        return []
    paed = ctx.knowledge.paediatric
    texts = paed["texts"]
    vitals = ctx.visit.vitals
    out: list[Criterion] = []
    band = _paediatric_band(ctx)
    if band is not None:
        rule_base = str(band["id"])
        source, section = str(band["source"]), str(band.get("section", ""))
        fraction = float(paed.get("severe_fraction", 0.2))
        for name in ("hr", "rr"):
            value = vitals.value(name)
            if not isinstance(value, int | float):
                continue
            lo, hi = band[name]
            if lo <= value <= hi:
                continue
            severe = value > hi * (1 + fraction) or value < lo * (1 - fraction)
            key = f"{name}_severe" if severe else f"{name}_abnormal"
            level = int(paed["severe_level"] if severe else paed["abnormal_level"])
            text = texts[key][ctx.lang].format(value=_fmt(value), lo=lo, hi=hi)
            rule_id = f"{rule_base}.{key}"
            out.append(
                Criterion(
                    rule_id=rule_id,
                    level=level,
                    reason=_reason(ctx, text, rule_id, source, section),
                    source=ctx.knowledge.cite(source, section, "en"),
                    red_flag=level <= 2,
                    kind="vital",
                )
            )
        if vitals.sbp is not None:
            limit = float(band["sbp_low"])
            if band.get("sbp_low_per_year") and ctx.visit.age_years is not None:
                limit += float(band["sbp_low_per_year"]) * int(ctx.visit.age_years)
            if vitals.sbp < limit:
                level = int(paed["hypotension_level"])
                rule_id = f"{rule_base}.hypotension"
                text = texts["hypotension"][ctx.lang].format(value=_fmt(vitals.sbp), lo=_fmt(limit))
                out.append(
                    Criterion(
                        rule_id=rule_id,
                        level=level,
                        reason=_reason(ctx, text, rule_id, source, section),
                        source=ctx.knowledge.cite(source, section, "en"),
                        red_flag=True,
                        kind="vital",
                    )
                )
    fever = paed.get("infant_fever")
    months = ctx.visit.age_months
    if (
        fever
        and vitals.temp_c is not None
        and months is not None
        and months < float(fever["age_months_lt"])
        and vitals.temp_c >= float(fever["temp_ge"])
    ):
        text = fever["text"][ctx.lang].format(value=_fmt(vitals.temp_c))
        out.append(
            Criterion(
                rule_id=str(fever["id"]),
                level=int(fever["level"]),
                reason=_reason(
                    ctx, text, str(fever["id"]), str(fever["source"]), str(fever.get("section", ""))
                ),
                source=ctx.knowledge.cite(
                    str(fever["source"]), str(fever.get("section", "")), "en"
                ),
                red_flag=True,
                kind="vital",
            )
        )
    return out


def _news2(ctx: _Ctx) -> tuple[News2 | None, list[Criterion], list[str]]:
    table = ctx.knowledge.news2
    texts = ctx.knowledge.texts
    age = ctx.visit.age_years
    if age is not None and age < float(table.get("min_age_years", 16)):
        return None, [], [texts["news2_not_applicable_child"][ctx.lang]]
    if ctx.visit.pregnant:
        return None, [], [texts["news2_not_applicable_pregnancy"][ctx.lang]]
    score = score_news2(ctx.visit.vitals, table, hypercapnic=ctx.visit.hypercapnic)
    if score is None:
        return None, [], []
    notes = [texts["news2_score"][ctx.lang].format(score=score.total)]
    if score.missing:
        notes[0] += texts["news2_partial"][ctx.lang].format(missing=", ".join(score.missing))
    criteria: list[Criterion] = []
    for row in table.get("levels") or []:
        if row.get("single_3"):
            red = score.single_red
            if not red:
                continue
            shown = ", ".join(red)
        else:
            if score.total < int(row["ge"]):
                continue
            shown = str(score.total)
        text = row["text"][ctx.lang].format(value=shown)
        criteria.append(
            Criterion(
                rule_id=str(row["id"]),
                level=int(row["level"]),
                reason=_reason(
                    ctx, text, str(row["id"]), str(row["source"]), str(row.get("section", ""))
                ),
                source=ctx.knowledge.cite(str(row["source"]), str(row.get("section", "")), "en"),
                red_flag=int(row["level"]) <= 2,
                kind="score",
            )
        )
        break
    return score, criteria, notes


# --------------------------------------------------------------------------- pathways


def _stroke(ctx: _Ctx) -> tuple[list[Criterion], dict[str, Any], list[str]]:
    spec = ctx.knowledge.pathways["stroke"]
    found = [name for name, rx in ctx.knowledge.stroke_components.items() if _find(ctx, rx)]
    if not found:
        return [], {}, []
    letters = [n for n in found if n != "named"]
    onset = ctx.visit.onset_minutes
    lysis = int(spec["thrombolysis_window_minutes"])
    ectomy = int(spec["thrombectomy_window_minutes"])
    texts = spec["texts"]
    components = "/".join(letters) if letters else ("卒中" if ctx.lang == "zh" else "stroke")
    lines = [texts["suspected"][ctx.lang].format(components=components)]
    if onset is None:
        lines.append(texts["unknown_onset"][ctx.lang])
        in_lysis, in_ectomy = None, None
    else:
        in_lysis, in_ectomy = onset <= lysis, onset <= ectomy
        key = "thrombolysis" if in_lysis else "thrombectomy" if in_ectomy else "outside"
        lines.append(texts[key][ctx.lang].format(onset=_fmt(onset)))
    green = onset is None or bool(in_ectomy)
    detail: dict[str, Any] = {
        "be_fast": letters,
        "onset_minutes": (int(onset) if onset is not None and onset == int(onset) else onset),
        "thrombolysis_window_minutes": lysis,
        "thrombectomy_window_minutes": ectomy,
        "within_thrombolysis_window": in_lysis,
        "within_thrombectomy_window": in_ectomy,
        "green_channel": green,
    }
    source, section = str(spec["source"]), str(spec.get("section", ""))
    criterion = Criterion(
        rule_id=str(spec["id"]),
        level=int(spec.get("level", 2)),
        reason=_reason(
            ctx,
            ";".join(lines) if ctx.lang == "zh" else "; ".join(lines),
            str(spec["id"]),
            source,
            section,
        ),
        source=ctx.knowledge.cite(source, section, "en"),
        red_flag=True,
        pathway="stroke",
        kind="pathway",
    )
    return [criterion], detail, lines


def _qsofa(ctx: _Ctx) -> tuple[int | None, list[str]]:
    spec = ctx.knowledge.pathways["sepsis"]
    vitals = ctx.visit.vitals
    if (
        vitals.rr is None
        and vitals.sbp is None
        and vitals.gcs is None
        and vitals.consciousness is None
    ):
        return None, []
    parts: list[str] = []
    if vitals.rr is not None and vitals.rr >= float(spec["rr_ge"]):
        parts.append(f"RR {_fmt(vitals.rr)}")
    if vitals.sbp is not None and vitals.sbp <= float(spec["sbp_le"]):
        parts.append(f"SBP {_fmt(vitals.sbp)}")
    altered = (vitals.gcs is not None and vitals.gcs < int(spec["gcs_lt"])) or (
        vitals.consciousness is not None and vitals.consciousness != "A"
    )
    if altered:
        parts.append("GCS/ACVPU")
    return len(parts), parts


def _sepsis(ctx: _Ctx, qsofa: int | None, parts: list[str]) -> list[Criterion]:
    spec = ctx.knowledge.pathways["sepsis"]
    if qsofa is None or qsofa < int(spec["positive"]):
        return []
    temp = ctx.visit.vitals.temp_c
    infection = _find(ctx, ctx.knowledge.infection) or (
        temp is not None and temp >= float(spec["fever_temp_ge"])
    )
    if not infection:
        return []
    text = spec["texts"]["suspected"][ctx.lang].format(score=qsofa, parts=", ".join(parts))
    source, section = str(spec["source"]), str(spec.get("section", ""))
    return [
        Criterion(
            rule_id=str(spec["id"]),
            level=int(spec.get("level", 2)),
            reason=_reason(ctx, text, str(spec["id"]), source, section),
            source=ctx.knowledge.cite(source, section, "en"),
            red_flag=True,
            pathway="sepsis",
            kind="pathway",
        )
    ]


# --------------------------------------------------------------------------- department


def _dept(knowledge: TriageKnowledge, code: str) -> Department:
    d = knowledge.departments[code]
    return Department(code=d.code, name_zh=d.name_zh, name_en=d.name_en)


def _route(ctx: _Ctx, fired: list[ComplaintRule], level: int) -> tuple[Department, list[str]]:
    """The outpatient department for the most urgent complaint, with age/sex/pregnancy rules."""
    knowledge, routing = ctx.knowledge, ctx.knowledge.routing
    texts = routing["texts"]
    notes: list[str] = []
    code: str | None = None
    for rule in sorted(fired, key=lambda r: r.level):
        if rule.department is not None:
            code = rule.department
            break
    code = code or str(routing["default"])
    visit = ctx.visit
    if visit.pregnant and code in routing.get("pregnancy_from", []):
        code = str(routing["pregnancy"])
        notes.append(texts["pregnancy"][ctx.lang])
    if visit.age_years is not None and visit.age_years < float(routing["paediatric_age_lt"]):
        if code in routing.get("paediatric_medical_from", []):
            code = str(routing["paediatric_medical"])
            notes.append(texts["child"][ctx.lang])
        elif code in routing.get("paediatric_surgical_from", []):
            code = str(routing["paediatric_surgical"])
            notes.append(texts["child"][ctx.lang])
    if knowledge.departments[code].female_only and visit.sex == "male":
        code = str(routing["female_only_fallback_male"])
        notes.append(texts["male_gyn"][ctx.lang])
    return _dept(knowledge, code), notes


# --------------------------------------------------------------------------- care, confidence


def _care(level: int, red_flags: list[str], fired: list[ComplaintRule], vitals: bool) -> str:
    """Ⅰ–Ⅲ (or any red flag) → emergency; Ⅳ → self-care only when every fired complaint row
    says so and no objective criterion or score fired; otherwise non-emergency care."""
    if level <= 3 or red_flags:
        return "emergency"
    if fired and all(r.care == "self_care" for r in fired) and not vitals:
        return "self_care"
    return "non_emergency"


def _confidence(ctx: _Ctx, matched: bool, vitals_fired: bool) -> tuple[float, list[str]]:
    """Stated confidence (MedBrain convention, ``levels.yaml`` settings) and why it is lower.

    Complaint-only triage starts at ``confidence_complaint_only``; each key vital sign
    measured adds ``confidence_per_vital``; a matched rule adds a bonus, a complaint that
    matched nothing (and no vital criterion) subtracts a penalty.
    """
    settings, texts, lang = ctx.knowledge.settings, ctx.knowledge.texts, ctx.lang
    vitals = ctx.visit.vitals
    keys = [str(k) for k in settings["key_vitals"]]
    present = [
        k
        for k in keys
        if getattr(vitals, k) is not None or (k == "consciousness" and vitals.gcs is not None)
    ]
    missing = [k for k in keys if k not in present]
    notes: list[str] = []
    confidence = float(settings["confidence_complaint_only"])
    if not present:
        notes.append(texts["complaint_only"][lang])
    else:
        confidence += float(settings["confidence_per_vital"]) * len(present)
        if missing:
            notes.append(texts["partial_vitals"][lang].format(missing=", ".join(missing)))
    if matched:
        confidence += float(settings["confidence_rule_matched_bonus"])
    elif not vitals_fired:
        confidence -= float(settings["confidence_no_rule_penalty"])
        notes.append(texts["no_rule"][lang])
    return round(min(float(settings["confidence_max"]), max(0.05, confidence)), 2), notes


# --------------------------------------------------------------------------- assess


def assess(
    visit: Visit,
    knowledge: TriageKnowledge,
    lang: str = "zh",
    review_threshold: float | None = None,
) -> TriageResult:
    """Triage one visit.

    Parameters
    ----------
    visit
        A validated visit (:func:`medbrain.triage.model.parse_visit`).
    knowledge
        From :func:`medbrain.triage.knowledge.load_triage_knowledge`.
    lang
        ``zh`` or ``en`` for ``reasons``, ``red_flags`` and ``actions``.
    review_threshold
        Confidence below which ``needs_review`` is set (default from ``levels.yaml``).

    Returns
    -------
    TriageResult
        Level, zone, maximum wait, care, department, pathway, red flags, cited reasons,
        NEWS2, qSOFA and the stated confidence.

    References
    ----------
    急诊预检分诊专家共识. 中华急诊医学杂志 2018;27(6):599-604, §1.2-1.3 and Table 1.
    """
    lang = "en" if lang == "en" else "zh"
    ctx = _Ctx(visit=visit, knowledge=knowledge, lang=lang, text=normalise(visit.complaint))
    settings = knowledge.settings

    complaint_criteria, fired = _complaint_criteria(ctx)
    vital_criteria = _objective_criteria(ctx) + _paediatric_criteria(ctx)
    news2, news2_criteria, news2_notes = _news2(ctx)
    stroke_criteria, stroke_detail, _ = _stroke(ctx)
    qsofa, qsofa_parts = _qsofa(ctx)
    sepsis_criteria = _sepsis(ctx, qsofa, qsofa_parts)

    criteria = (
        vital_criteria + news2_criteria + stroke_criteria + sepsis_criteria + complaint_criteria
    )
    criteria.sort(key=lambda c: (c.level, c.rule_id))
    level = criteria[0].level if criteria else 4
    level_def = knowledge.levels[level]

    # Pathway: from the most urgent criterion that names one; ties by configured priority.
    priority = {name: i for i, name in enumerate(knowledge.pathway_priority)}
    with_pathway = [c for c in criteria if c.pathway]
    with_pathway.sort(key=lambda c: (c.level, priority.get(c.pathway or "", 99)))
    pathway = with_pathway[0].pathway if with_pathway else None

    red_flags: list[str] = []
    for c in criteria:
        if c.red_flag:
            label = c.reason.split(" [", 1)[0]
            if label not in red_flags:
                red_flags.append(label)

    care = _care(level, red_flags, fired, bool(vital_criteria or news2_criteria))
    routed, route_notes = _route(ctx, fired, level)
    emergency_dept = _dept(knowledge, str(knowledge.routing["emergency"]))
    if care == "emergency":
        department = emergency_dept
        specialty = routed if routed.code != emergency_dept.code and fired else None
    else:
        department, specialty = routed, None

    confidence, notes = _confidence(
        ctx, matched=bool(fired or stroke_criteria), vitals_fired=bool(vital_criteria)
    )
    threshold = (
        float(settings["review_threshold"]) if review_threshold is None else review_threshold
    )

    reasons = [c.reason for c in criteria]
    if not criteria:
        reasons.append(knowledge.texts["level_default"][lang])
    reasons.extend(news2_notes)
    reasons.extend(notes)
    if care != "emergency":
        reasons.append(
            knowledge.routing["texts"]["routed"][lang].format(
                name=department.name_en if lang == "en" else department.name_zh
            )
        )
        reasons.extend(route_notes)
    if care == "self_care":
        reasons.append(knowledge.texts["self_care"][lang])

    actions: list[str] = []
    for name in dict.fromkeys(c.pathway for c in with_pathway):
        if name:
            actions.append(knowledge.pathways[name]["action"][lang])
    if care == "emergency" and level <= 2:
        actions.append(knowledge.routing["texts"]["emergency"][lang])
        actions.append(knowledge.texts["emergency_call"][lang])

    detail: dict[str, Any] = {}
    if pathway == "stroke" or stroke_detail:
        detail["stroke"] = stroke_detail
    if any(c.pathway == "chest_pain" for c in criteria):
        detail["chest_pain"] = {
            "ecg_within_minutes": int(knowledge.pathways["chest_pain"]["ecg_within_minutes"])
        }
    if qsofa is not None:
        detail["sepsis"] = {
            "qsofa": qsofa,
            "parts": qsofa_parts,
            "suspected": bool(sepsis_criteria),
        }

    findings = tuple(
        Finding(
            rule_id=c.rule_id,
            category="triage",
            severity=SEVERITY_BY_LEVEL[c.level],
            message=c.reason,
            evidence=(
                Evidence(source=c.source),
                Evidence(document="complaint", quote=visit.complaint),
            )
            if c.kind == "complaint"
            else (Evidence(source=c.source),),
            confidence=confidence,
            needs_review=confidence < threshold,
            extra={"level": c.level},
        ).to_dict()
        for c in criteria
    )
    return TriageResult(
        level=level,
        level_name=level_def.name,
        level_title=level_def.title[lang],
        zone=level_def.zone,
        zone_name=level_def.zone_name[lang],
        max_wait_minutes=level_def.max_wait_minutes,
        care=care,
        department=department,
        pathway=pathway,
        red_flags=tuple(red_flags),
        reasons=tuple(reasons),
        news2=news2.total if news2 is not None else None,
        qsofa=qsofa,
        confidence=confidence,
        needs_review=confidence < threshold,
        criteria=tuple(criteria),
        actions=tuple(actions),
        pathway_detail=detail,
        specialty=specialty,
        ignored_fields=visit.ignored_fields,
        findings=findings,
    )
