"""Culture before therapeutic antimicrobials, and surgical prophylaxis timing (pure).

* **治疗性使用抗菌药物前病原学送检率**: inpatient stays treated with an antimicrobial (not
  prophylaxis only) with a microbiology culture sample taken before the first antimicrobial
  order ÷ all such stays; overall and for stays that received a 限制 or 特殊 grade drug
  (卫办医政发〔2012〕32号 targets ≥ 30 % / 50 % / 80 %, ``knowledge/rx/stewardship_quality.yaml``).
  A sample counts when its collection time lies in ``[admission − hours_before_admission,
  first antimicrobial order]``.
* **Surgical prophylaxis timing**: first prophylactic dose 30–60 min before the incision (1–2 h for
  vancomycin and fluoroquinolones), 《抗菌药物临床应用指导原则(2015年版)》.
* **Surgical prophylaxis duration**: from the end of the operation to the last prophylactic
  dose; more than ``clean_max_duration_hours`` (24 h: the limit for clean surgery, same source)
  is counted as over the limit. The wound class is not in the record, so every operation is held
  to the clean-surgery limit and the page says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from medbrain.core import yamlio
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.rx.knowledge import RxKnowledge, normalize_text
from medbrain.rx.names import resolve_name

GRADE_GROUPS = ("all", "限制", "特殊")


@dataclass(frozen=True, slots=True)
class QualityRules:
    culture_codes: frozenset[str]
    culture_terms: tuple[str, ...]
    hours_before_admission: float
    culture_targets: Mapping[str, float]
    culture_source: str
    codes_source: str
    window: tuple[float, float]
    long_window: tuple[float, float]
    long_drugs: frozenset[str]
    prophylaxis_source: str
    clean_max_hours: float = 24.0
    dose_lookback_hours: float = 24.0
    non_operative_prefixes: tuple[str, ...] = ()
    culture_note: str = ""
    prophylaxis_note: str = ""


def _window(value: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not 0 <= value[0] < value[1]
    ):
        raise KnowledgeError(f"rx/stewardship_quality.yaml: {where}: must be [min, max] minutes")
    return float(value[0]), float(value[1])


def build_quality_rules(raw: Mapping[str, Any]) -> QualityRules:
    """Validate a document shaped like ``knowledge/rx/stewardship_quality.yaml``."""
    culture = raw.get("culture")
    proph = raw.get("surgical_prophylaxis")
    if not isinstance(culture, Mapping) or not isinstance(proph, Mapping):
        raise KnowledgeError(
            "rx/stewardship_quality.yaml: culture and surgical_prophylaxis are required"
        )
    codes = culture.get("loinc")
    if not isinstance(codes, list) or not codes:
        raise KnowledgeError("rx/stewardship_quality.yaml: culture.loinc: list of codes required")
    targets = culture.get("targets_pct") or {}
    if set(targets) - set(GRADE_GROUPS):
        raise KnowledgeError(
            f"rx/stewardship_quality.yaml: culture.targets_pct: keys are {', '.join(GRADE_GROUPS)}"
        )
    for name, section in (("culture.targets_source", culture.get("targets_source")),
                          ("surgical_prophylaxis.source", proph.get("source"))):  # fmt: skip
        if not isinstance(section, str) or not section:
            raise KnowledgeError(f"rx/stewardship_quality.yaml: {name}: required text is missing")
    return QualityRules(
        culture_codes=frozenset(str(c) for c in codes),
        culture_terms=tuple(str(t).lower() for t in culture.get("text_terms") or ()),
        hours_before_admission=float(culture.get("hours_before_admission", 0)),
        culture_targets={str(k): float(v) for k, v in targets.items()},
        culture_source=str(culture["targets_source"]),
        codes_source=str(culture.get("codes_source", "")),
        window=_window(proph.get("window_minutes"), "surgical_prophylaxis.window_minutes"),
        long_window=_window(
            proph.get("long_infusion_window_minutes", proph.get("window_minutes")),
            "surgical_prophylaxis.long_infusion_window_minutes",
        ),
        long_drugs=frozenset(str(d) for d in proph.get("long_infusion_drugs") or ()),
        prophylaxis_source=str(proph["source"]),
        clean_max_hours=_positive(proph, "clean_max_duration_hours", 24.0),
        dose_lookback_hours=_positive(proph, "dose_lookback_hours", 24.0),
        non_operative_prefixes=tuple(
            str(p) for p in proph.get("non_operative_code_prefixes") or ()
        ),
        culture_note=str(culture.get("note") or ""),
        prophylaxis_note=str(proph.get("note") or ""),
    )


def _positive(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise KnowledgeError(
            f"rx/stewardship_quality.yaml: surgical_prophylaxis.{key}: must be a positive number"
        )
    return float(value)


@lru_cache(maxsize=1)
def load_quality_rules() -> QualityRules:
    text = (
        resources.files("medbrain.knowledge")
        .joinpath("rx")
        .joinpath("stewardship_quality.yaml")
        .read_text(encoding="utf-8")
    )
    data = yamlio.parse(text)
    if not isinstance(data, Mapping):
        raise KnowledgeError("rx/stewardship_quality.yaml: top level must be a mapping")
    return build_quality_rules(data)


def is_culture(code: str | None, display: str | None, rules: QualityRules) -> bool:
    """A microbiology culture: a listed LOINC code, or a display naming a culture."""
    if code and code in rules.culture_codes:
        return True
    text = (display or "").lower()
    return bool(text) and any(term in text for term in rules.culture_terms)


@dataclass(frozen=True, slots=True)
class TherapyEpisode:
    """One inpatient stay treated with antimicrobials (therapeutic, not prophylaxis only)."""

    key: str
    department: str
    first_order_at: datetime
    grades: frozenset[str]
    culture_times: tuple[datetime, ...] = ()
    admit_at: datetime | None = None


def cultured_before(episode: TherapyEpisode, rules: QualityRules) -> bool:
    earliest = (
        episode.admit_at - timedelta(hours=rules.hours_before_admission)
        if episode.admit_at is not None
        else None
    )
    return any(
        t <= episode.first_order_at and (earliest is None or t >= earliest)
        for t in episode.culture_times
    )


def _pct(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 2) if whole else None


def culture_submission(episodes: Iterable[TherapyEpisode], rules: QualityRules) -> dict[str, Any]:
    """Culture-before-therapy rates overall, by grade group and by department."""
    groups = {g: [0, 0] for g in GRADE_GROUPS}
    by_dept: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ep in episodes:
        ok = cultured_before(ep, rules)
        for g in GRADE_GROUPS:
            if g == "all" or g in ep.grades:
                groups[g][0] += 1
                groups[g][1] += int(ok)
        by_dept[ep.department][0] += 1
        by_dept[ep.department][1] += int(ok)
    return {
        "groups": [
            {
                "group": g,
                "episodes": n,
                "cultured": k,
                "rate_pct": _pct(k, n),
                "target_pct": rules.culture_targets.get(g),
                "meets_target": (
                    None
                    if not n or g not in rules.culture_targets
                    else k * 100.0 / n >= rules.culture_targets[g]
                ),
            }
            for g, (n, k) in groups.items()
        ],
        "by_department": sorted(
            (
                {"department": d, "episodes": n, "cultured": k, "rate_pct": _pct(k, n)}
                for d, (n, k) in by_dept.items()
            ),
            key=lambda row: (float(row["rate_pct"] or 0.0), str(row["department"])),
        ),
        "codes": sorted(rules.culture_codes),
        "sources": {"targets": rules.culture_source, "codes": rules.codes_source},
        "note": rules.culture_note,
    }


@dataclass(frozen=True, slots=True)
class ProphylaxisCase:
    """One operation: incision time and the first prophylactic antimicrobial dose (if any)."""

    key: str
    department: str
    incision_at: datetime
    first_dose_at: datetime | None
    drug_id: str | None = None
    end_at: datetime | None = None  # end of the operation (None: unknown, the incision counts)
    last_dose_at: datetime | None = None  # last prophylactic dose (None: duration unknown)


def prophylaxis_timing_of(case: ProphylaxisCase, rules: QualityRules) -> tuple[str, float | None]:
    """``("on_time" | "early" | "late" | "no_dose", minutes before incision)``."""
    if case.first_dose_at is None:
        return "no_dose", None
    minutes = (case.incision_at - case.first_dose_at).total_seconds() / 60.0
    low, high = rules.long_window if case.drug_id in rules.long_drugs else rules.window
    if minutes > high:
        return "early", minutes
    if minutes < low:
        return "late", minutes
    return "on_time", minutes


def prophylaxis_hours(case: ProphylaxisCase) -> float | None:
    """Hours from the end of the operation (else the incision) to the last prophylactic dose;
    None when the last dose is unknown. Negative when every dose was given before the end."""
    if case.last_dose_at is None:
        return None
    end = case.end_at or case.incision_at
    return (case.last_dose_at - end).total_seconds() / 3600.0


def prophylaxis_timing(cases: Iterable[ProphylaxisCase], rules: QualityRules) -> dict[str, Any]:
    counts = {"on_time": 0, "early": 0, "late": 0, "no_dose": 0}
    by_dept: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    n = with_duration = over = 0
    for case in cases:
        status, _ = prophylaxis_timing_of(case, rules)
        counts[status] += 1
        n += 1
        by_dept[case.department][0] += 1
        by_dept[case.department][1] += int(status == "on_time")
        hours = prophylaxis_hours(case)
        if hours is not None:
            with_duration += 1
            over += int(hours > rules.clean_max_hours)
            by_dept[case.department][2] += int(hours > rules.clean_max_hours)
    return {
        "operations": n,
        **counts,
        "on_time_pct": _pct(counts["on_time"], n),
        "window_minutes": list(rules.window),
        "long_infusion_window_minutes": list(rules.long_window),
        "duration": {
            "operations": with_duration,
            "over_limit": over,
            "within_limit_pct": _pct(with_duration - over, with_duration),
            "limit_hours": rules.clean_max_hours,
        },
        "by_department": sorted(
            (
                {
                    "department": d,
                    "operations": k,
                    "on_time": ok,
                    "on_time_pct": _pct(ok, k),
                    "over_limit": long,
                }
                for d, (k, ok, long) in by_dept.items()
            ),
            key=lambda row: (float(row["on_time_pct"] or 0.0), str(row["department"])),
        ),
        "source": rules.prophylaxis_source,
        "note": rules.prophylaxis_note,
    }


@dataclass(frozen=True, slots=True)
class Dose:
    """One administered dose of a systemic antimicrobial (drug id from the knowledge base)."""

    given_at: datetime
    drug_id: str
    given_end: datetime | None = None


def is_operation(code: str | None, rules: QualityRules) -> bool:
    """An operation (not a diagnostic or non-operative procedure) by its ICD-9-CM-3 code."""
    return bool(code) and not str(code).startswith(rules.non_operative_prefixes)


def prophylaxis_case_from_doses(
    key: str,
    department: str,
    incision_at: datetime,
    end_at: datetime | None,
    doses: Iterable[Dose],
    rules: QualityRules,
) -> ProphylaxisCase | None:
    """The prophylaxis of one operation from the stay's administered doses (None: no dose).

    Doses from ``dose_lookback_hours`` before the incision onwards belong to the operation's
    prophylaxis; the first of them is the timing dose (its drug chooses the 30–60 or 60–120 min
    window), the last one ends the course. Doses given earlier in the stay are not counted.
    """
    since = incision_at - timedelta(hours=rules.dose_lookback_hours)
    course = sorted((d for d in doses if d.given_at >= since), key=lambda d: d.given_at)
    if not course:
        return None
    last = max(course, key=lambda d: d.given_end or d.given_at)
    return ProphylaxisCase(
        key=key,
        department=department,
        incision_at=incision_at,
        first_dose_at=course[0].given_at,
        drug_id=course[0].drug_id,
        end_at=end_at,
        last_dose_at=last.given_end or last.given_at,
    )


def has_infection_indication(
    diagnoses: Iterable[str], infection_terms: Iterable[str], prophylaxis_terms: Iterable[str]
) -> bool:
    """True when a diagnosis names an infection (not qualified as prophylaxis): antimicrobials
    around an operation are then treatment, not prophylaxis (2015 指导原则: 术前已存在细菌性感染
    的手术属治疗性应用)."""
    proph = tuple(prophylaxis_terms)
    infection = tuple(t for t in infection_terms if t not in proph)
    texts = [normalize_text(d) for d in diagnoses]
    return any(t in d and not any(p in d for p in proph) for d in texts for t in infection)


def prophylaxis_only(
    diagnoses: Iterable[str], infection_terms: Iterable[str], prophylaxis_terms: Iterable[str]
) -> bool:
    """True when the only "infection" indication is prophylaxis (then the use is not
    therapeutic and the stay leaves the culture denominator). Terms are normalised text."""
    proph = tuple(prophylaxis_terms)
    infection = tuple(t for t in infection_terms if t not in proph)
    texts = [normalize_text(d) for d in diagnoses]
    has_proph = any(p in d for d in texts for p in proph)
    has_infection = any(t in d and not any(p in d for p in proph) for d in texts for t in infection)
    return has_proph and not has_infection


# -- surgical prophylaxis from batch input -------------------------------------------------------
#
# Batch input gives the timing in the prescription document: ``surgery.incision_at`` and
# ``given_at`` (first administration, ISO 8601) on its antimicrobial items. Stored stays use the
# imported MedicationAdministration times instead (store/rx_stewardship.py,
# :func:`prophylaxis_case_from_doses`).

SYSTEMIC_ANTIMICROBIAL_ATC = ("J01", "J02")


def _instant(value: Any, source: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise InputError(source, field, "must be an ISO 8601 date-time text")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(source, field, f"not an ISO 8601 date-time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def prophylaxis_case_of(
    key: str, document: Any, kb: RxKnowledge, source: str = "prescription"
) -> ProphylaxisCase | None:
    """The operation in a batch document (None when it has no ``surgery``).

    Raises
    ------
    InputError
        ``surgery.incision_at`` missing or not a date-time, or an item's ``given_at`` not one.
    """
    if not isinstance(document, Mapping) or document.get("surgery") is None:
        return None
    surgery = document["surgery"]
    if not isinstance(surgery, Mapping):
        raise InputError(source, "surgery", "must be an object with incision_at")
    incision = _instant(surgery.get("incision_at"), source, "surgery.incision_at")
    first: tuple[datetime, str] | None = None
    items = document.get("items")
    for n, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, Mapping) or item.get("given_at") is None:
            continue
        given = _instant(item["given_at"], source, f"items[{n}].given_at")
        found = resolve_name(str(item.get("drug", "")), kb)
        drug = kb.drugs.get(found.drug_id) if found else None
        if drug is None or not str(drug.atc or "").startswith(SYSTEMIC_ANTIMICROBIAL_ATC):
            continue
        if first is None or given < first[0]:
            first = (given, drug.id)
    return ProphylaxisCase(
        key=key,
        department=str(document.get("department") or "—"),
        incision_at=incision,
        first_dose_at=first[0] if first else None,
        drug_id=first[1] if first else None,
    )
