"""SQLite digest cache shared by ``summarize``, ``batch`` and the HTTP API.

A digest is a pure function of the decoded text, the backend, the model, the prompt version
and a few options (chunk budget, pipeline version), so it is stored under
``digest_key(...)``, a sha256 of exactly those. Identical articles are served under any
file name; editing a prompt (new ``PROMPT_VERSION``), switching model or backend, or
changing an option misses the cache instead of returning a stale digest.

Several processes may use one cache file at once (``batch --shard`` on a job array, the
API's workers): the database runs in WAL mode (readers never block the writer) with a
``busy_timeout`` so concurrent writers wait for each other instead of failing. The cache
is an optimisation: if it cannot be opened, read or written, ``summarize_cached`` logs a
warning and carries on without it.

Location: ``settings.cache`` (``REPORTSUM_CACHE``; default
``<user cache dir>/reportsum/digests.sqlite3``). ``--no-cache`` (``settings.no_cache``)
bypasses it for reads and writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.models import Digest

if TYPE_CHECKING:
    from service.backends.base import Backend
    from service.config import Settings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000


def content_sha256(text: str) -> str:
    """sha256 of the decoded text (UTF-8), the content part of every key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_key(text: str, *, model: str, backend: str, prompt_version: str, options: dict[str, Any]) -> str:
    """Stable sha256 of everything that determines a digest."""
    payload = {
        "v": SCHEMA_VERSION,
        "content_sha256": content_sha256(text),
        "model": model,
        "backend": backend,
        "prompt_version": prompt_version,
        "options": options,
    }
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def digest_options(settings: Settings, backend_name: str = "") -> dict[str, Any]:
    """The settings (besides model, backend and prompt version) that change a digest."""
    from service import __version__

    from service.labeller import version_of

    # the labeller's parameters decide labels as much as the prompt does
    return {"chunk_tokens": settings.chunk_tokens, "pipeline": __version__,
            "labeller": version_of(settings.labeller), "assist_margin": settings.assist_margin,  # None: by backend
            "strategy": settings.resolved_strategy(backend_name)}


def prompt_version() -> str:
    from service.prompts import PROMPT_VERSION

    return PROMPT_VERSION


def key_for(text: str, backend: Backend, settings: Settings) -> str:
    """``digest_key`` for this text under this backend and these settings."""
    return digest_key(
        text,
        model=backend.model,
        backend=backend.name,
        prompt_version=prompt_version(),
        options=digest_options(settings, backend.name),
    )


class DigestCache:
    """A key -> Digest table in one SQLite file (WAL, busy_timeout; multi-process safe).

    One connection per instance, guarded by a lock, so an instance may be shared by the
    threads of one process (the API's thread pool) and by coroutines of one event loop.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS digests ("
                    " key TEXT PRIMARY KEY, digest TEXT NOT NULL, created REAL NOT NULL)"
                )
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def get(self, key: str) -> Digest | None:
        with self._lock:
            row = self._connect().execute("SELECT digest FROM digests WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return Digest.model_validate_json(row[0])
        except ValueError:  # written by an incompatible version: treat as a miss
            log.warning("digest cache %s: unreadable entry %s ignored", self.path, key[:12])
            return None

    def put(self, key: str, digest: Digest) -> None:
        blob = digest.model_dump_json()
        with self._lock:
            self._connect().execute(
                "INSERT OR REPLACE INTO digests (key, digest, created) VALUES (?, ?, ?)",
                (key, blob, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._connect().execute("SELECT COUNT(*) FROM digests").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cache(settings: Settings) -> DigestCache | None:
    """The cache these settings ask for (``None`` under ``--no-cache``)."""
    return None if settings.no_cache else DigestCache(settings.cache)


async def summarize_cached(
    text: str,
    backend: Backend,
    settings: Settings,
    *,
    cache: DigestCache | None,
    source: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    limiter: asyncio.Semaphore | None = None,
    key: str | None = None,
) -> tuple[Digest, bool]:
    """``pipeline.summarize`` through the cache; returns ``(digest, served_from_cache)``.

    ``key`` may be passed when the caller already computed ``key_for(text, ...)``.
    A cached digest is returned exactly as it was stored (its ``meta`` describes the run
    that produced it).
    """
    from service.pipeline import summarize

    use_cache = cache is not None and not settings.no_cache
    if use_cache:
        assert cache is not None
        key = key or key_for(text, backend, settings)
        try:
            # in a thread: a read may wait out another process's write (busy_timeout, up to 30 s),
            # and the event loop it would stall carries every other article's model calls
            hit = await asyncio.to_thread(cache.get, key)
        except (sqlite3.Error, OSError) as exc:
            log.warning("digest cache %s unusable, continuing without it: %s", cache.path, exc)
            use_cache = False
        else:
            if hit is not None:
                return hit, True
    digest = await summarize(text, backend, settings, source=source, progress=progress, limiter=limiter)
    if use_cache and digest.meta.failed_chunks:
        use_cache = False  # a chunk fell back after a failed call: the next run asks again
    if use_cache:
        assert cache is not None and key is not None
        try:
            await asyncio.to_thread(cache.put, key, digest)
        except (sqlite3.Error, OSError) as exc:
            log.warning("digest cache %s: could not store %s: %s", cache.path, source or key[:12], exc)
    return digest, False
