"""Hospital operations: the director cockpit, beds, forecasts and the consumables page.

Pages (cookie login):

=============================  ===========================================  ===================
``GET /ops``                   14 indicator tiles with trends, drill-down,  director, admin
                               forecast vs actual, beds by department
``GET /materials``             lots expiring within the horizons, reorder   materials, director,
                               list                                         admin
=============================  ===========================================  ===================

REST (``/api/v1/ops``): ``GET /cockpit``, ``GET /indicators/{key}/departments``,
``GET /indicators/{key}/trend``, ``GET /forecast``, ``GET /beds``,
``GET /consumables/expiry``, ``GET /consumables/reorder`` and ``POST /derive`` (admin: derive
department-day rows from the store's encounters; audited).

The router only reads the pre-aggregated tables (:mod:`medbrain.store.ops`) and calls the pure
engines in :mod:`medbrain.ops`. Operations data is aggregate (no patient is identifiable), so
reads are not written to the audit chain; the one state change (``POST /derive``) is.

Hospital targets and thresholds: ``MEDBRAIN_HOME/ops.yaml`` (same shape as
``knowledge/ops/indicators.yaml``) is merged over the shipped file when present.

The forecast-vs-actual tile forecasts the hospital's outpatient volume (the last 400 days:
holiday factors from all of them, the model fitted on the last 200) twice: from 14 days before
the end, and from the end. Results are cached per process by the series they were fitted on;
the page fetches the tile after rendering, so the fit never delays it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from medbrain.api.deps import (
    AuditDep,
    LangDep,
    Principal,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    require_role,
)
from medbrain.api.routers.ui import page_router, render, ui_role
from medbrain.core.config import Settings
from medbrain.core.errors import InputError, NotFoundError
from medbrain.core.i18n import Lang, t
from medbrain.knowledge.overrides import read_hospital_file
from medbrain.ops import forecast as fc
from medbrain.ops.beds import bed_status
from medbrain.ops.cockpit import (
    GRANULARITIES,
    DailyTable,
    ForecastComparison,
    compute_cockpit,
    drill_down,
    series,
)
from medbrain.ops.consumables import check_horizons, expiry_warnings, reorder_list
from medbrain.ops.knowledge import OpsKnowledge, load_ops_knowledge
from medbrain.store import ops as store

OPS_ROLES = ("director", "admin")
MATERIALS_ROLES = ("materials", "director", "admin")
TILE_HISTORY_DAYS = 400
TILE_HORIZON = 14
MAX_PERIOD_DAYS = 3 * 366

api = APIRouter(prefix="/api/v1/ops", tags=["ops"])
OpsApiUser = Annotated[Principal, Depends(require_role(*OPS_ROLES))]
MaterialsApiUser = Annotated[Principal, Depends(require_role(*MATERIALS_ROLES))]
AdminApiUser = Annotated[Principal, Depends(require_role("admin"))]


pages = page_router()


OpsUiUser = Annotated[Principal, Depends(ui_role(*OPS_ROLES))]
MaterialsUiUser = Annotated[Principal, Depends(ui_role(*MATERIALS_ROLES))]


# -- shared helpers --------------------------------------------------------------------------


def knowledge_for(settings: Settings) -> OpsKnowledge:
    """Shipped knowledge merged with ``MEDBRAIN_HOME/ops.yaml`` when that file exists."""
    override = read_hospital_file(settings.home / "ops.yaml")
    return _default_knowledge() if override is None else load_ops_knowledge(override)


@lru_cache(maxsize=1)
def _default_knowledge() -> OpsKnowledge:
    return load_ops_knowledge(None)


def _period(session: Session, end: date | None, days: int) -> tuple[date, date]:
    """``days`` ending at ``end`` (default: the last day with data)."""
    first, last = store.data_range(session)
    if last is None or first is None:
        raise NotFoundError("ops/department_day (no operations data: run `medbrain demo seed`)")
    if not 1 <= days <= MAX_PERIOD_DAYS:
        raise InputError("query", "days", f"must be 1–{MAX_PERIOD_DAYS}, got {days}")
    stop = end or last
    if not first <= stop <= last:
        raise InputError("query", "end", f"{stop} is outside the data ({first} – {last})")
    return stop - timedelta(days=days - 1), stop


def _table(session: Session, start: date, end: date) -> DailyTable:
    """Rows of the period and of the previous period of equal length (for the change)."""
    return store.load_table(session, start - (end - start) - timedelta(days=1), end)


@lru_cache(maxsize=32)
def _cached_forecast(
    key: str, start: date, values: tuple[float, ...], horizon: int, model: str
) -> fc.SeriesForecast:
    return fc.forecast_series(fc.Series(key, start, values), horizon, model=model)


def _total_series(session: Session, start: date, end: date, department: str | None) -> fc.Series:
    rows = store.outpatient_series(session, start, end, [department] if department else None)
    totals: dict[date, float] = {}
    for day, _code, value in rows:
        totals[day] = totals.get(day, 0.0) + value
    key = department or "hospital"
    if not totals:
        raise InputError("query", "department", f"no outpatient data for {key!r}")
    return fc.series_from_rows([(d, key, v) for d, v in totals.items()])[0]


def forecast_comparison(
    session: Session, end: date, department: str | None, *, ahead: bool = True
) -> ForecastComparison | None:
    """Actual vs the forecast made 14 days before ``end``, and (``ahead``) the next 14 days."""
    first, _last = store.data_range(session)
    start = max(first or end, end - timedelta(days=TILE_HISTORY_DAYS - 1))
    if (end - start).days + 1 < fc.MIN_HISTORY_DAYS + TILE_HORIZON:
        return None
    s = _total_series(session, start, end, department)
    past = s.head(len(s.values) - TILE_HORIZON)
    back = _cached_forecast(s.key, past.start, past.values, TILE_HORIZON, fc.DEFAULT_MODEL)
    after = (
        _cached_forecast(s.key, s.start, s.values, TILE_HORIZON, fc.DEFAULT_MODEL)
        if ahead
        else None
    )
    points = after.points if after is not None else ()
    actual = s.values[-TILE_HORIZON:]
    return ForecastComparison(
        days=tuple(p.day for p in back.points),
        actual=tuple(actual),
        forecast=tuple(p.mean for p in back.points),
        lo80=tuple(p.lo[80] for p in back.points),
        hi80=tuple(p.hi[80] for p in back.points),
        ahead_days=tuple(p.day for p in points),
        ahead=tuple(p.mean for p in points),
        ahead_lo80=tuple(p.lo[80] for p in points),
        ahead_hi80=tuple(p.hi[80] for p in points),
    )


def cockpit_data(
    session: Session,
    settings: Settings,
    lang: Lang,
    *,
    end: date | None,
    days: int,
    department: str | None,
    granularity: str,
    with_forecast: bool = True,
) -> dict[str, Any]:
    """The cockpit document; ``with_forecast=False`` leaves the forecast tile empty (the page
    fetches it from ``GET /api/v1/ops/forecast/compare`` so that it renders at once)."""
    start, stop = _period(session, end, days)
    if granularity == "month":
        table = store.load_monthly_table(session, start, stop)
    else:
        table = _table(session, start, stop)
    if department is not None:
        table.dept_index(department)  # an unknown department is an InputError naming it
    knowledge = knowledge_for(settings)
    comparison = forecast_comparison(session, stop, department) if with_forecast else None
    result = compute_cockpit(
        table,
        knowledge,
        start,
        stop,
        department=department,
        granularity=granularity,
        lang=lang,
        forecast=comparison,
    ).to_dict()
    result["departments"] = [{"code": d.code, "name": d.name(lang)} for d in table.departments]
    return result


def _granularity(value: str) -> str:
    if value not in GRANULARITIES:
        raise InputError("query", "granularity", f"must be one of {GRANULARITIES}")
    return value


def _horizons(raw: str | None, default: Sequence[int]) -> tuple[int, ...]:
    if raw is None or raw.strip() == "":
        return tuple(default)
    values = []
    for part in raw.split(","):
        try:
            values.append(int(part.strip()))
        except ValueError:
            raise InputError(
                "query", "horizons", f"{part!r} is not a whole number of days"
            ) from None
    return check_horizons(values)


def materials_data(
    session: Session, settings: Settings, lang: Lang, horizons: str | None, as_of: date | None
) -> dict[str, Any]:
    knowledge = knowledge_for(settings)
    items, lots, uses = store.load_consumables(session)
    if not items:
        raise NotFoundError("ops/consumables (no consumables data: run `medbrain demo seed`)")
    today = as_of or max((u.day for u in uses), default=date.today()) + timedelta(days=1)
    hs = _horizons(horizons, knowledge.consumables.horizons_days)
    names = {i.code: (i.name_en if lang == "en" else i.name_zh) for i in items}
    warnings = expiry_warnings(lots, today, hs, names=names)
    cs = knowledge.consumables
    reorder = reorder_list(
        items,
        lots,
        uses,
        today,
        service_level=cs.service_level,
        review_period_days=cs.review_period_days,
        history_days=cs.history_days,
        lang=lang,
    )
    return {
        "today": today.isoformat(),
        "horizons": list(hs),
        "service_level": cs.service_level,
        "expiring": [w.to_dict() for w in warnings],
        "reorder": [r.to_dict() for r in reorder],
        "source": cs.source,
    }


# -- REST --------------------------------------------------------------------------------------


@api.get("/cockpit")
def get_cockpit(
    _user: OpsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    end: date | None = None,
    days: Annotated[int, Query(ge=1, le=MAX_PERIOD_DAYS)] = 365,
    department: str | None = None,
    granularity: str = "month",
) -> dict[str, Any]:
    """The 14 indicators for the period (hospital, or one department with ``department``)."""
    return cockpit_data(
        session,
        settings,
        lang,
        end=end,
        days=days,
        department=department or None,
        granularity=_granularity(granularity),
    )


@api.get("/indicators/{key}/departments")
def get_drill_down(
    key: str,
    _user: OpsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    end: date | None = None,
    days: Annotated[int, Query(ge=1, le=MAX_PERIOD_DAYS)] = 365,
) -> dict[str, Any]:
    """One indicator per department over the period, with the previous period."""
    knowledge = knowledge_for(settings)
    ind = knowledge.indicator(key)
    if ind is None:
        raise NotFoundError(f"ops/indicator/{key}")
    start, stop = _period(session, end, days)
    if key == "forecast_accuracy":
        rows = []
        for dept in store.departments(session):
            comp = forecast_comparison(session, stop, dept.code, ahead=False)
            mape = None if comp is None or comp.mape is None else round(comp.mape, 1)
            rows.append(
                {
                    "code": dept.code,
                    "name": dept.name(lang),
                    "value": mape,
                    "previous": None,
                    "status": ind.status(mape),
                    "secondary": None,
                }
            )
    else:
        table = store.load_monthly_table(session, start, stop)
        rows = [v.to_dict() for v in drill_down(table, knowledge, key, start, stop, lang=lang)]
    return {
        "key": key,
        "name": ind.name(lang),
        "unit": ind.unit(lang),
        "start": start.isoformat(),
        "end": stop.isoformat(),
        "target_low": ind.target_low,
        "target_high": ind.target_high,
        "departments": rows,
    }


@api.get("/indicators/{key}/trend")
def get_trend(
    key: str,
    _user: OpsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    department: str | None = None,
    end: date | None = None,
    days: Annotated[int, Query(ge=1, le=MAX_PERIOD_DAYS)] = 365,
    granularity: str = "week",
) -> dict[str, Any]:
    """One indicator's trend for the hospital or one department (day, week or month)."""
    knowledge = knowledge_for(settings)
    ind = knowledge.indicator(key)
    if ind is None:
        raise NotFoundError(f"ops/indicator/{key}")
    start, stop = _period(session, end, days)
    name = None
    if key == "forecast_accuracy":
        comp = forecast_comparison(session, stop, department or None)
        points = (
            []
            if comp is None
            else [
                {"period": d.isoformat(), "value": a, "forecast": round(f, 1)}
                for d, a, f in zip(comp.days, comp.actual, comp.forecast, strict=True)
            ]
        )
    else:
        table = store.load_table(session, start, stop)
        if department:
            name = next((d.name(lang) for d in table.departments if d.code == department), None)
            if name is None:
                raise NotFoundError(f"ops/department/{department}")
        points = [
            {"period": p, "value": v}
            for p, v in series(
                table,
                ind.ratio,
                start,
                stop,
                granularity=_granularity(granularity),
                department=department or None,
            )
        ]
    return {
        "key": key,
        "name": ind.name(lang),
        "unit": ind.unit(lang),
        "department": department,
        "department_name": name,
        "granularity": granularity,
        "points": points,
    }


