"""Durable jobs: a SQLite job table and a bounded pool of asyncio workers.

A long report on the embedded model takes minutes, so ``POST /v1/jobs`` only records the
request and answers 202; workers run the pipeline later. The table is the source of truth,
so a restart loses no accepted job:

- **Claim.** A worker moves one job ``queued -> running`` with a single guarded
  ``UPDATE ... WHERE status = 'queued'``, raising ``attempts`` and stamping its ``owner``
  and a lease (``lease_until``) that a heartbeat keeps renewing. Two workers (or two
  processes on one database file) can never both claim a job.
- **Complete.** ``running -> done|failed`` is another guarded ``UPDATE ... WHERE status =
  'running' AND owner = ? AND attempts = ?``: a worker that lost its claim (its process
  was presumed dead and the job handed to another) cannot complete the job a second time.
  ``completions`` counts successful completions; it is 1 for every finished job.
- **Recover.** On start, and then every few seconds, running jobs whose owner is gone
  (a dead process on this host, or a lease that ran out) go back to ``queued``; after
  ``max_attempts`` interruptions a job fails instead of crashing the server forever.
  A graceful shutdown hands its running jobs back to the queue at once.
- **Idempotent results.** The runner goes through the digest cache, so a job re-run after a
  crash that happened after its digest was stored costs zero model calls.

The queue is bounded: ``submit`` refuses with ``QueueFull`` (HTTP 429 + ``Retry-After``)
when ``max_queued`` jobs are already waiting. SQLite calls run in worker threads, never on
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.errors import BackendError, BackendTimeout, InputError, ReplayMiss
from service.models import Digest

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
TERMINAL: frozenset[str] = frozenset({"done", "failed"})
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

ProgressFn = Callable[[int, int], None]
Runner = Callable[[str, dict[str, Any], ProgressFn], Awaitable[tuple[Digest, bool]]]
"""``runner(text, params, progress) -> (digest, served_from_cache)``; params as submitted."""


class JobSettings(BaseSettings):
    """Job-pool knobs (``REPORTSUM_JOB_*``), separate from the pipeline's ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="REPORTSUM_JOB_", extra="ignore")

    workers: int = Field(2, ge=1, le=256)  # jobs run at once by this process
    max_queued: int = Field(100, ge=1)  # waiting jobs before POST /v1/jobs answers 429
    lease_seconds: float = Field(30.0, gt=0)  # a claim not renewed for this long is presumed dead
    max_attempts: int = Field(3, ge=1)  # claims (interrupted runs) before a job is failed
    poll_seconds: float = Field(1.0, gt=0)  # idle workers look for jobs submitted by other processes


class QueueFull(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"job queue is full; retry after {retry_after} s")


@dataclass
class Job:
    id: str
    status: JobStatus
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    progress_done: int = 0
    progress_total: int = 0
    cached: bool | None = None
    title: str | None = None
    digest: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    completions: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def public(self, *, with_digest: bool = True) -> dict[str, Any]:
        """The job as ``GET /v1/jobs/{id}`` shows it."""
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "title": self.title,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.status == "done":
            out["cached"] = bool(self.cached)
            if with_digest:
                out["digest"] = self.digest
        if self.status == "failed":
            out["error"] = {"code": self.error_code, "message": self.error_message}
        return out


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    text           TEXT NOT NULL,
    params         TEXT NOT NULL,
    title          TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    owner          TEXT,
    lease_until    REAL,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    cached         INTEGER,
    digest         TEXT,
    error_code     TEXT,
    error_message  TEXT,
    completions    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status_seq ON jobs (status, seq);
