"""The track page in a real browser (headless Debian Chromium through Playwright), against
``reportsum serve``: paste the 2014 and 2015 reports (fixtures/tracking), get one row per
commitment, click a row, and see the commitment marked in the earlier text and the
statement it was judged by marked in the later text, both scrolled into view.

Never skipped: CI installs Chromium with ``.ci/install-browser.sh``; without it the test
fails and says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import TOKEN
from tests.api.serving import ServerProcess, clean_env
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAIR = ROOT / "fixtures" / "tracking" / "p2014_2015"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]' (never 'playwright install')")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run .ci/install-browser.sh (apt-get install -y chromium chromium-driver)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("track-page-server")
    # the server reads with a model when it has one: here the recorded reader's replies
    env = clean_env(REPORTSUM_BACKEND="replay", REPORTSUM_MODEL="reader",
                    REPORTSUM_RECORDINGS=str(ROOT / "fixtures" / "recordings" / "track"),
                    REPORTSUM_API_KEY=TOKEN, REPORTSUM_QUIET="1",
                    REPORTSUM_DB=str(tmp / "jobs.sqlite3"), REPORTSUM_CACHE=str(tmp / "cache.sqlite3"))
    server = ServerProcess(env, tmp / "server.log").start()
    yield server
    server.stop()


def test_track_page_marks_the_commitment_and_its_statement(browser: Any, server: ServerProcess) -> None:
    earlier = (PAIR / "earlier.txt").read_text(encoding="utf-8")
    later = (PAIR / "later.txt").read_text(encoding="utf-8")
    expected = httpx.post(f"{server.base_url}/v1/tracks", json={"earlier": earlier, "later": later},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120).json()
    gdp = next(it for it in expected["items"] if it["commitment"]["evidence"] == "国内生产总值增长7.5%左右")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    outside: list[str] = []
    page.on("request", lambda req: None if req.url.startswith("http://127.0.0.1") else outside.append(req.url))
    try:
        page.goto(server.base_url + "/static/track.html")
        page.fill("#token", TOKEN)
        page.fill("#earlier", earlier)
        page.fill("#later", later)
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
        rows = page.locator("#commitments tbody tr")
        assert rows.count() == len(expected["items"])
        row = rows.filter(has_text="国内生产总值增长7.5%左右").first
        assert "7.4%" in row.inner_text() and "met" in row.inner_text()
        row.click()
        marks = [page.locator("#earlier-src mark"), page.locator("#later-src mark")]
        assert marks[0].count() == 1 and marks[0].inner_text() == gdp["commitment"]["evidence"]
        assert [marks[1].nth(k).inner_text() for k in range(marks[1].count())] == [s["evidence"] for s in gdp["later"]]
        for mark, pane in zip(marks, ("#earlier-src", "#later-src")):  # scrolled into its pane's view
            box, view = mark.first.bounding_box(), page.locator(pane).bounding_box()
            assert view["y"] <= box["y"] and box["y"] + box["height"] <= view["y"] + view["height"]
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not outside, f"the page fetched from outside the server: {outside}"