@api.get("/forecast")
def get_forecast(
    _user: OpsApiUser,
    session: ReadSessionDep,
    department: str | None = None,
    horizon: Annotated[int, Query(ge=1, le=fc.MAX_HORIZON)] = fc.MAX_HORIZON,
    model: str = fc.DEFAULT_MODEL,
    history_days: Annotated[int, Query(ge=fc.MIN_HISTORY_DAYS, le=MAX_PERIOD_DAYS)] = 3 * 365,
) -> dict[str, Any]:
    """Outpatient forecasts (1–14 days, 80 %/95 % intervals) per department, or one."""
    if model not in fc.MODELS:
        raise InputError("query", "model", f"one of {fc.MODELS}")
    first, last = store.data_range(session)
    if first is None or last is None:
        raise NotFoundError("ops/department_day (no operations data: run `medbrain demo seed`)")
    start = max(first, last - timedelta(days=history_days - 1))
    codes = [department] if department else None
    rows = store.outpatient_series(session, start, last, codes)
    if department and not rows:
        raise NotFoundError(f"ops/department/{department}")
    result = [
        _cached_forecast(s.key, s.start, s.values, horizon, model).to_dict()
        for s in fc.series_from_rows(rows)
        if sum(s.values) > 0
    ]
    return {"origin": last.isoformat(), "horizon": horizon, "model": model, "forecasts": result}


