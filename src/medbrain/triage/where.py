"""Where to go (pure): rank institutions by distance, capability, live load and season.

Inputs are the configured institutions (``knowledge/triage/institutions.yaml``, demo content;
a region overrides rows by ``code``), the live load the adapter read from the database, the
patient's location, the department the guidance chose, and whether a red flag was found.

* A red flag (or ``care == "emergency"``) → only institutions with an emergency department
  open now, those reporting free beds first, then by distance; never a clinic. When none
  reports capacity the nearest emergency department is still returned, with the advice to
  call 120.
* Otherwise → institutions that have the department (its code or its parent, e.g. "03"
  covers "03.04") and are open now, ranked by estimated minutes until seen: travel time
  (haversine distance at the configured speed) + queue × minutes per patient × seasonal
  factor. Stale or missing live load counts as unknown (no queue time, stated in the reason).

Every recommendation carries the facts of its reason, which the adapter words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from medbrain.core import yamlio
from medbrain.core.errors import InputError, KnowledgeError
from medbrain.knowledge.overrides import deep_merge

EARTH_RADIUS_KM = 6371.0088
ED = "20"
LANGS = ("zh", "en")


@dataclass(frozen=True, slots=True)
class Institution:
    code: str
    name: Mapping[str, str]
    level: str
    lat: float
    lon: float
    departments: frozenset[str]
    open_at: str  # "HH:MM"
    close_at: str
    days: frozenset[int]  # ISO weekdays 1..7
    ed_24h: bool

    def has(self, department: str) -> bool:
        parts = department.split(".")
        return any(".".join(parts[: i + 1]) in self.departments for i in range(len(parts)))

    def clinic_open(self, local: datetime) -> bool:
        hhmm = local.strftime("%H:%M")
        return local.isoweekday() in self.days and self.open_at <= hhmm < self.close_at


@dataclass(frozen=True, slots=True)
class Season:
    id: str
    months: frozenset[int]
    departments: frozenset[str]
    factor: float
    label: Mapping[str, str]
    source: str


@dataclass(frozen=True, slots=True)
class InstitutionKnowledge:
    institutions: tuple[Institution, ...]
    seasons: tuple[Season, ...]
    timezone: str
    km_per_hour: float
    minutes_per_patient: float
    ed_minutes_per_patient: float
    stale_minutes: float
    max_results: int
    version: str
    default_location: tuple[float, float] = (0.0, 0.0)

    def get(self, code: str) -> Institution | None:
        return next((i for i in self.institutions if i.code == code), None)


@dataclass(frozen=True, slots=True)
class Load:
    queue_length: int
    free_beds: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Recommendation:
    code: str
    name: Mapping[str, str]
    distance_km: float
    travel_minutes: float
    wait_minutes: float | None  # None when the live load is unknown
    queue_length: int | None
    free_beds: int | None
    season: Mapping[str, str] | None
    season_factor: float
    emergency: bool
    load_known: bool
    reasons: tuple[str, ...] = field(default=())  # reason keys: "nearest_ed", "capacity", ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": dict(self.name),
            "distance_km": round(self.distance_km, 2),
            "travel_minutes": round(self.travel_minutes),
            "wait_minutes": round(self.wait_minutes) if self.wait_minutes is not None else None,
            "queue_length": self.queue_length,
            "free_beds": self.free_beds,
            "season": dict(self.season) if self.season else None,
            "season_factor": self.season_factor,
            "emergency": self.emergency,
            "load_known": self.load_known,
            "reasons": list(self.reasons),
        }


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (mean Earth radius, IUGG)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def check_location(lat: Any, lon: Any) -> tuple[float, float]:
    """Validated (lat, lon); a clear InputError naming the field otherwise."""
    out: list[float] = []
    for name, value, bound in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError("location", name, "must be a number")
        if not math.isfinite(value) or abs(value) > bound:
            raise InputError("location", name, f"must be between -{bound:g} and {bound:g}")
        out.append(float(value))
    return out[0], out[1]


def _texts(where: str, value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or any(not str(value.get(k) or "") for k in LANGS):
        raise KnowledgeError(f"triage/institutions.yaml: {where} needs zh and en")
    return {k: str(value[k]) for k in LANGS}


def build_institutions(data: Mapping[str, Any]) -> InstitutionKnowledge:
    """Validate the institutions file (coordinates, hours, departments, seasons with sources)."""
    rows = data.get("institutions")
    if not isinstance(rows, list) or not rows:
        raise KnowledgeError("triage/institutions.yaml: institutions must be a non-empty list")
    institutions: list[Institution] = []
    for row in rows:
        code = str(row.get("code") or "")
        try:
            lat, lon = check_location(row.get("lat"), row.get("lon"))
        except InputError as exc:
            raise KnowledgeError(
                f"triage/institutions.yaml: {code}.{exc.field} {exc.problem}"
            ) from None
        hours = row.get("hours") or {}
        departments = row.get("departments")
        if not code or not isinstance(departments, list) or not departments:
            raise KnowledgeError(
                f"triage/institutions.yaml: {code or '?'} needs code and departments"
            )
        open_at, close_at = str(hours.get("open", "")), str(hours.get("close", ""))
        if len(open_at) != 5 or len(close_at) != 5 or open_at >= close_at:
            raise KnowledgeError(
                f"triage/institutions.yaml: {code}.hours needs open < close (HH:MM)"
            )
        institutions.append(
            Institution(
                code=code,
                name=_texts(f"{code}.name", row.get("name")),
                level=str(row.get("level") or ""),
                lat=lat,
                lon=lon,
                departments=frozenset(str(d) for d in departments),
                open_at=open_at,
                close_at=close_at,
                days=frozenset(int(d) for d in hours.get("days") or range(1, 8)),
                ed_24h=bool(row.get("ed_24h")) and ED in {str(d) for d in departments},
            )
        )
    seasons = []
    for row in data.get("seasons") or []:
        if not row.get("source") or float(row.get("factor", 0)) <= 0:
            raise KnowledgeError(
                f"triage/institutions.yaml: season {row.get('id')} needs factor and source"
            )
        seasons.append(
            Season(
                id=str(row["id"]),
                months=frozenset(int(m) for m in row["months"]),
                departments=frozenset(str(d) for d in row["departments"]),
                factor=float(row["factor"]),
                label=_texts(f"season {row['id']}", row.get("label")),
                source=str(row["source"]),
            )
        )
    settings = data.get("settings") or {}
    origin = data.get("default_location") or {}
    try:
        default_location = check_location(origin.get("lat"), origin.get("lon"))
    except InputError as exc:
        raise KnowledgeError(
            f"triage/institutions.yaml: default_location.{exc.field} {exc.problem}"
        ) from None
    tz = str(data.get("timezone") or "Asia/Shanghai")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise KnowledgeError(f"triage/institutions.yaml: unknown timezone {tz!r}") from None
    return InstitutionKnowledge(
        institutions=tuple(institutions),
        seasons=tuple(seasons),
        timezone=tz,
        km_per_hour=float(settings.get("travel_km_per_hour", 30)),
        minutes_per_patient=float(settings.get("minutes_per_queued_patient", 6)),
        ed_minutes_per_patient=float(settings.get("ed_minutes_per_queued_patient", 10)),
        stale_minutes=float(settings.get("load_stale_minutes", 60)),
        max_results=int(settings.get("max_results", 3)),
        version=str(data.get("version", "")),
        default_location=default_location,
    )


def _shipped() -> Any:
    text = (
        resources.files("medbrain.knowledge")
        .joinpath("triage")
        .joinpath("institutions.yaml")
        .read_text(encoding="utf-8")
    )
    data = yamlio.parse(text)
    if not isinstance(data, dict):
        raise KnowledgeError("triage/institutions.yaml: top level must be a mapping")
    return data


@lru_cache(maxsize=1)
def default_institutions() -> InstitutionKnowledge:
    return build_institutions(_shipped())


def institutions_with(override: Mapping[str, Any] | None) -> InstitutionKnowledge:
    """The shipped institutions with a region's override merged in (rows by ``code``)."""
    if not override:
        return default_institutions()
    return build_institutions(deep_merge(_shipped(), dict(override), key="code"))


