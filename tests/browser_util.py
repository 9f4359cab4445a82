"""What the browser tests (tests/test_browser_*.py) share: headless Chromium found on the PATH, driven by Selenium.

A test module marks itself with :data:`requires_chromium` (skipped, with the reason, where Chromium or its driver
is missing; CI installs them with ``.ci/browser-env.sh``) and imports Selenium with ``pytest.importorskip``.
Screenshots go to :func:`artefact_folder`: ``$DFABENCH_ARTEFACTS`` when it is set (CI keeps that folder), else
the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
requires_chromium = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver; CI runs .ci/browser-env.sh)")


def artefact_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DFABENCH_ARTEFACTS") or tmp_path / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_browser():
    """A headless Chromium (1400x1000) that keeps the console's messages (:func:`severe` reads them)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def severe(driver) -> list[str]:
    """The console's errors since the last call (failed loads, CSP violations, script errors)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def no_alert(driver) -> bool:
    """True when no JavaScript dialog (alert, confirm, prompt) is open."""
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert.text  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False