@api.get("/forecast/compare")
def get_forecast_compare(
    _user: OpsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    end: date | None = None,
    department: str | None = None,
) -> dict[str, Any]:
    """The forecast-vs-actual tile: the last 14 days against the forecast made 14 days before
    ``end``, the next 14 days, MAPE and its status against the configured target."""
    _start, stop = _period(session, end, 1)
    if department and department not in {d.code for d in store.departments(session)}:
        raise InputError("query", "department", f"unknown department {department!r}")
    comparison = forecast_comparison(session, stop, department or None)
    ind = knowledge_for(settings).indicator("forecast_accuracy")
    mape = None if comparison is None or comparison.mape is None else round(comparison.mape, 1)
    return {
        "end": stop.isoformat(),
        "department": department or None,
        "value": mape,
        "status": ind.status(mape) if ind is not None else "none",
        "forecast": None if comparison is None else comparison.to_dict(),
    }


@api.get("/beds")
def get_beds(
    _user: OpsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    as_of: date | None = None,
    window_days: Annotated[int | None, Query(ge=1, le=366)] = None,
) -> dict[str, Any]:
    """Occupancy, turnover, ALOS, expected discharges tomorrow and capacity per department."""
    knowledge = knowledge_for(settings)
    window = window_days or knowledge.beds.window_days
    start, stop = _period(session, as_of, window)
    table = store.load_table(session, start - timedelta(days=7 * 9), stop)
    wards = bed_status(table, stop, knowledge.beds, window_days=window, lang=lang)
    return {
        "as_of": stop.isoformat(),
        "window_days": window,
        "over_pct": knowledge.beds.over_pct,
        "under_pct": knowledge.beds.under_pct,
        "source": knowledge.beds.source,
        "departments": [w.to_dict() for w in wards],
    }


