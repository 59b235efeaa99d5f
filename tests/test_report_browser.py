"""The Snakemake report in a real browser: a small workflow run's `--report` HTML opened in headless
Chromium (Debian's package, driven by playwright without a browser download), every category
and result clicked through (the report renders them on demand), each image checked for having
decoded, each table page for its tables, and a screenshot taken.

`make test-browser` installs Debian's chromium if missing and runs this module; `make test`
leaves it out (marker `browser`). Without chromium or playwright the test fails, never skips.

To check (and photograph) another report, e.g. the demo's for the README:

    FIDLENS_REPORT=results/report.html FIDLENS_REPORT_SCREENSHOT=docs/figures/report.png \
        .venv/bin/python -m pytest -q -m browser tests/test_report_browser.py
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from test_workflow import BASE_CONFIG, make_workdir, run_ok

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
# The flags; --disable-quic as well: nothing may reach the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic"]  # fmt: skip
VIEWPORT = {"width": 1920, "height": 1080}
CONTENT = "div.justify-center.h-screen"  # the report's content pane (images, iframes)

# Two comparisons against one target: gen1 a generated source, gen2 a real one (Tables I-IV),
# intervals on (every number with its ±), random-init Inception (flagged everywhere).
CONFIG = {
    **BASE_CONFIG,
    "datasets": {**BASE_CONFIG["datasets"],
                 "gen2": {**BASE_CONFIG["datasets"]["gen2"], "kind": "real"}},
    "metrics": {**BASE_CONFIG["metrics"], "names": ["fid", "kid", "pr"],
                "intervals": {"enabled": True, "resamples": 20}},
    "report": {"enabled": True},
}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of a small workflow run (or FIDLENS_REPORT, a report made elsewhere)."""
    given = os.environ.get("FIDLENS_REPORT")
    if given:
        return Path(given).resolve()
    root = tmp_path_factory.mktemp("report")
    make_workdir(root, CONFIG)
    run_ok(root)
    run_ok(root, "--report", "results/report.html")
    return root / "results" / "report.html"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-browser` installs Debian's chromium "
                    "and runs this test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("python playwright is missing: `make test-browser` installs the test "
                    "extras (pyproject.toml, [test])")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


def _home(page) -> None:
    """Back to the report's main menu (the breadcrumb's home link)."""
    page.locator("nav ol li a").first.click()


def _menu_item(page, name: str):
    """A link of the report's side menu (category or subcategory) by its exact name."""
    return page.locator("nav").get_by_role("link", name=name, exact=True)


def _open_result(page, row, by_uri: dict[str, str]) -> tuple[str, str]:
    """Click a result row's eye button; return (result path, content kind) of what is shown."""
    row.locator('a[iconname="eye"]').click()
    shown = page.locator(f"{CONTENT} img, {CONTENT} iframe").first
    shown.wait_for(state="attached")
    uri = shown.get_attribute("src")
    tag = shown.evaluate("node => node.tagName.toLowerCase()")
    assert uri in by_uri, f"the page shows {uri[:60]!r}, which is no result of the report"
    return by_uri[uri], tag


def _check_image(page) -> None:
    image = page.locator(f"{CONTENT} img").first
    image.wait_for(state="visible")
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    width = image.evaluate("img => img.naturalWidth")
    assert width > 0, "an image of the report did not decode (broken link or data)"


def _check_page(page) -> dict:
    """The iframe's content: its tables, images (all decoded) and text."""
    frame = page.locator(f"{CONTENT} iframe").first.element_handle().content_frame()
    frame.wait_for_load_state()
    broken = frame.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src.slice(0, 60))")
    assert not broken, f"broken images in a report page: {broken}"
    return {"tables": frame.locator("table").count(), "text": frame.inner_text("body")}


def test_report_renders_every_result_in_chromium(report, browser, tmp_path):
    assert report.is_file(), f"no report at {report}"
    page = browser.new_page(viewport=VIEWPORT)
    errors, outside = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(("data:", "file:", "blob:", "about:")) else None)
    page.goto(report.as_uri())
    page.get_by_text("fidlens study report").first.wait_for()
    landing = page.inner_text("body")
    assert "Configuration" in landing and "Weights and software of this run" in landing
    page.screenshot(path=str(tmp_path / "landing.png"))

    categories = page.evaluate("categories")
    results = page.evaluate("results")
    by_uri = {entry["data_uri"]: path for path, entry in results.items()}
    assert all(re.match(r"\d+\. ", c) for c in categories), sorted(categories)  # menu order
    names = " ".join(categories)
    for expected in ("Summary", "Paper tables", "Metrics"):
        assert expected in names, f"no {expected!r} category in {sorted(categories)}"

    seen: dict[str, dict] = {}
    paper_shot = None
    for category, subcategories in categories.items():
        for subcategory, paths in subcategories.items():
            _home(page)
            _menu_item(page, category).click()
            if len(subcategories) > 1:
                _menu_item(page, subcategory).click()
            rows = page.locator("nav table tbody tr")
            rows.first.wait_for()
            assert rows.count() == len(paths), (category, subcategory)
            for index in range(rows.count()):
                row = rows.nth(index)
                eye = row.locator('a[iconname="eye"]')
                if eye.get_attribute("download") is not None:  # offered as a download
                    href = eye.get_attribute("href")
                    name = next(p for p in paths if results[p]["data_uri"] == href)
                    assert href.startswith("data:") and len(href) > 100, name
                    seen[name] = {"kind": "download"}
                    continue
                path, tag = _open_result(page, row, by_uri)
                assert path in paths, (path, category, subcategory)
                if tag == "img":
                    _check_image(page)
                    seen[path] = {"kind": "image"}
                else:
                    seen[path] = {"kind": "page", **_check_page(page)}
                    if path.endswith("pages/tables/paper.html"):
                        paper_shot = tmp_path / "report.png"
                        page.screenshot(path=str(paper_shot))
    assert set(seen) == set(results), "some results were never shown"
    kinds = [entry["kind"] for entry in seen.values()]
    assert kinds.count("image") >= 1 and kinds.count("page") >= 3
    for path, entry in seen.items():
        if entry["kind"] == "page":
            assert entry["tables"] >= 1, f"{path}: no table"

    paper = next(entry for path, entry in seen.items() if path.endswith("tables/paper.html"))
    if not os.environ.get("FIDLENS_REPORT"):  # the small run's own tables: I-IV
        assert paper["tables"] == 4
        for number in ("I", "II", "III", "IV"):
            assert f"Table {number}:" in paper["text"]
        assert "±" in paper["text"] or "+" in paper["text"]
        assert paper["text"].count("Provenance:") == 4
        assert "RANDOM-INIT" in paper["text"] and "RANDOM-INIT" in landing
        summary = next(e for p, e in seen.items() if p.endswith("summary.html"))
        assert "RANDOM-INIT" in summary["text"]
    else:
        assert paper["tables"] >= 2
    assert not errors, f"the report raised JavaScript errors: {errors}"
    assert not outside, f"the report requested outside resources: {outside[:5]}"
    assert paper_shot is not None and paper_shot.stat().st_size > 10_000
    wanted = os.environ.get("FIDLENS_REPORT_SCREENSHOT")
    if wanted:
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paper_shot, wanted)
    page.close()
