"""Where-to-go recommender (pure): distance, capability, live load, season, red flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medbrain.core.errors import InputError, KnowledgeError
from medbrain.triage.where import Load, haversine_km, institutions_with, recommend

ALL_DAY = {"open": "00:00", "close": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]}
K = institutions_with(
    {
        "institutions": [{"code": c, "hours": ALL_DAY} for c in ("H001", "H002", "C001", "H003")],
        "settings": {"max_results": 10},
    }
)
C001 = (31.2000, 121.4700)  # at the community centre
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, November


def codes(recs: list) -> list[str]:
    return [r.code for r in recs]


def test_haversine_matches_a_known_distance() -> None:
    # Shanghai People's Square → Beijing Tiananmen is about 1067 km great-circle
    assert haversine_km(31.2304, 121.4737, 39.9042, 116.4074) == pytest.approx(1067, abs=5)
    assert haversine_km(10, 10, 10, 10) == 0


def test_nearest_with_department_wins_until_its_queue_is_long() -> None:
    first = recommend(K, {}, lat=C001[0], lon=C001[1], department="07", emergency=False, now=NOW)
    assert codes(first)[0] == "C001" and "load_unknown" in first[0].reasons
    busy = {"C001": Load(queue_length=40, free_beds=None, updated_at=NOW)}
    second = recommend(K, busy, lat=C001[0], lon=C001[1], department="07", emergency=False, now=NOW)
    assert codes(second)[0] != "C001"
    c001 = next(r for r in second if r.code == "C001")
    assert c001.wait_minutes == pytest.approx(40 * 6) and "load" in c001.reasons
    # a stale report is ignored
    stale = {"C001": Load(queue_length=40, free_beds=None, updated_at=NOW - timedelta(hours=3))}
    third = recommend(K, stale, lat=C001[0], lon=C001[1], department="07", emergency=False, now=NOW)
    assert codes(third)[0] == "C001" and not third[0].load_known


def test_capability_parent_code_and_opening_hours() -> None:
    recs = recommend(K, {}, lat=C001[0], lon=C001[1], department="03.04", emergency=False, now=NOW)
    assert "C001" in codes(recs)  # "03" (内科) covers 03.04
    dental = recommend(K, {}, lat=C001[0], lon=C001[1], department="10", emergency=False, now=NOW)
    assert codes(dental) == ["H001"]  # the only one with ophthalmology (10)
    shipped = institutions_with(None)
    night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: clinics closed
    assert (
        recommend(
            shipped, {}, lat=C001[0], lon=C001[1], department="02", emergency=False, now=night
        )
        == []
    )


def test_red_flag_goes_to_an_ed_with_capacity_never_a_clinic() -> None:
    loads = {
        "H001": Load(queue_length=5, free_beds=0, updated_at=NOW),
        "H002": Load(queue_length=5, free_beds=3, updated_at=NOW),
    }
    recs = recommend(K, loads, lat=C001[0], lon=C001[1], department="02", emergency=True, now=NOW)
    assert "C001" not in codes(recs)
    assert codes(recs)[0] == "H002" and "ed_capacity" in recs[0].reasons
    assert recs[-1].code == "H001" and "ed_full" in recs[-1].reasons  # full ED comes last
    assert all(r.emergency for r in recs)


def test_winter_season_raises_paediatric_waits() -> None:
    loads = {"C001": Load(queue_length=10, free_beds=None, updated_at=NOW)}
    january = datetime(2027, 1, 12, 3, 0, tzinfo=UTC)
    loads_jan = {"C001": Load(queue_length=10, free_beds=None, updated_at=january)}
    nov = recommend(K, loads, lat=C001[0], lon=C001[1], department="07", emergency=False, now=NOW)
    jan = recommend(
        K, loads_jan, lat=C001[0], lon=C001[1], department="07", emergency=False, now=january
    )
    w_nov = next(r for r in nov if r.code == "C001").wait_minutes
    w_jan = next(r for r in jan if r.code == "C001")
    assert w_jan.wait_minutes == pytest.approx(w_nov * 1.4) and "season" in w_jan.reasons


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [(91, 0, "lat"), (0, -181, "lon"), ("x", 0, "lat"), (0, float("nan"), "lon")],
)
def test_bad_locations_are_refused_naming_the_field(lat: object, lon: object, field: str) -> None:
    with pytest.raises(InputError) as err:
        recommend(K, {}, lat=lat, lon=lon, department="02", emergency=False, now=NOW)  # type: ignore[arg-type]
    assert err.value.field == field


def test_bad_institution_config_is_a_knowledge_error() -> None:
    with pytest.raises(KnowledgeError, match=r"H001\.lat"):
        institutions_with({"institutions": [{"code": "H001", "lat": 200}]})
    with pytest.raises(KnowledgeError, match="open < close"):
        institutions_with(
            {"institutions": [{"code": "H001", "hours": {"open": "18:00", "close": "08:00"}}]}
        )
