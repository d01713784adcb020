"""The workflow report of the tiny run, opened in a real headless Chromium: every table and figure renders.

Snakemake's report is a JavaScript app in one HTML file, so the checks read the DOM the app
renders after clicking through it (menu, category, each result's view button), not the file.
The tiny run is test_workflow.py's when both are collected (``tiny_reference``, conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gohscore.reports import FIGURE_NAMES, HEATMAP_FIGURE, HEATMAP_TABLE, TABLE_NAMES, TABLE_PAGE_FORMAT
from tests.workflow.browser import Browser, find_browser
from tests.workflow.helpers import REPO, TINY_ARGS, snakemake

CAPTIONS = REPO / "workflow" / "report"
# every table and figure of the report: the tables/figures registry's and explain-test's
REPORT_TABLES = (*TABLE_NAMES, HEATMAP_TABLE)
REPORT_FIGURES = (*FIGURE_NAMES, HEATMAP_FIGURE)
SCREENSHOTS = os.environ.get("GOHSCORE_REPORT_SCREENSHOTS")  # a folder to keep the screenshots in


def test_every_table_and_figure_has_one_caption():
    """The caption files are exactly the registry's tables and figures, each one non-empty sentence or more."""
    for kind, names in (("tables", REPORT_TABLES), ("figures", REPORT_FIGURES)):
        found = {p.stem for p in (CAPTIONS / kind).glob("*.rst")}
        assert found == set(names), (kind, found ^ set(names))
        for name in names:
            text = (CAPTIONS / kind / f"{name}.rst").read_text(encoding="utf-8").strip()
            assert len(text) > 40 and text.endswith("."), (kind, name)
    assert (CAPTIONS / "workflow.rst").read_text(encoding="utf-8").strip()


def markdown_rows(md: Path) -> int:
    """Body rows of the table in a Markdown twin (0 when it says it has none)."""
    lines = [line for line in md.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    return max(len(lines) - 1, 0)  # less the header (the |:--| line does not start with "| ")


def click_link(browser: Browser, text: str) -> None:
    links = [a for a in browser.find("a") if browser.run("return arguments[0].innerText.trim()", a) == text]
    assert links, f"no link {text!r} in the report's page"
    browser.click(links[0])


def result_rows(browser: Browser) -> dict[str, dict]:
    """The listed results of the open category: path -> its view button."""
    browser.wait_for("return document.querySelectorAll('nav table tbody tr, table tbody tr').length > 0")
    rows = {}
    for row in browser.find("table tbody tr"):
        path = browser.run("return arguments[0].cells[0].innerText.trim()", row)
        buttons = browser.run("return arguments[0].querySelectorAll('a[iconname=eye]')", row)
        if path and buttons:
            rows[path] = buttons[0]
    return rows


@pytest.fixture(scope="module")
def report(tiny_reference) -> Path:
    """results/tiny/report.html of the tiny run, made as `make report` makes it."""
    workdir = tiny_reference.parents[1]
    out = tiny_reference / "report.html"
    res = snakemake([*TINY_ARGS, "--report", str(out.relative_to(workdir))], workdir, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


@pytest.mark.slow
def test_report_renders_every_table_and_figure_in_chromium(report, tmp_path):
    found = find_browser()
    if found is None:
        why = "chromium and chromedriver not found (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("GOHSCORE_REQUIRE_BROWSER"):  # CI installs them: a skip there would hide a gap
            pytest.fail(why)
        pytest.skip(why)
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    tables_dir = report.parent / "tables"
    with Browser(*found) as browser:
        browser.open(report.as_uri())
        browser.wait_for(
            "return typeof categories === 'object' && document.querySelectorAll('#app a').length > 5"
        )
        categories = browser.run("return categories")
        assert set(categories) == {"Tables", "Figures"}, categories
        expected = {
            "Tables": {f"{name}.{TABLE_PAGE_FORMAT}" for name in REPORT_TABLES},
            "Figures": {f"{name}.png" for name in REPORT_FIGURES},
        }
        for category, names in expected.items():
            browser.open(report.as_uri())
            browser.wait_for("return document.querySelectorAll('#app a').length > 5")
            click_link(browser, category)
            rows = result_rows(browser)
            assert {Path(p).name for p in rows} == names, (category, sorted(rows))
            for path, button in sorted(rows.items()):
                name = Path(path).stem
                caption = browser.run("return results[arguments[0]].caption", path)
                first_words = (CAPTIONS / category.lower() / f"{name}.rst").read_text(encoding="utf-8")[:30]
                assert first_words.split()[0] in caption, (path, caption[:200])
                browser.click(button)
                # the content pane shows this result (its data URI), not the one clicked before
                if category == "Figures":
                    size = browser.wait_for(
                        "const img = Array.from(document.images).find(i => i.src === results[arguments[0]].data_uri);"
                        "return img && img.complete && img.naturalWidth > 0"
                        " ? [img.naturalWidth, img.naturalHeight] : null",
                        path,
                    )
                    assert size[0] >= 100 and size[1] >= 100, (path, size)
                else:
                    frame = browser.wait_for(
                        "return Array.from(document.querySelectorAll('iframe'))"
                        ".find(f => f.src === results[arguments[0]].data_uri)",
                        path,
                    )
                    browser.enter_frame(frame)
                    shown = browser.wait_for(
                        "const h = document.querySelector('h1');"
                        "return h && [h.innerText, document.querySelectorAll('tbody tr').length,"
                        " document.querySelectorAll('thead th').length]"
                    )
                    browser.enter_frame(None)
                    title = (tables_dir / f"{name}.md").read_text(encoding="utf-8").splitlines()[0]
                    assert shown[0] == title.removeprefix("# "), (path, shown)
                    assert shown[1] == markdown_rows(tables_dir / f"{name}.md") > 0, (path, shown)
                    assert shown[2] > 1, (path, shown)
                if name in ("table2_scores_cv", "scores_scatter"):
                    browser.screenshot(shots / f"report_{name}.png")
    assert (shots / "report_table2_scores_cv.png").stat().st_size > 10_000
