"""The web page in a real browser: headless Debian Chromium driven by Playwright.

``reportsum serve`` runs as a subprocess on the replay backend (recorded model answers for
the seed articles, no network) with an API key set. The test types the token, uploads a
seed article, waits for the job's progress to finish and the three lists to appear, then
clicks items and checks that the evidence is marked in the source text (one ``<mark>``
whose text is exactly the item's evidence, scrolled into view), with figures bold and
excluded parts greyed.

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

from tests.api.conftest import ARTICLES, TOKEN
from tests.api.serving import ServerProcess, clean_env
from tests.doubles.web_page import WEB_PAGE

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SEED = ARTICLES[1]  # long enough that its later items sit below the fold


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]' (never 'playwright install')")
    if not CHROMIUM.exists():
        found = shutil.which("chromium")
        pytest.fail(f"{CHROMIUM} not found{f' (there is {found})' if found else ''}: run .ci/install-browser.sh "
                    "(apt-get install -y chromium chromium-driver)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("browser-server")
    env = clean_env(
        REPORTSUM_BACKEND="replay", REPORTSUM_API_KEY=TOKEN, REPORTSUM_QUIET="1",
        REPORTSUM_DB=str(tmp / "jobs.sqlite3"), REPORTSUM_CACHE=str(tmp / "cache.sqlite3"),
        REPORTSUM_JOB_POLL_SECONDS="0.1",
        REPORTSUM_ASSIST_MARGIN="0.2",  # as the recordings were made (fixtures/README.md)
    )
    server = ServerProcess(env, tmp / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def context_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The same app with the context strategy: the replayed model answers carry real summaries."""
    tmp = tmp_path_factory.mktemp("browser-context-server")
    env = clean_env(
        REPORTSUM_BACKEND="replay", REPORTSUM_STRATEGY="context", REPORTSUM_API_KEY=TOKEN, REPORTSUM_QUIET="1",
        REPORTSUM_DB=str(tmp / "jobs.sqlite3"), REPORTSUM_CACHE=str(tmp / "cache.sqlite3"),
        REPORTSUM_JOB_POLL_SECONDS="0.1",
    )
    server = ServerProcess(env, tmp / "server.log").start()
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The page is served by the app itself: any other origin would be a CDN or the network.
    outside: list[str] = []
    page.on("request", lambda req: None if req.url.startswith("http://127.0.0.1") else outside.append(req.url))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not outside, f"the page fetched from outside the server: {outside}"