def _season(knowledge: InstitutionKnowledge, department: str, month: int) -> Season | None:
    hits = [s for s in knowledge.seasons if month in s.months and department in s.departments]
    return max(hits, key=lambda s: s.factor) if hits else None


def recommend(
    knowledge: InstitutionKnowledge,
    loads: Mapping[str, Load],
    *,
    lat: float,
    lon: float,
    department: str,
    emergency: bool,
    now: datetime,
) -> list[Recommendation]:
    """Ranked institutions for the patient (see the module docstring for the rules)."""
    lat, lon = check_location(lat, lon)
    if now.tzinfo is None:
        raise InputError("where", "now", "must carry a time zone")
    local = now.astimezone(ZoneInfo(knowledge.timezone))
    dept = ED if emergency else department
    season = _season(knowledge, dept, local.month)
    factor = season.factor if season else 1.0
    per_patient = knowledge.ed_minutes_per_patient if emergency else knowledge.minutes_per_patient
    candidates: list[tuple[tuple[float, ...], Recommendation]] = []
    for inst in knowledge.institutions:
        if emergency:
            if not inst.ed_24h:
                continue  # never a clinic for a red flag
        elif not inst.has(dept) or not inst.clinic_open(local):
            continue
        distance = haversine_km(lat, lon, inst.lat, inst.lon)
        travel = distance / knowledge.km_per_hour * 60
        load = loads.get(inst.code)
        fresh = load is not None and now - load.updated_at <= timedelta(
            minutes=knowledge.stale_minutes
        )
        wait = load.queue_length * per_patient * factor if fresh and load is not None else None
        free = load.free_beds if fresh and load is not None else None
        reasons: list[str] = []
        if emergency:
            has_capacity = free is None or free > 0
            reasons.append("ed_capacity" if free is not None and free > 0 else "ed")
            if free == 0:
                reasons.append("ed_full")
            if not fresh:
                reasons.append("load_unknown")
            key: tuple[float, ...] = (
                0 if free is not None and free > 0 else 1 if has_capacity else 2,
                distance,
            )
        else:
            reasons.append("department")
            reasons.append("load" if fresh else "load_unknown")
            if season is not None:
                reasons.append("season")
            key = (travel + (wait or 0.0), distance)
        candidates.append(
            (
                key,
                Recommendation(
                    code=inst.code,
                    name=inst.name,
                    distance_km=distance,
                    travel_minutes=travel,
                    wait_minutes=wait,
                    queue_length=load.queue_length if fresh and load is not None else None,
                    free_beds=free,
                    season=season.label if season else None,
                    season_factor=factor,
                    emergency=emergency,
                    load_known=fresh,
                    reasons=tuple(reasons),
                ),
            )
        )
    candidates.sort(key=lambda c: c[0])
    return [r for _k, r in candidates[: knowledge.max_results]]
