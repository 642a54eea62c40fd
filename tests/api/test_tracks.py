"""``POST /v1/tracks`` and its job path end to end: the real app, the real track pipeline and
the openai backend talking to the loopback fake of ``/v1/chat/completions``.

The fake answers each track request as a model would, from the request alone: every
commitment ``progress_reported`` on its first candidate (``not_reported`` when it has none),
so the tests can tell a verdict that came from the model from one decided without it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import TRACK_JOB, create_app
from service.config import PROJECT_ROOT
from service.jobs import JobSettings, JobStore
from tests.api.conftest import make_settings
from tests.api.test_api import assert_error
from tests.doubles.fake_openai import FakeOpenAIServer

PAIR = PROJECT_ROOT / "fixtures" / "tracking" / "p2014_2015"
EARLIER = (PAIR / "earlier.txt").read_text(encoding="utf-8")
LATER = (PAIR / "later.txt").read_text(encoding="utf-8")
FAST_JOBS = JobSettings(workers=1, max_queued=5, poll_seconds=0.05)


def reader(body: dict[str, Any]) -> str:
    """A track reply from the request's user message alone."""
    user = body["messages"][-1]["content"]
    items = []
    for n, block in enumerate(re.split(r"【承诺 \d+】", user)[1:], 1):
        has_candidate = "(1)[" in block
        items.append({"n": n, "status": "progress_reported" if has_candidate else "not_reported",
                      "statements": [1] if has_candidate else []})
    return json.dumps({"items": items}, ensure_ascii=False)


@pytest.fixture
def model() -> FakeOpenAIServer:
    with FakeOpenAIServer(responder=reader) as server:
        yield server


@pytest.fixture
def client(model: FakeOpenAIServer, tmp_path: Path) -> TestClient:
    with TestClient(create_app(make_settings(model, tmp_path), job_settings=FAST_JOBS, cpu_workers=0)) as c:
        yield c


def assert_track(track: dict[str, Any], earlier: str, later: str) -> None:
    assert len(track["items"]) >= 30
    for it in track["items"]:
        s, e = it["commitment"]["span"]
        assert earlier[s:e] == it["commitment"]["evidence"]
        for st in it["later"]:
            assert later[st["span"][0]:st["span"][1]] == st["evidence"]
            assert all(f in st["evidence"] for f in st["figures"])


def assert_read_by_the_model(track: dict[str, Any], model: FakeOpenAIServer) -> None:
    assert track["meta"]["strategy"] == "model" and track["meta"]["llm_calls"] == len(model.requests) > 0
    assert all(it["basis"].startswith("the model") for it in track["items"])


def test_json_body_is_read_by_the_model(client: TestClient, model: FakeOpenAIServer) -> None:
    r = client.post("/v1/tracks", json={"earlier": EARLIER, "later": LATER})
    assert r.status_code == 200, r.text
    assert_track(r.json(), EARLIER, LATER)
    assert_read_by_the_model(r.json(), model)


def test_two_uploads_gb18030_and_html(client: TestClient) -> None:
    # the later report as a GB18030 file, the earlier one as a web page: decoded like /v1/summaries' uploads
    page = "<html><head><title>政府工作报告</title></head><body>" + "".join(
        f"<p>{line}</p>" for line in EARLIER.splitlines() if line.strip()) + "</body></html>"
    files = {"earlier": ("2014.html", page.encode("utf-8"), "text/html"),
             "later": ("2015.txt", LATER.encode("gb18030"), "text/plain")}
    r = client.post("/v1/tracks", files=files)
    assert r.status_code == 200, r.text
    track = r.json()
    assert (track["earlier"]["source"], track["later"]["source"]) == ("2014.html", "2015.txt")
    assert_track(track, page, LATER)  # spans index the texts as decoded
    assert track["later"]["chars"] == len(LATER)


@pytest.mark.parametrize("files, status, code, named", [
    ({"earlier": ("a.txt", "".encode(), "text/plain"), "later": ("b.txt", LATER.encode(), "text/plain")},
     422, "invalid_input", "a.txt"),
    ({"earlier": ("a.txt", " \n ".encode(), "text/plain"), "later": ("b.txt", LATER.encode(), "text/plain")},
     422, "invalid_input", "a.txt"),
    ({"earlier": ("a.pdf", b"%PDF-1.7 ...", "application/pdf"), "later": ("b.txt", LATER.encode(), "text/plain")},
     415, "unsupported_media_type", "a.pdf"),
    ({"earlier": ("a.txt", EARLIER.encode(), "text/plain"), "later": ("b.bin", b"\x00\x01binary", "text/plain")},
     415, "unsupported_media_type", "b.bin"),
    ({"earlier": ("a.txt", EARLIER.encode(), "text/plain")}, 422, "invalid_body", "later"),
])
def test_uploads_that_are_not_two_reports_get_a_clear_4xx(client: TestClient, files: dict, status: int,
                                                          code: str, named: str) -> None:
    error = assert_error(client.post("/v1/tracks", files=files), status, code)
    assert named in error["message"]  # which upload is wrong


