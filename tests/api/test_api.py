"""The HTTP API end to end: the real app, the real pipeline and the openai backend talking
to the loopback fake of ``/v1/chat/completions`` (which counts every model call).

TestClient for the contract, the errors, auth and jobs; a real uvicorn on loopback with
httpx.AsyncClient for 200 concurrent requests.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import service.api as api_module
from service.api import create_app
from service.jobs import JobSettings
from tests.api.conftest import ARTICLES, TOKEN, make_settings, model_calls, short_text, text_needing_model
from tests.api.serving import thread_server
from tests.doubles.fake_openai import FakeOpenAIServer, status

FAST_JOBS = JobSettings(workers=2, max_queued=50, poll_seconds=0.05)
SEED = ARTICLES[0]
SEED_TEXT = SEED.read_text(encoding="utf-8")
DOCX = "officedocument.wordprocessingml.document"


@pytest.fixture
def client(fake: FakeOpenAIServer, tmp_path: Path) -> TestClient:
    with TestClient(create_app(make_settings(fake, tmp_path), job_settings=FAST_JOBS)) as c:
        yield c


def assert_contract(digest: dict[str, Any], text: str) -> None:
    assert set(digest) >= {"doc", "overview", "achievements", "problems", "plans", "excluded", "meta"}
    assert set(digest["doc"]) >= {"title", "organization", "region", "period", "chars"}
    assert digest["doc"]["chars"] == len(text)
    assert isinstance(digest["overview"], str)
    assert set(digest["meta"]) >= {"backend", "model", "prompt_version", "chunks", "llm_calls",
                                   "prompt_tokens", "completion_tokens", "seconds", "warnings"}
    for cat in ("achievements", "problems", "plans"):
        for item in digest[cat]:
            assert set(item) >= {"summary", "evidence", "span", "figures"}
            start, end = item["span"]
            assert item["evidence"] == text[start:end]
            for fig in item["figures"]:
                assert fig in item["evidence"]
    for ex in digest["excluded"]:
        assert set(ex) == {"span", "reason"} and 0 <= ex["span"][0] <= ex["span"][1] <= len(text)


def assert_error(res: httpx.Response, status_code: int, code: str | None = None) -> dict[str, Any]:
    assert res.status_code == status_code, res.text
    assert res.headers["content-type"].startswith("application/json")
    body = res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


# -- the contract --------------------------------------------------------------------------


def test_json_body_returns_the_contract(client: TestClient, fake: FakeOpenAIServer) -> None:
    text = text_needing_model(short=False)
    res = client.post("/v1/summaries", json={"text": text})
    assert res.status_code == 200, res.text
    digest = res.json()
    assert_contract(digest, text)
    assert sum(len(digest[c]) for c in ("achievements", "problems", "plans")) > 0
    assert digest["meta"]["backend"] == "openai" and digest["meta"]["model"] == "fake-model"
    assert digest["meta"]["llm_calls"] == len(fake.requests) > 0
    assert res.headers["x-reportsum-cache"] == "miss"


@pytest.mark.parametrize("article", ARTICLES, ids=lambda p: p.name[:3])
def test_seed_article_on_the_replay_backend(article: Path, tmp_path: Path) -> None:
    """The recorded model answers for the seeds: what ``reportsum summarize`` gives, over HTTP."""
    from service.backends import make_backend
    from service.config import Settings
    from service.pipeline import summarize

    settings = Settings(backend="replay", cache=tmp_path / "cache.sqlite3", db=tmp_path / "jobs.sqlite3")
    text = article.read_text(encoding="utf-8")
    with TestClient(create_app(settings)) as c:
        res = c.post("/v1/summaries", files={"file": (article.name, article.read_bytes(), "text/plain")})
    assert res.status_code == 200, res.text
    digest = res.json()
    assert_contract(digest, text)
    assert digest["meta"]["backend"] == "replay"

    async def direct() -> dict[str, Any]:
        backend = make_backend(settings)
        try:
            return (await summarize(text, backend, settings, source=article.name)).model_dump(mode="json")
        finally:
            await backend.aclose()

    expected = asyncio.run(direct())
    for d in (digest, expected):
        d["meta"].pop("seconds")
    assert digest == expected


def test_upload_gb18030_and_html(client: TestClient) -> None:
    text = SEED_TEXT[:1500]
    res = client.post("/v1/summaries", files={"file": ("report.txt", text.encode("gb18030"), "text/plain")},
                      data={"title": "自定标题"})
    assert res.status_code == 200, res.text
    assert_contract(res.json(), text)  # spans index the decoded text
    assert res.json()["doc"]["title"] == "自定标题"

    page = "<html><head><title>报告</title></head><body><p>" + text.replace("\n", "</p><p>") + "</p></body></html>"
    res = client.post("/v1/summaries", files={"file": ("page.html", page.encode("utf-8"), "text/html")})
    assert res.status_code == 200, res.text
    digest = res.json()
    assert_contract(digest, page)  # spans index the page source
    for cat in ("achievements", "problems", "plans"):
        assert all("<" not in it["evidence"] and ">" not in it["evidence"] for it in digest[cat])


def test_web_pages_under_any_name_are_accepted(client: TestClient) -> None:
    page = "<html><body><p>" + SEED_TEXT[:600].replace("\n", "</p><p>") + "</p></body></html>"
    named = [("a.shtml", "text/html"), ("b.php", "application/x-httpd-php"),
             ("c.jsp", "application/octet-stream"), ("noext", None)]
    for name, ctype in named:
        res = client.post("/v1/summaries", files={"file": (name, page.encode("gb18030"), ctype)})
        assert res.status_code == 200, (name, res.text)
        assert_contract(res.json(), page)


def test_raw_text_body_and_title(client: TestClient) -> None:
    text = SEED_TEXT[:800]
    headers = {"content-type": "text/plain; charset=utf-8"}
    res = client.post("/v1/summaries", content=text.encode("utf-8"), headers=headers)
    assert res.status_code == 200, res.text
    assert_contract(res.json(), text)
    res = client.post("/v1/summaries", json={"text": text, "title": "标题"})
    assert res.json()["doc"]["title"] == "标题"


def test_openapi_docs_and_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    assert {"/v1/summaries", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events"} <= set(spec["paths"])
    body = spec["paths"]["/v1/summaries"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])
    assert {"SummaryRequest", "SummaryOptions", "Digest", "ErrorResponse"} <= refs
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset in ("/static/app.js", "/static/app.css"):
        res = client.get(asset)
        assert res.status_code == 200 and "https://" not in res.text


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"json": {"text": ""}}, "invalid_input"),
        ({"json": {"text": " \n\t "}}, "invalid_input"),
        ({"json": {}}, "invalid_body"),
        ({"json": {"text": 5}}, "invalid_body"),
        ({"json": {"text": "正文", "colour": 1}}, "invalid_body"),
        ({"json": {"text": "正文", "options": {"chunk_tokens": -1}}}, "invalid_body"),
        ({"json": ["text"]}, "invalid_body"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, "invalid_body"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, "invalid_body"),
        ({"files": {"other": (None, "x")}}, "invalid_body"),
        ({"files": {"file": ("empty.txt", b"", "text/plain")}}, "invalid_input"),
        ({"files": {"file": ("s.txt", b"   \n", "text/plain")}}, "invalid_input"),
    ],
)
def test_422_empty_or_invalid_body(
    client: TestClient, fake: FakeOpenAIServer, kwargs: dict[str, Any], code: str
) -> None:
    for path in ("/v1/summaries", "/v1/jobs"):
        assert_error(client.post(path, **kwargs), 422, code)
    assert fake.requests == []


def test_413_text_over_the_limit(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    settings = make_settings(fake, tmp_path, max_chars=1000)
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/summaries", json={"text": "字" * 1000}).status_code == 200
        for path in ("/v1/summaries", "/v1/jobs"):
            assert_error(c.post(path, json={"text": "字" * 1001}), 413, "too_large")
            data = ("字" * 1001).encode("gb18030")
            assert_error(c.post(path, files={"file": ("big.txt", data, "text/plain")}), 413, "too_large")
            assert_error(c.post(path, content=b"a" * 200_000, headers={"content-type": "text/plain"}), 413)
    assert all(r.body["messages"][-1]["content"].count("字") <= 1000 for r in fake.requests)


def test_413_refused_from_content_length_without_reading_the_body(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    app = create_app(make_settings(fake, tmp_path, max_chars=1000))
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/summaries", "raw_path": b"/v1/summaries", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000000000")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "too_large"
    assert reads == 0


def test_413_on_a_real_server_with_and_without_content_length(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    def chunks():  # no Content-Length: refused while streaming
        for _ in range(100):
            yield b"a" * 100_000

    with thread_server(create_app(make_settings(fake, tmp_path, max_chars=1000))) as base:
        for content in (b"a" * 10_000_000, chunks()):
            res = httpx.post(f"{base}/v1/summaries", content=content, headers={"content-type": "text/plain"})
            assert_error(res, 413, "too_large")
        assert httpx.get(f"{base}/healthz").status_code == 200
    assert fake.requests == []


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"files": {"file": ("report.pdf", b"%PDF-1.4 ...", "application/pdf")}},
        {"files": {"file": ("report.docx", b"PK\x03\x04....", f"application/vnd.openxmlformats-{DOCX}")}},
        {"files": {"file": ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "text/plain")}},
        {"files": {"file": ("blob.bin", bytes(range(256)) * 4, "application/octet-stream")}},
        {"content": b"%PDF-1.4", "headers": {"content-type": "application/pdf"}},
        {"content": b"text=abc", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"files": {"file": ("scan.jpg", b"\xff\xd8\xff\xe0", "image/jpeg")}},
    ],
)
def test_415_unsupported_upload(client: TestClient, kwargs: dict[str, Any]) -> None:
    for path in ("/v1/summaries", "/v1/jobs"):
        assert_error(client.post(path, **kwargs), 415, "unsupported_media_type")


def test_502_when_the_endpoint_fails(tmp_path: Path) -> None:
    with FakeOpenAIServer(fail_rate=1.0) as failing:
        with TestClient(create_app(make_settings(failing, tmp_path))) as c:
            err = assert_error(c.post("/v1/summaries", json={"text": text_needing_model()}), 502, "backend_error")
            assert "sk-test" not in err["message"]


def test_502_when_the_endpoint_is_unreachable(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    settings = make_settings(fake, tmp_path, openai_base_url="http://127.0.0.1:9/v1")
    with TestClient(create_app(settings)) as c:
        assert_error(c.post("/v1/summaries", json={"text": text_needing_model()}), 502, "backend_error")


def test_504_when_the_endpoint_times_out(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency=2.0) as slow:
        with TestClient(create_app(make_settings(slow, tmp_path, timeout=0.3))) as c:
            assert_error(c.post("/v1/summaries", json={"text": text_needing_model()}), 504, "backend_timeout")


def test_500_is_json_without_internals(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    class Broken:
        name, model = "broken", "broken"

        async def complete(self, request: Any) -> Any:
            raise RuntimeError("secret internal detail")

        async def aclose(self) -> None:
            pass

    app = create_app(make_settings(fake, tmp_path), backend=Broken())
    with TestClient(app, raise_server_exceptions=False) as c:
        err = assert_error(c.post("/v1/summaries", json={"text": text_needing_model()}), 500, "internal")
        assert "secret" not in err["message"]


def test_404_and_405_are_json(client: TestClient) -> None:
    assert_error(client.get("/v1/jobs/0123abc"), 404, "not_found")
    assert_error(client.get("/v1/jobs/0123abc/events"), 404, "not_found")
    assert_error(client.get("/v1/jobs/0123abc/text"), 404, "not_found")
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.get("/v1/summaries"), 405, "method_not_allowed")


# -- auth ----------------------------------------------------------------------------------


def test_bearer_token_on_every_endpoint_but_healthz(fake: FakeOpenAIServer, tmp_path: Path) -> None:
    settings = make_settings(fake, tmp_path, api_key=TOKEN)
    good = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings, job_settings=FAST_JOBS)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200  # the page shell: the user types the token into it
        job = c.post("/v1/jobs", json={"text": short_text(1)}, headers=good).json()["id"]
        wait_job(c, job, headers=good)
        protected = [
            ("POST", "/v1/summaries", {"json": {"text": short_text(2)}}),
            ("POST", "/v1/jobs", {"json": {"text": short_text(3)}}),
            ("GET", f"/v1/jobs/{job}", {}),
            ("GET", f"/v1/jobs/{job}/text", {}),
            ("GET", f"/v1/jobs/{job}/events", {}),
            ("GET", "/openapi.json", {}),
            ("GET", "/docs", {}),
        ]
        bad_headers = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                       {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}]
        calls_before = len(fake.requests)
        for method, path, kw in protected:
            for headers in bad_headers:
                res = c.request(method, path, headers=headers, **kw)
                assert_error(res, 401, "unauthorized")
                assert res.headers["www-authenticate"] == "Bearer"
            # a query token is accepted by the events stream only
            assert c.request(method, f"{path}?token={TOKEN}", **kw).status_code == (
                200 if path.endswith("/events") else 401
            )
        assert len(fake.requests) == calls_before  # refused before any model call
        for method, path, kw in protected:
            assert c.request(method, path, headers=good, **kw).status_code in (200, 202)


# -- jobs ------------------------------------------------------------------------------------


def wait_job(c: TestClient, job_id: str, timeout: float = 30.0, **kw: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}", **kw).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")


def sse(lines: Any) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], "message"
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:])))
            name = "message"
    return events


def test_job_lifecycle_with_progress_events(client: TestClient, fake: FakeOpenAIServer) -> None:
    text = text_needing_model(short=False)
    res = client.post("/v1/jobs", json={"text": text, "title": "济宁"})
    assert res.status_code == 202
    job_id = res.json()["id"]
    assert res.headers["location"] == f"/v1/jobs/{job_id}" == res.json()["location"]
    assert res.json()["status"] == "queued"

    with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse(stream.iter_lines())
    names = [n for n, _ in events]
    assert names[-1] == "done" and set(names[:-1]) <= {"progress"}
    dones = [e["progress"]["done"] for _, e in events]
    assert dones == sorted(dones)  # progress only moves forward
    assert events[-1][1]["progress"]["done"] == events[-1][1]["progress"]["total"] > 0

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "done" and job["attempts"] == 1 and job["cached"] is False
    assert_contract(job["digest"], text)
    assert job["digest"]["doc"]["title"] == "济宁"
    assert client.get(f"/v1/jobs/{job_id}/text").text == text
    # the stream of a finished job ends at once with its final state
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as stream:
        assert [n for n, _ in sse(stream.iter_lines())] == ["done"]

    # the same digest as the synchronous endpoint gives (served from the cache)
    calls = len(fake.requests)
    sync = client.post("/v1/summaries", json={"text": text, "title": "济宁"})
    assert sync.headers["x-reportsum-cache"] == "hit" and len(fake.requests) == calls
    assert sync.json() == job["digest"]


def test_failed_job_reports_its_error(tmp_path: Path) -> None:
    with FakeOpenAIServer() as broken:
        broken.script(*[status(500)] * 50)
        with TestClient(create_app(make_settings(broken, tmp_path), job_settings=FAST_JOBS)) as c:
            job_id = c.post("/v1/jobs", json={"text": text_needing_model()}).json()["id"]
            job = wait_job(c, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "backend_error"
    assert "digest" not in job


def test_full_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency=1.0) as slow:
        settings = make_settings(slow, tmp_path)
        with TestClient(create_app(settings, job_settings=JobSettings(workers=1, max_queued=2))) as c:
            answers = [c.post("/v1/jobs", json={"text": short_text(i)}) for i in range(5)]
            codes = [a.status_code for a in answers]
            assert codes[:2] == [202, 202] and 429 in codes, codes
            refused = answers[codes.index(429)]
            assert_error(refused, 429, "queue_full")
            assert int(refused.headers["retry-after"]) >= 1
            accepted = [a.json()["id"] for a in answers if a.status_code == 202]
            assert len(accepted) <= 3  # two waiting + at most one already running
            for job_id in accepted:
                assert wait_job(c, job_id)["status"] == "done"


# -- cache ------------------------------------------------------------------------------------


def test_cache_hit_makes_zero_model_calls(client: TestClient, fake: FakeOpenAIServer) -> None:
    text = text_needing_model(short=False)
    first = client.post("/v1/summaries", json={"text": text})
    calls = len(fake.requests)
    assert calls > 0 and first.headers["x-reportsum-cache"] == "miss"

    again = client.post("/v1/summaries", files={"file": ("same.txt", text.encode("gb18030"), "text/plain")})
    assert again.headers["x-reportsum-cache"] == "hit" and again.json() == first.json()
    job_id = client.post("/v1/jobs", json={"text": text}).json()["id"]
    job = wait_job(client, job_id)
    assert job["cached"] is True and job["digest"] == first.json()
    assert len(fake.requests) == calls  # zero model calls for both

    # other options are another digest; no_cache runs the pipeline again
    res = client.post("/v1/summaries", json={"text": text, "options": {"chunk_tokens": 600}})
    assert res.headers["x-reportsum-cache"] == "miss" and len(fake.requests) > calls
    calls = len(fake.requests)
    res = client.post("/v1/summaries", json={"text": text, "options": {"no_cache": True}})
    assert res.headers["x-reportsum-cache"] == "miss" and len(fake.requests) > calls


# -- one backend, concurrency ------------------------------------------------------------------


def test_backend_is_created_once_and_shared(
    fake: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    real = api_module.make_backend

    def counting(settings: Any) -> Any:
        made.append(real(settings))
        return made[-1]

    monkeypatch.setattr(api_module, "make_backend", counting)
    with TestClient(create_app(make_settings(fake, tmp_path), job_settings=FAST_JOBS)) as c:
        for i in range(3):
            assert c.post("/v1/summaries", json={"text": short_text(i)}).status_code == 200
        wait_job(c, c.post("/v1/jobs", json={"text": short_text(9)}).json()["id"])
    assert len(made) == 1


def test_200_concurrent_requests_on_a_real_server(tmp_path: Path) -> None:
    latency, n = 1.0, 200
    with FakeOpenAIServer(latency=latency) as slow:
        app = create_app(make_settings(slow, tmp_path), job_settings=FAST_JOBS)
        with thread_server(app) as base:

            async def drive() -> tuple[list[httpx.Response], float, float]:
                limits = httpx.Limits(max_connections=n + 1, max_keepalive_connections=n + 1)
                async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
                    started = time.monotonic()
                    tasks = [asyncio.create_task(client.post("/v1/summaries", json={"text": short_text(i)}))
                             for i in range(n)]
                    # Once every request waits on its model call, the server must still answer.
                    while len(slow.requests) < n and time.monotonic() - started < latency * 0.8:
                        await asyncio.sleep(0.01)
                    t = time.monotonic()
                    health = await client.get("/healthz")
                    health_s = time.monotonic() - t
                    assert health.status_code == 200
                    answers = await asyncio.gather(*tasks)
                    return answers, time.monotonic() - started, health_s

            answers, elapsed, health_s = asyncio.run(drive())
        calls = len(slow.requests)
    assert [a.status_code for a in answers] == [200] * n
    for i, a in enumerate(answers):
        assert_contract(a.json(), short_text(i))
    expected = sum(model_calls(short_text(i)) for i in range(n))
    assert expected >= n, "short_text() no longer costs a model call: pick a sentence the cues cannot label"
    assert calls == expected
    # One after another this would take calls * latency (200 s); together, about one latency
    # plus the CPU of 200 requests, shared here with the client and the fake in one process.
    assert elapsed < 10 * latency, f"{n} requests took {elapsed:.1f}s"
    assert health_s < latency / 2, f"/healthz waited {health_s:.2f}s behind model calls"


def test_the_strategy_is_a_per_request_option_and_part_of_the_cache_key(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    from tests.doubles import context_replies

    fake.responder = context_replies.reply
    text = ARTICLES[0].read_text(encoding="utf-8")
    learned = client.post("/v1/summaries", json={"text": text, "options": {"no_cache": True}}).json()
    calls = len(fake.requests)
    res = client.post("/v1/summaries", json={"text": text, "options": {"strategy": "context"}})
    digest = res.json()
    assert res.status_code == 200 and res.headers["x-reportsum-cache"] == "miss"
    assert learned["meta"]["strategy"] == "learned" and digest["meta"]["strategy"] == "context"
    assert digest["meta"]["llm_calls"] == len(fake.requests) - calls == digest["meta"]["chunks"] + 1
    assert_contract(digest, text)
    bad = client.post("/v1/summaries", json={"text": text, "options": {"strategy": "guess"}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_body"