def submit_seed(page: Any, server: ServerProcess) -> tuple[str, dict[str, Any]]:
    page.goto(server.base_url + "/")
    # Record every status the progress line shows, as it changes.
    page.evaluate("""() => {
        window.statuses = [];
        new MutationObserver(() => window.statuses.push(document.querySelector('#status').textContent))
            .observe(document.querySelector('#status'), {childList: true, characterData: true, subtree: true});
    }""")
    page.fill("#token", TOKEN)
    page.set_input_files("#file", str(SEED))
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    job_id = page.evaluate("location.hash").removeprefix("#job=")
    job = httpx.get(f"{server.base_url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert job["status"] == "done", job
    return job_id, job["digest"]


def test_click_an_item_highlights_its_evidence(page: Any, server: ServerProcess) -> None:
    from playwright.sync_api import expect

    _, digest = submit_seed(page, server)

    # progress: fed by the events stream, ends full
    assert page.evaluate("window.statuses").pop() == "done"
    assert page.get_attribute("#job", "data-status") == "done"
    assert page.evaluate("document.querySelector('#progress').value === document.querySelector('#progress').max")

    # the three lists, as the API returned them
    for cat in ("achievements", "problems", "plans"):
        expect(page.locator(f"#{cat} .item")).to_have_count(len(digest[cat]))
    assert digest["achievements"] and digest["plans"]

    # the source shows the uploaded text; excluded parts greyed
    source = page.locator("#source")
    assert source.text_content() == SEED.read_text(encoding="utf-8")
    excluded = page.locator("#source .excluded")
    if digest["excluded"]:
        assert excluded.count() >= 1
        assert excluded.first.get_attribute("title").startswith("left out")
        grey = excluded.first.evaluate("n => getComputedStyle(n).color")
        assert grey != source.evaluate("n => getComputedStyle(n).color")

    # an item far down the text, with figures if there is one
    items = digest["achievements"]
    with_figures = [i for i, it in enumerate(items) if it["figures"]] or list(range(len(items)))
    index = max(with_figures, key=lambda i: items[i]["span"][0])
    item = items[index]
    assert source.evaluate("n => n.scrollTop") == 0
    button = page.locator(f'.item[data-category="achievements"][data-index="{index}"]')
    if item["figures"]:  # figures visibly marked in the list
        assert button.locator(".chip").all_text_contents() == item["figures"]
    button.click()

    mark = page.locator("#source mark")
    expect(mark).to_have_count(1)
    assert mark.text_content() == item["evidence"]
    expect(mark).to_be_in_viewport()
    assert source.evaluate("n => n.scrollTop") > 0  # it was scrolled to, not already visible
    if item["figures"]:
        bold = mark.locator("b.fig").all_text_contents()
        assert bold and set(bold) <= set(item["figures"])
        assert bold[0] in item["evidence"]
    expect(button).to_have_class("item selected")

    # another item moves the mark
    plan = digest["plans"][0]
    page.locator('.item[data-category="plans"][data-index="0"]').click()
    expect(mark).to_have_count(1)
    assert mark.text_content() == plan["evidence"]
    expect(mark).to_be_in_viewport()


def test_wrong_token_is_reported_on_the_page(page: Any, server: ServerProcess) -> None:
    page.goto(server.base_url + "/")
    page.fill("#token", "not-the-token")
    page.fill("#text", SEED.read_text(encoding="utf-8")[:500])
    page.click("#submit")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "401" in error.text_content() and "unauthorized" in error.text_content()
    assert page.locator("#result").is_hidden()


def test_a_summary_is_shown_once_and_its_quote_as_the_quote(page: Any, context_server: ServerProcess) -> None:
    """A summary that restates its evidence shows as the quote alone; a real summary shows
    above its quote. No item shows the same words twice."""
    from service.render import restates

    _, digest = submit_seed(page, context_server)
    assert digest["meta"]["strategy"] == "context"
    kinds = {"own words": 0, "the quote": 0}
    for cat in ("achievements", "problems", "plans"):
        buttons = page.locator(f"#{cat} .item")
        assert buttons.count() == len(digest[cat])
        for index, item in enumerate(digest[cat]):
            button = buttons.nth(index)
            summary = button.locator(".summary").text_content()
            quotes = button.locator(".evidence").all_text_contents()
            if restates(item["summary"], item["evidence"]):
                kinds["the quote"] += 1
                assert summary == f"“{item['evidence']}”" and quotes == []
            else:
                kinds["own words"] += 1
                assert summary == item["summary"] and quotes == [f"“{item['evidence']}”"]
    assert kinds["own words"] and kinds["the quote"], kinds  # both ways shown by this seed
    assert page.locator("#overview").text_content() == digest["overview"]


def test_a_quote_from_web_page_source_shows_as_a_reader_sees_it(page: Any, server: ServerProcess) -> None:
    """A sentence across inline markup keeps its tags in the evidence (an exact slice of the
    posted source); the list shows the quote without them, and the mark covers the slice."""
    from playwright.sync_api import expect

    page.goto(server.base_url + "/")
    page.fill("#token", TOKEN)
    page.fill("#text", WEB_PAGE)
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    job_id = page.evaluate("location.hash").removeprefix("#job=")
    digest = httpx.get(f"{server.base_url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {TOKEN}"}).json()["digest"]
    found = [(cat, i, it) for cat in ("achievements", "problems", "plans")
             for i, it in enumerate(digest[cat]) if "<span" in it["evidence"]]
    assert found, digest  # the case this is about
    cat, index, item = found[0]
    button = page.locator(f'.item[data-category="{cat}"][data-index="{index}"]')
    shown = button.text_content()
    assert "<" not in shown and "font-size" not in shown and "村卫生室42所" in shown
    button.click()
    mark = page.locator("#source mark")
    expect(mark).to_have_count(1)
    assert mark.text_content() == item["evidence"]  # the source pane shows the page source as posted