def test_json_errors_and_limits(model: FakeOpenAIServer, tmp_path: Path) -> None:
    settings = make_settings(model, tmp_path, max_chars=70_000)
    with TestClient(create_app(settings, job_settings=FAST_JOBS, cpu_workers=0)) as c:
        assert_error(c.post("/v1/tracks", json={"earlier": EARLIER}), 422, "invalid_body")
        assert_error(c.post("/v1/tracks", json={"earlier": "  ", "later": LATER}), 422, "invalid_input")
        assert_error(c.post("/v1/tracks", content=b"plain", headers={"content-type": "text/plain"}), 415)
        error = assert_error(c.post("/v1/tracks", json={"earlier": "年" * 70_001, "later": LATER}), 413, "too_large")
        assert "70,000" in error["message"]
        big = {"earlier": ("a.txt", ("年" * 70_001).encode("gb18030"), "text/plain"),
               "later": ("b.txt", LATER.encode(), "text/plain")}
        assert_error(c.post("/v1/tracks/jobs", files=big), 413, "too_large")
    assert model.requests == []  # nothing refused reached the model


def wait_done(client: TestClient, location: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(location).json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_job_for_long_reports(client: TestClient, model: FakeOpenAIServer) -> None:
    files = {"earlier": ("2014.txt", EARLIER.encode("gb18030"), "text/plain"),
             "later": ("2015.txt", LATER.encode("utf-8"), "text/plain")}
    r = client.post("/v1/tracks/jobs", files=files)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert r.headers["location"] == accepted["location"] == f"/v1/tracks/jobs/{accepted['id']}"
    job = wait_done(client, accepted["location"])
    assert job["status"] == "done", job
    assert job["progress"]["done"] == job["progress"]["total"] == job["track"]["meta"]["llm_calls"]
    assert job["track"]["earlier"]["source"] == "2014.txt"
    assert_track(job["track"], EARLIER, LATER)
    assert_read_by_the_model(job["track"], model)
    # a summary job is not a track job, and an unknown id is a 404
    summary = client.post("/v1/jobs", json={"text": "医疗服务能力持续提升。"}).json()
    assert wait_done(client, f"/v1/jobs/{summary['id']}")["status"] == "done"
    assert_error(client.get(f"/v1/tracks/jobs/{summary['id']}"), 404, "not_found")
    assert_error(client.get("/v1/tracks/jobs/nope"), 404, "not_found")


def test_a_track_job_interrupted_by_a_crash_completes_once_after_restart(
        model: FakeOpenAIServer, tmp_path: Path) -> None:
    settings = make_settings(model, tmp_path)
    # a server that claimed the job and died (its pid no longer runs) before finishing it
    store = JobStore(settings.db)
    job = store.insert(EARLIER, {"kind": TRACK_JOB, "later": LATER, "sources": ["2014.txt", "2015.txt"]}, None, 5)
    dead = f"{socket.gethostname()}:{2 ** 22 + os.getpid()}:dead"
    assert store.claim(dead, lease_seconds=300).id == job.id
    store.close()
    with TestClient(create_app(settings, job_settings=FAST_JOBS, cpu_workers=0)) as c:
        done = wait_done(c, f"/v1/tracks/jobs/{job.id}")
        assert done["status"] == "done" and done["attempts"] == 2
        assert_track(done["track"], EARLIER, LATER)
    store = JobStore(settings.db)
    try:
        assert store.get(job.id).completions == 1
    finally:
        store.close()


def test_openapi_documents_the_track_routes_and_their_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/tracks", "/v1/tracks/jobs", "/v1/tracks/jobs/{job_id}"} <= set(schema["paths"])
    body = schema["paths"]["/v1/tracks"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/TrackRequest"
    assert set(body["multipart/form-data"]["schema"]["properties"]) == {"earlier", "later"}
    assert set(schema["components"]["schemas"]["TrackRequest"]["properties"]) == {"earlier", "later"}