"""

_JOB_COLUMNS = (
    "id, status, created_at, updated_at, started_at, finished_at, attempts, progress_done,"
    " progress_total, cached, title, error_code, error_message, completions"
)


@dataclass
class Claim:
    id: str
    attempts: int
    text: str
    params: dict[str, Any]


class JobStore:
    """The job table. Synchronous and thread-safe (one connection behind a lock, WAL mode,
    ``busy_timeout`` so several processes may share the file)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash (SIGKILL);
        # only a power loss may roll back the last few.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"job database {self.path} has schema {version}, newer than this reportsum")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Any:
        """An IMMEDIATE transaction: takes the write lock up front, so a read-then-write
        (count then insert) cannot interleave with another process's."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writes ----------------------------------------------------------------------

    def insert(self, text: str, params: dict[str, Any], title: str | None, max_queued: int) -> Job | None:
        """Queue a job, or return None when ``max_queued`` jobs are already waiting."""
        job_id = uuid.uuid4().hex
        now = time.time()
        with self._tx() as conn:
            (queued,) = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()
            if queued >= max_queued:
                return None
            conn.execute(
                "INSERT INTO jobs (id, status, text, params, title, created_at, updated_at)"
                " VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, text, json.dumps(params, ensure_ascii=False), title, now, now),
            )
        return Job(id=job_id, status="queued", created_at=now, updated_at=now, title=title)

    def claim(self, owner: str, lease_seconds: float) -> Claim | None:
        """Move the oldest queued job to running for ``owner``; None when none is queued."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, owner = ?,"
                " lease_until = ?, started_at = ?, updated_at = ?, progress_done = 0, progress_total = 0"
                " WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1)"
                " AND status = 'queued'"
                " RETURNING id, attempts, text, params",
                (owner, now + lease_seconds, now, now),
            ).fetchone()
        if row is None:
            return None
        return Claim(id=row[0], attempts=row[1], text=row[2], params=json.loads(row[3]))

    def progress(self, claim: Claim, owner: str, done: int, total: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET progress_done = ?, progress_total = ?, updated_at = ?"
                " WHERE id = ? AND status = 'running' AND owner = ? AND attempts = ?",
                (done, total, time.time(), claim.id, owner, claim.attempts),
            )

    def finish(
        self,
        claim: Claim,
        owner: str,
        *,
        digest: Digest | None = None,
        cached: bool = False,
        error: tuple[str, str] | None = None,
    ) -> bool:
        """running -> done (with ``digest``) or failed (with ``error``); False when this
        owner no longer holds the claim (the job was handed to someone else)."""
        now = time.time()
        with self._tx() as conn:
            if digest is not None:
                cur = conn.execute(
                    "UPDATE jobs SET status = 'done', digest = ?, cached = ?, finished_at = ?,"
                    " updated_at = ?, progress_done = MAX(progress_done, progress_total),"
                    " owner = NULL, lease_until = NULL, completions = completions + 1"
                    " WHERE id = ? AND status = 'running' AND owner = ? AND attempts = ?",
                    (digest.model_dump_json(), int(cached), now, now, claim.id, owner, claim.attempts),
                )
            else:
                code, message = error or ("internal", "job failed")
                cur = conn.execute(
                    "UPDATE jobs SET status = 'failed', error_code = ?, error_message = ?,"
                    " finished_at = ?, updated_at = ?, owner = NULL, lease_until = NULL"
                    " WHERE id = ? AND status = 'running' AND owner = ? AND attempts = ?",
                    (code, message, now, now, claim.id, owner, claim.attempts),
                )
        return cur.rowcount == 1

    def renew(self, owner: str, lease_seconds: float) -> None:
        """Heartbeat: extend the lease of every job ``owner`` runs."""
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET lease_until = ? WHERE owner = ? AND status = 'running'",
                (time.time() + lease_seconds, owner),
            )

    def release(self, owner: str) -> int:
        """Graceful shutdown: hand ``owner``'s running jobs back to the queue, not counting
        the interrupted attempt."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'queued', owner = NULL, lease_until = NULL,"
                " attempts = MAX(attempts - 1, 0), updated_at = ?"
                " WHERE owner = ? AND status = 'running'",
                (time.time(), owner),
            )
        return cur.rowcount

    def recover(self, is_dead: Callable[[str], bool], max_attempts: int) -> tuple[int, int]:
        """Re-queue running jobs whose owner is dead or whose lease ran out; fail those
        already interrupted ``max_attempts`` times. Returns (requeued, failed)."""
        now = time.time()
        requeued = failed = 0
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, owner, lease_until, attempts FROM jobs WHERE status = 'running'"
            ).fetchall()
            for job_id, owner, lease_until, attempts in rows:
                if not ((lease_until or 0) < now or is_dead(owner or "")):
                    continue
                if attempts >= max_attempts:
                    conn.execute(
                        "UPDATE jobs SET status = 'failed', error_code = 'interrupted',"
                        " error_message = ?, finished_at = ?, updated_at = ?, owner = NULL, lease_until = NULL"
                        " WHERE id = ? AND status = 'running' AND owner IS ?",
                        (f"the server stopped during each of {attempts} attempts", now, now, job_id, owner),
                    )
                    failed += 1
                else:
                    conn.execute(
                        "UPDATE jobs SET status = 'queued', owner = NULL, lease_until = NULL, updated_at = ?"
                        " WHERE id = ? AND status = 'running' AND owner IS ?",
                        (now, job_id, owner),
                    )
                    requeued += 1
        return requeued, failed

    # -- reads -----------------------------------------------------------------------

    def get(self, job_id: str, *, with_digest: bool = True) -> Job | None:
        cols = _JOB_COLUMNS + (", digest" if with_digest else "")
        with self._lock:
            row = self._conn.execute(f"SELECT {cols} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        job = Job(
            id=row[0],
            status=row[1],
            created_at=row[2],
            updated_at=row[3],
            started_at=row[4],
            finished_at=row[5],
            attempts=row[6],
            progress_done=row[7],
            progress_total=row[8],
            cached=None if row[9] is None else bool(row[9]),
            title=row[10],
            error_code=row[11],
            error_message=row[12],
            completions=row[13],
        )
        if with_digest and row[14] is not None:
            job.digest = json.loads(row[14])
        return job

    def text(self, job_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT text FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row[0]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = {s: 0 for s in ("queued", "running", "done", "failed")}
        out.update(dict(rows))
        return out

    def mean_run_seconds(self, last: int = 20) -> float | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT AVG(finished_at - started_at) FROM (SELECT finished_at, started_at FROM jobs"
                " WHERE status = 'done' AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?)",
                (last,),
            ).fetchone()
        return row[0] if row and row[0] is not None else None


def _process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _owner_is_dead(owner: str, me: str) -> bool:
    """True when ``owner`` was a process on this host that no longer runs.

    Owners on other hosts, or whose pid now belongs to another live process, are left to
    their lease running out.
    """
    try:
        host, pid_s, _ = owner.split(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != me.split(":", 1)[0]:
        return False
    if owner != me and pid == os.getpid():
        return True  # an earlier process that had our pid: it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def error_of(exc: BaseException) -> tuple[str, str]:
    """(code, message) for a failed job; the same codes the HTTP API uses."""
    if isinstance(exc, InputError):
        return "invalid_input", str(exc)
    if isinstance(exc, BackendTimeout):
        return "backend_timeout", str(exc) or "the model endpoint timed out"
    if isinstance(exc, BackendError):
        return "backend_error", str(exc) or "the model endpoint failed"
    if isinstance(exc, ReplayMiss):
        return "replay_miss", str(exc)
    return "internal", f"internal error ({type(exc).__name__})"


@dataclass
class _Watchers:
    events: set[asyncio.Event] = field(default_factory=set)


class JobService:
    """The store plus ``workers`` asyncio tasks running claimed jobs through ``runner``."""

    def __init__(self, store: JobStore, runner: Runner, settings: JobSettings | None = None):
        self.store = store
        self.runner = runner
        self.settings = settings or JobSettings()
        self.owner = _process_owner()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._watchers: dict[str, _Watchers] = {}
        # Progress of the jobs this process runs, fresher than the throttled DB copy.
        self._live: dict[str, tuple[int, int]] = {}
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        requeued, failed = await asyncio.to_thread(self._recover)
        if requeued or failed:
            log.warning("jobs: re-queued %d interrupted job(s), failed %d after too many attempts", requeued, failed)
        self._tasks = [
            asyncio.create_task(self._worker(i), name=f"job-worker-{i}") for i in range(self.settings.workers)
        ]
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="job-housekeeping"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        released = await asyncio.to_thread(self.store.release, self.owner)
        if released:
            log.info("jobs: handed %d running job(s) back to the queue", released)

    def _recover(self) -> tuple[int, int]:
        return self.store.recover(lambda owner: _owner_is_dead(owner, self.owner), self.settings.max_attempts)

    # -- API ---------------------------------------------------------------------------

    async def submit(self, text: str, params: dict[str, Any], title: str | None = None) -> Job:
        job = await asyncio.to_thread(self.store.insert, text, params, title, self.settings.max_queued)
        if job is None:
            raise QueueFull(await asyncio.to_thread(self._retry_after))
        self._wake.set()
        return job

    async def get(self, job_id: str, *, with_digest: bool = True) -> Job | None:
        job = await asyncio.to_thread(self.store.get, job_id, with_digest=with_digest)
        if job is not None and job.status == "running" and job.id in self._live:
            job.progress_done, job.progress_total = self._live[job.id]
        return job

    async def text(self, job_id: str) -> str | None:
        return await asyncio.to_thread(self.store.text, job_id)

    async def counts(self) -> dict[str, int]:
        return await asyncio.to_thread(self.store.counts)

    async def watch(self, job_id: str, *, heartbeat: float = 15.0) -> AsyncIterator[Job | None]:
        """Yield the job each time it changes (and ``None`` as a keep-alive after
        ``heartbeat`` quiet seconds) until it is done or failed. Changes made by this
        process wake the watcher at once; those of another process are polled."""
        watchers = self._watchers.setdefault(job_id, _Watchers())
        event = asyncio.Event()
        watchers.events.add(event)
        try:
            last: tuple[Any, ...] | None = None
            quiet = 0.0
            while True:
                event.clear()
                job = await self.get(job_id, with_digest=False)
                if job is None:
                    return
                state = (job.status, job.progress_done, job.progress_total, job.attempts)
                if state != last:
                    last, quiet = state, 0.0
                    yield job
                    if job.terminal:
                        return
                elif quiet >= heartbeat:
                    quiet = 0.0
                    yield None
                wait = self.settings.poll_seconds
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), wait)
                quiet += wait
        finally:
            watchers.events.discard(event)
            if not watchers.events:
                self._watchers.pop(job_id, None)

    def _notify(self, job_id: str) -> None:
        watchers = self._watchers.get(job_id)
        if watchers:
            for event in watchers.events:
                event.set()

    def _retry_after(self) -> int:
        """Seconds until a queue slot is likely free: one job's mean run time over the
        pool's width, at least 1 s."""
        mean = self.store.mean_run_seconds() or 5.0
        return max(1, min(300, math.ceil(mean / self.settings.workers)))

    # -- workers -------------------------------------------------------------------------

    async def _worker(self, index: int) -> None:
        while True:
            # Clear before claiming: a job submitted after the claim's read sets it again.
            self._wake.clear()
            try:
                claim = await asyncio.to_thread(self.store.claim, self.owner, self.settings.lease_seconds)
            except sqlite3.Error:
                log.exception("jobs: claim failed")
                claim = None
            if claim is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
                continue
            # Another worker may find more queued jobs: pass the wake-up on.
            self._wake.set()
            await self._run(claim)

    async def _run(self, claim: Claim) -> None:
        self._live[claim.id] = (0, 0)
        self._notify(claim.id)
        loop = asyncio.get_running_loop()
        last_write = 0.0

        def on_progress(done: int, total: int) -> None:
            nonlocal last_write
            if claim.id not in self._live:
                return  # a late report after the job ended
            self._live[claim.id] = (done, total)
            self._notify(claim.id)
            now = time.monotonic()
            # The DB copy serves other processes and restarts: throttled, off the loop.
            if now - last_write >= 0.5 or done >= total:
                last_write = now
                loop.run_in_executor(None, self._write_progress, claim, done, total)

        def progress(done: int, total: int) -> None:
            # The pipeline may report from a worker thread (embedded model): hop to the loop.
            loop.call_soon_threadsafe(on_progress, done, total)

        digest: Digest | None = None
        cached = False
        error: tuple[str, str] | None = None
        try:
            digest, cached = await self.runner(claim.text, claim.params, progress)
        except asyncio.CancelledError:
            # Shutdown: stop() hands the job back to the queue.
            self._live.pop(claim.id, None)
            raise
        except Exception as exc:  # every failure of one job ends that job, not the worker
            error = error_of(exc)
            if error[0] == "internal":
                log.exception("jobs: job %s failed", claim.id)
            else:
                log.warning("jobs: job %s failed: %s", claim.id, exc)
        try:
            ok = await asyncio.to_thread(
                self.store.finish, claim, self.owner, digest=digest, cached=cached, error=error
            )
            if not ok:
                log.warning(
                    "jobs: job %s was handed to another worker; result of attempt %d dropped", claim.id, claim.attempts
                )
        finally:
            self._live.pop(claim.id, None)
            self._notify(claim.id)

    def _write_progress(self, claim: Claim, done: int, total: int) -> None:
        try:
            self.store.progress(claim, self.owner, done, total)
        except sqlite3.Error as exc:  # progress is advisory
            log.warning("jobs: progress of %s not stored: %s", claim.id, exc)

    async def _housekeeping(self) -> None:
        """Renew our leases and recover jobs of owners that died (other processes)."""
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.to_thread(self.store.renew, self.owner, self.settings.lease_seconds)
                requeued, failed = await asyncio.to_thread(self._recover)
            except sqlite3.Error:
                log.exception("jobs: housekeeping failed")
                continue
            if requeued or failed:
                log.warning("jobs: re-queued %d job(s) of a dead owner, failed %d", requeued, failed)
                self._wake.set()
