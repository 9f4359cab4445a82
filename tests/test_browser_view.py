"""The sample viewer in a real browser: ``dfabench view`` serves two run folders made here (127.0.0.1, any free
port) and headless Chromium (tests/browser_util.py) uses it as a reviewer would: the filters narrow the samples,
two runs stand side by side, an injected payload stays inert, and a hand rating of an AD answer lands in the CSV
that ``dfabench judge agree --human`` reads. Path traversal is tried over raw HTTP (a browser would normalize
the ``..`` away before sending it).

The first run is imported predictions chosen to give every outcome on DF-D (10 correct, 5 wrong, 2 failed,
3 unparsed) and the payload as its AD answer; it is judged (by the ``constant`` model, whose rationale carries
the payload too). The second is ``constant`` with the payload as a model argument (so also as its AD answer).
Skipped, with the reason, only where Chromium or its driver (or Selenium) is missing.
"""

from __future__ import annotations

import csv
import http.client
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from benchmaker import make_benchmark
from browser_util import no_alert, requires_chromium, severe

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = requires_chromium

#: HTML that would run (set a flag, open an alert) if the escaping failed, an attribute-breaking quote, Markdown
#: control characters (a table cell, emphasis, a link, a heading, a code span)
PAYLOAD = ("<script>window.__pwned=1;alert(1)</script>\"'><img src=x onerror=\"window.__pwned=2;alert(2)\"> "
           "| **bold** _em_ [link](javascript:alert(3)) # `code`")
#: the DF-D outcomes of the first run, by sample (the tiny bench: s0000-s0007 real, s0008-s0019 fake)
FAILED = ("s0000", "s0001")            # no prediction: failed
UNPARSED = ("s0002", "s0003", "s0004")  # an answer that names no label
WRONG = ("s0005", "s0006", "s0007", "s0008", "s0009")
EXPECTED = {"correct": 10, "wrong": 5, "failed": 2, "unparsed": 3}


