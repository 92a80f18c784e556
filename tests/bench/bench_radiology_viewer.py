"""Benchmark the CT viewer in a real browser: first load, then next-slice latency (a script).

Run: ``.venv/bin/python tests/bench/bench_radiology_viewer.py [--slices 200] [--size 256]``

Builds a synthetic chest CT (``--size``² × ``--slices``), ingests and analyses it with the
real store functions, starts uvicorn on loopback and opens the viewer in Debian's chromium
(Playwright). Measured in the same run:

* **first load** — navigation start → first slice drawn, and → every slice loaded (the
  baseline the scroll latency is compared with);
* **scroll** — ``--steps`` ArrowDown presses after the first load, each waiting until the next
  slice is drawn: in-page latency (key event → the animation frame after the draw, from
  ``window.ctViewerStats``) and end to end from Playwright (press → ``data-drawn-slice``
  changed, which adds the DevTools round trips);
* the same scroll with the thin-slab MIP on, and a lung → mediastinal window switch.

Issue 5's target: next slice shown ≤ 100 ms after the first load. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from medbrain.api.security import hash_password
from medbrain.core.config import Settings
from medbrain.imaging.synthetic import generate_chest_ct, write_dicom_series
from medbrain.store import migrate
from medbrain.store.db import make_engine, make_session_factory
from medbrain.store.models import User
from medbrain.store.radiology import ingest_instances, process_pending
from tests.support.server import free_port, start_server

CHROMIUM = Path(os.environ.get("MEDBRAIN_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "bench-radiologist"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<44} n={len(values):>3}  p50 {statistics.median(values):7.1f} ms  "
        f"p95 {_pct(values, 0.95):7.1f} ms  max {max(values):7.1f} ms"
    )


def prepare(home: Path, size: int, slices: int) -> tuple[str, str]:
    url = f"sqlite:///{home / 'medbrain.db'}"
    settings = Settings(home=home, database_url=url, series_settle_seconds=0)
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    spacing = 360.0 / size
    scan = generate_chest_ct(
        11,
        shape=(slices, size, size),
        spacing_mm=(spacing, spacing, 300.0 / slices),
        n_nodules=5,
    )
    files = write_dicom_series(scan.series, home / "incoming", seed=11)
    with factory() as session, session.begin():
        session.add(
            User(
                username="rad",
                display_name="rad",
                role="radiologist",
                password_hash=hash_password(PASSWORD),
            )
        )
        study = ingest_instances(session, settings, files, source="bench").study_uids[0]
    started = time.perf_counter()
    process_pending(factory, settings)
    print(f"analysis of {size}x{size}x{slices}: {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return url, study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="rows = columns")
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url, study = prepare(home, args.size, args.slices)
        port = free_port()
        server = start_server(home, url, port, env={"MEDBRAIN_RADIOLOGY_WORKER": "0"})
        base = f"http://127.0.0.1:{port}"
        try:
            run(base, study, args)
        finally:
            server.terminate()
            server.wait(timeout=10)


def run(base: str, study: str, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(
            base_url=base, viewport={"width": 1400, "height": 900}
        ).new_page()
        page.goto("/login")
        page.locator("input[name=username]").fill("rad")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_load_state()

        for attempt in ("cold", "warm (HTTP cache)"):
            started = time.perf_counter()
            page.goto(f"/radiology/studies/{study}")
            page.wait_for_selector("#ct-viewer[data-drawn-slice]")
            first = (time.perf_counter() - started) * 1000
            page.wait_for_function(
                "() => document.getElementById('ct-progress').textContent === ''"
                " && window.ctViewerStats.draws > 0",
                timeout=120_000,
            )
            everything = (time.perf_counter() - started) * 1000
            in_page = page.evaluate("window.ctViewerStats.firstDrawMs")
            timing = page.evaluate(
                """() => {
                  const r = performance.getEntriesByType('resource');
                  const v = r.find(e => e.name.includes('/viewer?'));
                  const s = r.filter(e => e.name.includes('/slices')).sort((a, b) => a.startTime - b.startTime)[0];
                  const js = r.find(e => e.name.includes('viewer.js'));
                  return [js ? js.responseEnd : -1, v ? v.startTime : -1, v ? v.duration : -1,
                          s ? s.startTime : -1, s ? s.duration : -1];
                }"""
            )
            print(
                "  in page: viewer.js loaded at {:.0f} ms; GET /viewer at {:.0f} ms took {:.0f} ms;"
                " first GET /slices at {:.0f} ms took {:.0f} ms".format(*timing)
            )
            print(
                f"first load, {attempt:<18} first slice drawn {first:7.0f} ms "
                f"(in page {in_page:6.0f} ms), all {args.slices} slices {everything:7.0f} ms"
            )

        def scroll(label: str) -> None:
            page.evaluate("window.ctViewerStats.latencies = []")
            outer: list[float] = []
            page.locator("#ct-stage").focus()
            slider = page.locator("#ct-slice")
            slider.evaluate("(e) => { e.value = '0'; e.dispatchEvent(new Event('input')); }")
            page.wait_for_selector("#ct-viewer[data-drawn-slice='0']")
            for step in range(1, min(args.steps, args.slices - 1) + 1):
                t0 = time.perf_counter()
                page.keyboard.press("ArrowDown")
                page.wait_for_selector(f"#ct-viewer[data-drawn-slice='{step}']")
                outer.append((time.perf_counter() - t0) * 1000)
            page.wait_for_timeout(100)
            inner = page.evaluate("window.ctViewerStats.latencies")
            print(_summary(f"scroll {label}: key → painted (in page)", inner))
            print(_summary(f"scroll {label}: press → drawn (Playwright)", outer))

        scroll("plain")
        page.locator("#ct-mip").check()
        scroll("thin-slab MIP 8 mm")
        page.locator("#ct-mip").uncheck()
        t0 = time.perf_counter()
        page.locator(".ct-win[data-window='mediastinal']").click()
        page.wait_for_selector("#ct-viewer[data-window='mediastinal']")
        print(
            f"window switch lung → mediastinal (Playwright): "
            f"{(time.perf_counter() - t0) * 1000:.1f} ms"
        )
        browser.close()


if __name__ == "__main__":
    main()
