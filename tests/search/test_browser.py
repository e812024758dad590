"""The web page in a real headless Chromium (Debian's package, driven by Playwright's Python API): type a query,
see result cards with thumbnails, click one, and the video plays from the moment's start.

Skips only when no Chromium is installed (CI installs it). VIDLA_SEARCH_SCREENSHOT=path saves the page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
QUERY = "a red square moves right"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")


def test_page_search_click_plays_from_the_moment_start(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    import httpx

    _, port = served
    base = f"http://127.0.0.1:{port}"
    expected = httpx.get(f"{base}/api/search", params={"q": QUERY, "k": 10}, timeout=60).json()["results"]
    first = expected[0]["moments"][0]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(base + "/")
            page.fill("#q", QUERY)
            page.press("#q", "Enter")
            page.wait_for_selector(".card", timeout=60_000)
            cards = page.locator(".card")
            assert cards.count() == sum(len(v["moments"]) for v in expected)
            # every thumbnail of the first card is a decoded picture
            page.wait_for_function("""() => [...document.querySelectorAll('.card')[0].querySelectorAll('img')]
                                       .every(img => img.complete && img.naturalWidth > 0)""", timeout=60_000)
            assert page.locator(".card").first.locator("img").count() == 4
            cards.first.click()
            page.wait_for_function(
                """start => { const v = document.getElementById('player');
                              return v.readyState >= 1 && Math.abs(v.currentTime - start) < 0.5; }""",
                arg=first["start"], timeout=60_000)
            current = page.evaluate("document.getElementById('player').currentTime")
            assert abs(current - first["start"]) < 0.5
            assert page.evaluate("document.getElementById('player').src").endswith(expected[0]["video_url"])
            page.evaluate("document.getElementById('player').pause()")
            screenshot = Path(os.environ.get("VIDLA_SEARCH_SCREENSHOT") or tmp_path / "search.png")
            page.screenshot(path=str(screenshot), full_page=False)
            assert screenshot.stat().st_size > 10_000
        finally:
            browser.close()
