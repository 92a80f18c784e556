"""``medbrain ops forecast`` / ``backtest`` on a short CSV: one JSON document, or exit 2."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from medbrain.cli import app
from medbrain.ops.generator import DEPARTMENTS, generate_daily


def _csv(tmp_path: Path) -> Path:
    dept = next(d for d in DEPARTMENTS if d.code == "GAST")
    rows = generate_daily(date(2025, 3, 1), date(2025, 6, 30), seed=9, departments=[dept])
    path = tmp_path / "visits.csv"
    lines = ["day,department,outpatient_visits"]
    lines += [f"{r.day.isoformat()},{r.dept_code},{r.outpatient_visits}" for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_forecast_json_from_a_csv(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ops", "forecast", str(_csv(tmp_path)), "--model", "ets", "--horizon", "7", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (forecast,) = document["forecasts"]
    assert forecast["key"] == "GAST" and forecast["origin"] == "2025-06-30"
    assert forecast["points"][0]["date"] == "2025-07-01"
    assert len(forecast["points"]) == 7
    assert all(
        p["lo95"] <= p["lo80"] <= p["mean"] <= p["hi80"] <= p["hi95"] for p in forecast["points"]
    )


def test_backtest_on_too_short_a_history_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "ops",
            "backtest",
            str(_csv(tmp_path)),
            "--model",
            "ets",
            "--origins",
            "1",
            "--horizon",
            "7",
            "--json",
        ],
    )
    # 122 days is shorter than the default 365 days of training: a clear error, exit 2.
    assert result.exit_code == 2
    assert "too short" in result.output


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("day,department,outpatient_visits\n2025-01-01,A,-3\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["ops", "forecast", str(bad), "--json"])
    assert result.exit_code == 2
    assert "line 2 outpatient_visits" in result.output and result.stdout == ""
    unknown = runner.invoke(app, ["ops", "forecast", str(_csv(tmp_path)), "--department", "XX"])
    assert unknown.exit_code == 2 and "unknown: XX" in unknown.output
    horizon = runner.invoke(app, ["ops", "forecast", str(_csv(tmp_path)), "--horizon", "30"])
    assert horizon.exit_code == 2 and "horizon" in horizon.output
