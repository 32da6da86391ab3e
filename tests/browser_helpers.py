"""The report opened in Debian's Chromium through chromedriver (selenium), as a reader opens it:
from a file. The browser's console and its network events are logged (goog:loggingPrefs), so a
test can tell that the page loaded with no error and fetched nothing."""

from __future__ import annotations

import json
import os
import typing as t
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def browser_or_skip() -> None:
    """Chromium and chromedriver (`make browser`, which `make test` runs), or a skip; under CI
    a failure."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    said = f"{', '.join(missing)} missing: `make browser` installs Debian's chromium and driver"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(said)
    pytest.skip(said)


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[t.Any]:
    browser_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: t.Any) -> list[str]:
    """Every URL the page asked for (Network.requestWillBeSent in the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def full_page_screenshot(driver: t.Any, path: Path) -> Path:
    """The whole page as PNG (the window grown to the page's height first)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 100, 16000))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), "no screenshot"
    return path
