"""The radiologist's whole path in a real browser (issue 5).

A synthetic chest CT (64×64×40) is ingested and analysed through the ingest engineer's store
functions before a dedicated server starts, then the radiologist logs in, opens the study from
the worklist, sees one yellow box per detected nodule, jumps to a nodule, rejects one, adds
one, signs and downloads the PDF. Expectations (nodule count, slices) are read from the stored
analysis, not hard-coded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.ct_study import analysed_study
from tests.support.server import free_port, start_server, stop_server

pytestmark = pytest.mark.browser

PASSWORD = "radiologist-browser-pass"
SCAN_SEED = 3


@dataclass(frozen=True)
class CtScenario:
    base_url: str
    home: Path
    study_uid: str
    nodules: list[dict[str, object]]


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CtScenario]:
    home = tmp_path_factory.mktemp("ct-browser-home")
    url, study_uid, nodules = analysed_study(
        home, seed=SCAN_SEED, n_nodules=3, diameter_range_mm=(8.0, 20.0), password=PASSWORD
    )
    assert len(nodules) >= 2, "the synthetic scan must give at least two nodules"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(
        home, url, port, env={"MEDBRAIN_RADIOLOGY_WORKER": "0"}, log=home / "server.log"
    )
    try:
        yield CtScenario(base_url, home, study_uid, nodules)
    finally:
        stop_server(server)


@pytest.fixture
def ct_page(browser: Browser, ct: CtScenario, request: pytest.FixtureRequest) -> Iterator[Page]:
    from tests.browser.conftest import ARTIFACTS

    context = browser.new_context(
        base_url=ct.base_url,
        locale="zh-CN",
        viewport={"width": 1400, "height": 900},
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / "radiology_viewer.png"), full_page=True)
        context.close()


def test_radiologist_reviews_signs_and_downloads_the_report(ct_page: Page, ct: CtScenario) -> None:
    page = ct_page
    page.goto("/login?next=%2Fradiology")
    page.locator("input[name=username]").fill("rad1")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/radiology")
    page.locator(f"a[href='/radiology/studies/{ct.study_uid}']").first.click()

    viewer = page.locator("#ct-viewer")
    expect(viewer).to_have_attribute("data-loaded", "1")
    expected = len(ct.nodules)
    expect(viewer).to_have_attribute("data-nodule-count", str(expected))
    rows = page.locator("#ct-nodules tr.nodule-row")
    expect(rows).to_have_count(expected)

    # every nodule shows a yellow box on its centre slice after a click on its row
    for index, nodule in enumerate(ct.nodules):
        key = f"e{nodule['id']}"
        page.locator(f"#ct-nodules tr[data-key='{key}'] td").first.click()
        centre = nodule["center_voxel"][2]  # type: ignore[index]
        expect(viewer).to_have_attribute("data-slice", str(centre))
        expect(viewer).to_have_attribute("data-drawn-slice", str(centre))
        box = page.locator(f"#ct-overlay rect.nodule-box[data-key='{key}']")
        expect(box).to_have_count(1)
        if index == 0:
            colour = box.evaluate("e => getComputedStyle(e).stroke")
            assert colour == "rgb(255, 215, 0)"
    boxes_here = int(viewer.get_attribute("data-visible-boxes") or "0")
    assert boxes_here == page.locator("#ct-overlay rect.nodule-box").count() >= 1

    # keyboard scrolling moves one slice
    start = int(viewer.get_attribute("data-slice") or "0")
    page.locator("#ct-stage").focus()
    page.keyboard.press("ArrowDown" if start < 39 else "ArrowUp")
    expect(viewer).not_to_have_attribute("data-slice", str(start))

    # measure the first nodule by drawing its long and short axis on the image
    first = f"e{ct.nodules[0]['id']}"
    page.locator(f"#ct-nodules tr[data-key='{first}'] button.measure").click()
    expect(viewer).to_have_attribute("data-mode", "measure")
    frame = page.locator("#ct-canvas").bounding_box()
    assert frame is not None
    mm_per_px = 64 * 5.0 / frame["width"]
    x0, y0 = frame["x"] + frame["width"] * 0.3, frame["y"] + frame["height"] * 0.3
    for dx, dy in ((frame["width"] * 0.1, 0.0), (0.0, frame["height"] * 0.05)):
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + dx, y0 + dy, steps=3)
        page.mouse.up()
    long_mm, short_mm = 0.1 * frame["width"] * mm_per_px, 0.05 * frame["height"] * mm_per_px
    size = page.locator(f"#ct-nodules tr[data-key='{first}'] td.size")
    before = f"{ct.nodules[0]['long_axis_mm']:.1f}×{ct.nodules[0]['short_axis_mm']:.1f}"
    expect(size).not_to_have_text(before)
    got_long, got_short = (float(v) for v in size.inner_text().split("×"))
    tolerance = 2 * mm_per_px  # the mouse lands on whole pixels
    assert abs(got_long - long_mm) <= tolerance and abs(got_short - short_mm) <= tolerance
    # ...and its box now encloses the drawn axes (columns 0.3 to 0.4 of the 64-voxel width)
    box = page.locator(f"#ct-overlay rect.nodule-box[data-key='{first}']")
    expect(box).to_have_count(1)
    left = float(box.get_attribute("x") or "nan") + 1.5  # the box is drawn 1.5 voxels out
    right = left + float(box.get_attribute("width") or "nan") - 4
    assert abs(left - 0.3 * 64) <= 1.5 and abs(right - 0.4 * 64) <= 1.5, (left, right)

    # reject the last nodule: its box disappears, the count drops
    rejected = f"e{ct.nodules[-1]['id']}"
    page.locator(f"#ct-nodules tr[data-key='{rejected}'] button.reject").click()
    expect(page.locator(f"#ct-nodules tr[data-key='{rejected}']")).to_have_class(
        re.compile(r"\bdecision-rejected\b")
    )
    expect(viewer).to_have_attribute("data-nodule-count", str(expected - 1))

    # add a nodule the engine missed, by clicking on the slice
    page.locator("#ct-add").click()
    expect(viewer).to_have_attribute("data-mode", "add")
    page.locator("#ct-canvas").click(position={"x": 120, "y": 200})
    added = page.locator("#ct-nodules tr[data-key='a1']")
    expect(added).to_have_count(1)
    expect(page.locator("#ct-overlay rect.nodule-box[data-key='a1']")).to_have_count(1)
    expect(viewer).to_have_attribute("data-nodule-count", str(expected))

    # sign: version 1 is locked
    page.locator("#ct-sign").click()
    # signing writes the SR and SEG: allow for a loaded CI machine
    expect(viewer).to_have_attribute("data-status", "signed", timeout=30_000)
    expect(page.locator("#ct-error")).to_be_hidden()
    expect(page.locator("#ct-versions li[data-version='1']")).to_have_attribute(
        "data-status", "signed"
    )

    with page.expect_download() as info:
        page.locator("#ct-pdf").click()
    download = info.value
    target = ct.home / "downloaded.pdf"
    download.save_as(target)
    assert target.read_bytes()[:5] == b"%PDF-"
    assert download.suggested_filename == "ct-report-v1.pdf"
