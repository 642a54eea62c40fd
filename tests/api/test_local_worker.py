"""``reportsum serve`` on the local backend keeps answering when the model's worker dies.

The server is a real uvicorn on loopback; the local backend's worker is a real process
running the test-double engine (``tests/doubles/local_engine.py``); the test kills that
worker with SIGKILL (as the out-of-memory killer would) or SIGSEGV while it is inside a
call.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api import create_app
from service.backends import local
from service.backends.local_worker import FAKE_ENV
from service.config import Settings
from service.jobs import JobSettings
from tests.api.serving import thread_server
from tests.doubles.local_engine import events, texts_calling_the_model, wait_for_call_in_flight

FAST_JOBS = JobSettings(workers=1, max_queued=10, poll_seconds=0.05)


@pytest.fixture
def local_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    log = tmp_path / "engine.log"
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF fake")
    monkeypatch.setenv(FAKE_ENV, f"echo;delay=1.5;log={log}")  # inherited by the worker
    settings = Settings(backend="local", local_model=model, cache=tmp_path / "c.sqlite3",
                        db=tmp_path / "jobs.sqlite3", timeout=30.0, quiet=True,
                        assist_margin=1.0, strategy="learned")  # every unit goes to the model, as tests.api.conftest.model_calls counts
    with thread_server(create_app(settings, job_settings=FAST_JOBS)) as base:
        yield base, log
    local.close_workers()


def wait_job(base: str, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", timeout=5).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise TimeoutError(job)


def test_job_fails_with_the_cause_when_the_worker_is_killed_and_the_server_stays_up(local_server) -> None:
    base, log = local_server
    first, second = texts_calling_the_model(2)
    res = httpx.post(f"{base}/v1/jobs", json={"text": first}, timeout=5)
    assert res.status_code == 202
    call = wait_for_call_in_flight(log)
    os.kill(call["pid"], signal.SIGKILL)

    job = wait_job(base, res.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "backend_error"
    message = job["error"]["message"]
    assert "SIGKILL" in message and "out-of-memory" in message and f"pid {call['pid']}" in message

    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    ok = httpx.post(f"{base}/v1/summaries", json={"text": second}, timeout=60)
    assert ok.status_code == 200, ok.text
    assert ok.json()["meta"]["backend"] == "local" and ok.json()["meta"]["llm_calls"] > 0
    assert len({e["pid"] for e in events(log) if e["event"] == "start"}) == 2  # a fresh worker answered


def test_sync_request_gets_502_with_the_cause_and_the_next_one_succeeds(local_server) -> None:
    base, log = local_server
    (text,) = texts_calling_the_model(1)
    killer = threading.Thread(target=lambda: os.kill(wait_for_call_in_flight(log)["pid"], signal.SIGSEGV))
    killer.start()
    res = httpx.post(f"{base}/v1/summaries", json={"text": text}, timeout=60)
    killer.join(10)
    assert res.status_code == 502
    assert res.json()["error"]["code"] == "backend_error"
    assert "SIGSEGV" in res.json()["error"]["message"] and "CMAKE_ARGS" in res.json()["error"]["message"]
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    again = httpx.post(f"{base}/v1/summaries", json={"text": text}, timeout=60)
    assert again.status_code == 200 and again.json()["meta"]["backend"] == "local"
