"""The leaderboard site in a real browser: headless Chromium driven by Selenium, the page opened from file://.

Skipped, with the reason, where Chromium, its driver or Selenium is missing (CI installs them:
``.ci/browser-env.sh``). Screenshots go to ``$DFABENCH_ARTEFACTS`` when it is set (CI keeps that folder),
else to the test's temporary folder (tests/browser_util.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_util import requires_chromium
from browser_util import severe as _severe

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = requires_chromium

#: run in the page if the escaping failed: sets a flag the test reads
PAYLOAD = "<script>window.__pwned=1</script>\"'><img src=x onerror=\"window.__pwned=2\"> | **x**"


@pytest.fixture
def site(cli, tiny_bench, tmp_path) -> Path:
    entries = tmp_path / "lb" / "entries"
    for model, args in (("constant", []), ("random", ["--model-arg", "seed=1"]),
                        ("random", ["--model-arg", "seed=7"])):
        name = f"{model}-{args[-1][-1] if args else 0}"
        run = tmp_path / "runs" / name
        assert cli("run", "--model", model, *args, "--tasks", "DF-D,DF-C", "--bench", str(tiny_bench),
                   "--out", str(run), "--no-progress")[0] == 0
        assert cli("leaderboard", "submit", str(run), "--entries", str(entries), "--name", name)[0] == 0
    (entries / "constant-0" / "entry.json").write_text(json.dumps({"name": PAYLOAD}))
    out = tmp_path / "lb"
    assert cli("leaderboard", "build", "--entries", str(entries), "--out", str(out), "--replicates", "200")[0] == 0
    return out / "index.html"


def _visible_panel(driver):
    from selenium.webdriver.common.by import By

    [panel] = [p for p in driver.find_elements(By.CSS_SELECTOR, "section.panel") if p.is_displayed()]
    return panel


def test_the_page_loads_from_file_without_console_errors_and_the_payload_stays_inert(browser, site, artefacts):
    browser.get(site.as_uri())
    assert browser.title == "dfabench leaderboard"
    browser.save_screenshot(str(artefacts / "leaderboard.png"))
    assert _severe(browser) == []
    assert browser.execute_script("return window.__pwned === undefined")
    from selenium.webdriver.common.by import By

    names = [a.text for a in _visible_panel(browser).find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2) a")]
    assert any(name.startswith("<script>window.__pwned=1</script>") for name in names)  # shown as text


def test_sorting_a_column_reorders_the_rows(browser, site, artefacts):
    from selenium.webdriver.common.by import By

    browser.get(site.as_uri())
    panel = _visible_panel(browser)
    headers = panel.find_elements(By.CSS_SELECTOR, "thead th")
    accuracy = next(h for h in headers if h.text.strip().startswith("accuracy"))
    column = headers.index(accuracy) + 1

    def values() -> list[float]:
        cells = panel.find_elements(By.CSS_SELECTOR, f"tbody tr td:nth-child({column})")
        return [float(c.get_attribute("data-value")) for c in cells]

    before = values()
    accuracy.click()
    ascending = values()
    accuracy.click()
    descending = values()
    assert ascending == sorted(before) and descending == sorted(before, reverse=True)
    assert ascending != descending  # the rows really moved
    assert accuracy.get_attribute("aria-sort") == "descending"
    browser.save_screenshot(str(artefacts / "leaderboard-sorted.png"))
    assert _severe(browser) == []


def test_switching_tabs_shows_the_other_task(browser, site, artefacts):
    from selenium.webdriver.common.by import By

    browser.get(site.as_uri())
    assert "DF-D" in _visible_panel(browser).find_element(By.TAG_NAME, "h2").text
    tab = next(t for t in browser.find_elements(By.CSS_SELECTOR, "nav.tabs [role=tab]") if t.text.endswith("DF-C"))
    tab.click()
    panel = _visible_panel(browser)
    assert "DF-C" in panel.find_element(By.TAG_NAME, "h2").text
    assert tab.get_attribute("aria-selected") == "true"
    panel.find_element(By.TAG_NAME, "summary").click()  # the breakdowns open: inline SVG plots
    assert panel.find_elements(By.CSS_SELECTOR, "details svg.chart")
    browser.save_screenshot(str(artefacts / "leaderboard-df-c.png"))
    assert _severe(browser) == []