def _cli(*argv: str) -> str:
    """``dfabench ARGV`` in a subprocess (no test plugin needed); its stdout, or the test fails with stderr."""
    out = subprocess.run([sys.executable, "-m", "dfabench.cli", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"dfabench {' '.join(argv[:2])}: {out.stderr}"
    return out.stdout


def _predictions(bench: Path, path: Path) -> Path:
    lines = []
    for sample in (json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines()):
        sid, fake = sample["id"], sample["label"] == "fake"
        if sid in FAILED:
            continue
        if sid in UNPARSED:
            text = "The weather is nice today."
        else:
            says_fake = fake != (sid in WRONG)
            text = "Yes, this face has been forged." if says_fake else "No, this face is real."
        lines.append({"id": sid, "task": "DF-D", "text": text})
        if fake:
            lines.append({"id": sid, "task": "AD", "text": PAYLOAD})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from dfabench.judge import load_rubric

    root = tmp_path_factory.mktemp("view")
    bench = make_benchmark(root / "bench", n_real=8, n_per_category=3)
    imported, constant = root / "imported", root / "constant"
    _cli("import-predictions", "jsonl", str(_predictions(bench, root / "preds.jsonl")), "--bench", str(bench),
         "--out", str(imported), "--model-name", "imported")
    _cli("run", "--model", "constant", "--model-arg", f"description={PAYLOAD}", "--tasks", "DF-D,AD", "--bench",
         str(bench), "--out", str(constant), "--no-progress")
    rubric = load_rubric("artifact-description-v2")
    grades = json.dumps({**{key: 3 for key in rubric.keys}, "rationale": f"judged: {PAYLOAD}"})
    _cli("judge", str(imported), "--judge", "constant", "--judge-arg", f"text={json.dumps(grades)}", "--tasks", "AD",
         "--no-calibration")
    return {"bench": bench, "imported": imported, "constant": constant, "root": root}


@pytest.fixture(scope="module")
def viewer(runs):
    """``dfabench view imported constant`` on a free port: (base URL, the ratings CSV)."""
    ratings = runs["root"] / "ratings.csv"
    process = subprocess.Popen([sys.executable, "-m", "dfabench.cli", "view", str(runs["imported"]),
                                str(runs["constant"]), "--bench", str(runs["bench"]), "--port", "0", "--ratings",
                                str(ratings)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    try:
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", first[0] if first else "")
        assert found, f"dfabench view did not start: {first} {process.poll() and process.stderr.read()}"
        yield f"http://127.0.0.1:{found.group(1)}", ratings
    finally:
        process.terminate()
        process.wait(10)


def _rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.find_element(By.TAG_NAME, "a").text for row in driver.find_elements(By.CSS_SELECTOR, "tr.sample")]


def _filter(driver, **chosen: str) -> list[str]:
    """Choose the filters, submit the form, and the sample ids of the page that comes back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    for name, value in chosen.items():
        Select(driver.find_element(By.CSS_SELECTOR, f"#filters select[name={name}]")).select_by_value(value)
    old = driver.find_element(By.ID, "samples")
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(old))
    return _rows(driver)


def test_the_viewer_loads_without_console_errors_and_each_filter_narrows_the_samples(browser, viewer, artefacts):
    base, _ = viewer
    browser.get(base + "/")
    assert browser.title == "dfabench view"
    assert _rows(browser) == [f"s{i:04d}" for i in range(8, 20)]  # the first task, AD: the fakes only
    everything = _filter(browser, task="DF-D")
    assert len(everything) == 20 and everything == sorted(everything)
    for state, n in EXPECTED.items():
        shown = _filter(browser, task="DF-D", outcome=state)
        assert len(shown) == n, state
        assert set(shown) < set(everything)
        expected = {"failed": FAILED, "unparsed": UNPARSED, "wrong": WRONG}.get(state)
        if expected:
            assert shown == list(expected)
        browser.save_screenshot(str(artefacts / f"view-{state}.png"))
    assert _filter(browser, task="DF-D", outcome="") == everything
    assert _filter(browser, task="DF-D", category="FS") == ["s0008", "s0009", "s0010"]
    assert severe(browser) == []


def test_two_runs_side_by_side_and_the_payload_stays_inert(browser, viewer, artefacts):
    from selenium.webdriver.common.by import By

    base, _ = viewer
    browser.get(base + "/")
    assert [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#samples th")][-2:] == ["imported", "constant"]
    models = browser.find_element(By.CSS_SELECTOR, "ul.models").text
    assert f"description={PAYLOAD}" in models  # the model argument, as text
    _filter(browser, task="AD")
    browser.get(base + "/sample?task=AD&id=s0010")  # as the link on the list goes
    columns = browser.find_elements(By.CSS_SELECTOR, "div.runs div.run")
    assert [c.find_element(By.TAG_NAME, "h2").text for c in columns] == ["imported", "constant"]
    answers = [c.find_element(By.CSS_SELECTOR, "pre").text for c in columns]
    assert answers == [PAYLOAD, PAYLOAD]  # both answers, shown as the text they are
    assert f"description={PAYLOAD}" in columns[1].find_element(By.CSS_SELECTOR, "p.model").text
    assert f"judged: {PAYLOAD}" in columns[0].text  # the judge's rationale
    image = browser.find_element(By.CSS_SELECTOR, ".figure img")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
    browser.save_screenshot(str(artefacts / "view-sample-ad.png"))
    assert no_alert(browser)
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert [i.get_attribute("alt") for i in browser.find_elements(By.TAG_NAME, "img")] == ["the image"]
    assert browser.find_elements(By.CSS_SELECTOR, "a[href^='javascript']") == []
    assert severe(browser) == []


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` sent exactly as written (no client-side normalization of ``..``)."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_path_traversal_is_refused_over_http(viewer, runs):
    base, _ = viewer
    secret = runs["root"] / "secret.txt"  # beside the served folders, not inside one
    secret.write_text("do not serve me")
    status, body = _raw_get(base, "/file/0/images/0000.png")
    assert status == 200 and body.startswith(b"\x89PNG")  # a file inside a served folder is served
    for path in ("/file/0/../secret.txt", "/file/0/..%2fsecret.txt", "/file/0/%2e%2e/%2e%2e/etc/passwd",
                 "/file/1/../../secret.txt", f"/file/0/{secret}", "/file/0//etc/passwd", "/file/7/run.json",
                 "/file/../../secret.txt"):
        status, body = _raw_get(base, path)
        assert status in (403, 404), path
        assert b"do not serve me" not in body and b"root:" not in body, path


def test_a_hand_rating_of_an_ad_answer_is_saved_and_judge_agree_reads_it(browser, viewer, runs, artefacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    base, ratings = viewer
    browser.get(base + "/sample?task=AD&id=s0012")
    form = browser.find_element(By.ID, "rating")
    fields = form.find_elements(By.CSS_SELECTOR, "input[type=number]")
    criteria = [f.get_attribute("name") for f in fields]
    assert len(criteria) >= 3
    for value, field in enumerate(fields, 1):
        field.send_keys(str(value))
    browser.save_screenshot(str(artefacts / "view-rating.png"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(form))
    assert "saved to ratings.csv" in browser.find_element(By.TAG_NAME, "body").text
    assert severe(browser) == []
    rows = list(csv.DictReader(ratings.open(newline="")))
    assert sorted((r["sample_id"], r["criterion"], r["score"]) for r in rows) == sorted(
        ("s0012", c, str(v)) for v, c in enumerate(criteria, 1))
    figures = json.loads(_cli("judge", "agree", str(runs["imported"]), "--human", str(ratings), "--json"))
    assert figures["judges"] == ["current", "human"] and figures["n_common"] == 1
    assert all(figures["criteria"][c]["n"] == 1 for c in criteria)