@api.get("/consumables/expiry")
def get_expiry(
    _user: MaterialsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    horizons: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Lots expired or expiring within the horizons (default 90,30,7 days), soonest first."""
    data = materials_data(session, settings, lang, horizons, as_of)
    return {k: data[k] for k in ("today", "horizons", "expiring")}


@api.get("/consumables/reorder")
def get_reorder(
    _user: MaterialsApiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Reorder points from consumption (lead time × mean daily use + z·σ·√L) and what to order."""
    data = materials_data(session, settings, lang, None, as_of)
    return {k: data[k] for k in ("today", "service_level", "reorder", "source")}


@api.post("/derive")
def post_derive(
    _user: AdminApiUser, session: SessionDep, settings: SettingsDep, auditor: AuditDep
) -> dict[str, Any]:
    """Aggregate the store's encounters into department-day rows (days not yet present)."""
    counts = store.derive_from_encounters(session, timezone=settings.timezone)
    auditor.record("ops.derive", "ops/department_day", counts)
    return counts


# -- pages -------------------------------------------------------------------------------------

JS_MESSAGES = (
    "ops.drill.title",
    "ops.dept_trend",
    "ops.loading",
    "ops.load_error",
    "ops.forecast.actual",
    "ops.forecast.predicted",
    "ops.forecast.interval",
    "ops.forecast.ahead",
    "ops.forecast.none",
    "ops.status.ok",
    "ops.status.warning",
    "ops.status.none",
)


def num(value: float | None) -> str:
    """A number for a tile: thousands separators, at most 3 decimals, "—" for no value."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


@pages.get("/ops")
def ops_page(
    request: Request,
    user: OpsUiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    end: date | None = None,
    days: Annotated[int, Query(ge=7, le=MAX_PERIOD_DAYS)] = 365,
    department: str | None = None,
) -> Response:
    first, last = store.data_range(session)
    if last is None:
        return render(request, "ops/cockpit.html", {"empty": True}, lang=lang, user=user)
    data = cockpit_data(
        session,
        settings,
        lang,
        end=end,
        days=days,
        department=department or None,
        granularity="month",
        with_forecast=False,
    )
    knowledge = knowledge_for(settings)
    start, stop = date.fromisoformat(data["start"]), date.fromisoformat(data["end"])
    table = store.load_table(
        session, stop - timedelta(days=7 * 9 + knowledge.beds.window_days), stop
    )
    wards = bed_status(table, stop, knowledge.beds, lang=lang)
    dept_name = next((d["name"] for d in data["departments"] if d["code"] == department), None)
    return render(
        request,
        "ops/cockpit.html",
        {
            "empty": False,
            "data": data,
            "start": start,
            "end": stop,
            "days": days,
            "first": first,
            "last": last,
            "department": department or "",
            "department_name": dept_name,
            "wards": wards,
            "beds": knowledge.beds,
            "num": num,
            "i18n": {key: t(key, lang) for key in JS_MESSAGES}
            | {
                "lang": lang,
                "days": str(days),
                "end": stop.isoformat(),
                "department": department or "",
            },
        },
        lang=lang,
        user=user,
    )


@pages.get("/materials")
def materials_page(
    request: Request,
    user: MaterialsUiUser,
    session: ReadSessionDep,
    settings: SettingsDep,
    lang: LangDep,
    horizons: str | None = None,
) -> Response:
    try:
        data = materials_data(session, settings, lang, horizons, None)
        error = None
    except NotFoundError:
        data, error = None, None
    except InputError as exc:
        data, error = materials_data(session, settings, lang, None, None), exc.problem
    return render(
        request,
        "ops/materials.html",
        {"data": data, "error": error, "horizons_text": horizons or "", "num": num},
        lang=lang,
        user=user,
    )
