"""A restart loses no accepted job, and none completes twice.

``reportsum serve`` runs as a subprocess with a slow fake model endpoint and two workers;
six jobs are submitted and the server is SIGKILLed while some are done, some running and
some queued. Started again on the same database, it must finish every job exactly once:
status done, ``completions`` 1, the interrupted ones re-run (attempts 2), the finished
ones untouched. The same holds for ``serve --workers 2`` (two server processes, one job
worker each, over the one job store).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import model_calls, short_text
from tests.api.serving import ServerProcess, clean_env
from tests.doubles.fake_openai import FakeOpenAIServer


def db_rows(db: Path) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {r["id"]: dict(r) for r in conn.execute(
            "SELECT id, status, attempts, completions, finished_at, digest, text, owner FROM jobs")}
    finally:
        conn.close()


# A server process imports the pipeline and starts its CPU pool before it answers: on a
# busy 2-core machine, with two of them, that can take a while.
START_S = 90.0


def test_sigkill_with_jobs_queued_and_running_then_restart(tmp_path: Path) -> None:
    kill_and_restart(tmp_path, args=(), job_workers=2)


def test_sigkill_of_a_server_with_two_worker_processes_then_restart(tmp_path: Path) -> None:
    kill_and_restart(tmp_path, args=("--workers", "2"), job_workers=1)


def kill_and_restart(tmp_path: Path, args: tuple[str, ...], job_workers: int) -> None:
    """Two jobs run at the kill (``job_workers`` per server process)."""
    # Eight sentences the cues cannot label: eight model calls, two rounds of 0.6 s a job.
    texts = ["".join(short_text(100 * j + i) for i in range(8)) for j in range(6)]
    assert all(model_calls(t) >= 4 for t in texts), "the jobs must wait on the model to be caught running"
    db, cache = tmp_path / "jobs.sqlite3", tmp_path / "cache.sqlite3"
    with FakeOpenAIServer(latency=0.6) as slow:
        env = clean_env(
            REPORTSUM_BACKEND="openai", OPENAI_BASE_URL=slow.base_url, OPENAI_API_KEY="sk-test",
            REPORTSUM_MODEL="fake-model", REPORTSUM_MAX_RETRIES="0", REPORTSUM_QUIET="1",
            REPORTSUM_DB=str(db), REPORTSUM_CACHE=str(cache),
            REPORTSUM_JOB_WORKERS=str(job_workers), REPORTSUM_JOB_POLL_SECONDS="0.1",
        )
        log = tmp_path / "server.log"
        server = ServerProcess(env, log, args=args).start(timeout=START_S)
        try:
            ids = []
            for text in texts:
                res = httpx.post(f"{server.base_url}/v1/jobs", json={"text": text}, timeout=10)
                assert res.status_code == 202, res.text
                ids.append(res.json()["id"])

            # Kill once a job is done, two run and the rest wait.
            deadline = time.monotonic() + 60
            while True:
                # one snapshot of the table: six HTTP polls in a row may straddle a change
                statuses = [row["status"] for row in db_rows(db).values()]
                if statuses.count("done") >= 1 and statuses.count("running") == 2 and "queued" in statuses:
                    break
                assert time.monotonic() < deadline, f"never saw done+running+queued: {statuses}"
                time.sleep(0.05)
            server.kill()
        finally:
            server.stop()

        before = db_rows(db)
        by_status = {s: [i for i in ids if before[i]["status"] == s] for s in ("queued", "running", "done")}
        assert by_status["running"] and by_status["queued"] and by_status["done"], by_status
        # an owner is host:pid:nonce; with --workers each process runs one job
        pids = {before[i]["owner"].split(":")[1] for i in by_status["running"]}
        assert len(pids) == (2 if "--workers" in args else 1), pids
        calls_at_kill = len(slow.requests)

        server = ServerProcess(env, log, args=args).start(timeout=START_S)
        try:
            deadline = time.monotonic() + 90
            while True:
                jobs = [httpx.get(f"{server.base_url}/v1/jobs/{i}", timeout=10).json() for i in ids]
                if all(j["status"] in ("done", "failed") for j in jobs):
                    break
                assert time.monotonic() < deadline, [j["status"] for j in jobs]
                time.sleep(0.1)
            # Give a wrongly re-queued job the chance to run (and complete) a second time.
            time.sleep(1.0)
        finally:
            left = server.stop()
        assert not left, f"processes of the server outlived it: {left}"

    after = db_rows(db)
    assert len(after) == len(ids)
    for job_id, text in zip(ids, texts, strict=True):
        row = after[job_id]
        assert row["status"] == "done", (job_id, row["status"])
        assert row["completions"] == 1, (job_id, row["completions"])
        assert row["text"] == text
    for job_id in by_status["done"]:  # finished before the kill: never run again
        assert after[job_id]["attempts"] == 1
        assert after[job_id]["finished_at"] == before[job_id]["finished_at"]
        assert after[job_id]["digest"] == before[job_id]["digest"]
    for job_id in by_status["running"]:  # interrupted: claimed once more
        assert after[job_id]["attempts"] == 2
    for job_id in by_status["queued"]:
        assert after[job_id]["attempts"] == 1
    assert len(slow.requests) > calls_at_kill  # the second server did the remaining work

    # One digest per distinct text in the cache: no duplicate results.
    conn = sqlite3.connect(cache)
    try:
        assert conn.execute("SELECT COUNT(*) FROM digests").fetchone()[0] == len(set(texts))
    finally:
        conn.close()
    assert "re-queued 2 interrupted job(s)" in log.read_text()
