"""``reportsum batch DIR -o OUT --ray [ADDRESS]``: the same batch, its pipeline on a Ray cluster.

Division of labour
    The driver (the machine where the command runs, normally the head node) does all the
    I/O exactly as ``service.batch`` does, through the same code: it walks DIR, decodes
    each article, skips those whose ``OUT/<rel>.json`` already holds the same key, consults
    the digest cache, writes every output file, ``index.jsonl`` and ``items.csv``, and draws
    the progress bar. Only the pipeline (cleaning, segmentation, model calls) runs on the
    cluster, in a pool of Ray actors; each actor holds one backend (one HTTP client, or one
    embedded model) for all the articles it gets. Articles travel to the actors as text and
    come back as digests, so DIR and OUT need exist only on the driver's machine and no
    worker ever writes a file: a result is written once, by the driver, when it arrives.

Concurrency
    ``--concurrency C`` is the endpoint's limit for the whole cluster: it is split into
    shares over the actors (C // A, the remainder one each), and each actor bounds its
    model calls with an ``asyncio.Semaphore`` of its share, so the shares sum to C. The
    driver keeps ``2 x C`` articles in flight, like the single-machine batch, and sends
    each to the actor with the fewest articles per share of its limit. Actors default to
    one per CPU of the cluster (``num_cpus=1`` each, spread over the nodes), at most C; with
    the embedded model (``--backend local``) one per node; ``REPORTSUM_RAY_WORKERS`` sets
    another number.

Failures
    An article that fails inside a worker (input error, endpoint error) comes back as a
    failure with the same error text plain ``batch`` records. A worker process that dies
    (killed, out of memory, node lost) is restarted by Ray (``max_restarts=-1``) and the
    articles it was working on are re-sent to it (``max_task_retries``), possibly on
    another node; an article that outlives its retries is recorded as failed and a rerun
    tries it again. Model calls the dead worker had made are lost (the endpoint did the
    work; ``index.jsonl`` counts only the attempt that produced the digest).

Compatibility
    Every node must run the same reportsum (``pip install 'reportsum[ray]'``): the digest
    key includes the pipeline and prompt versions, and the driver refuses workers whose
    versions differ from its own. ``REPORTSUM_*`` and ``OPENAI_*`` variables of the driver
    are passed to the workers (``runtime_env``), so prompts and endpoint settings match.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.batch import ARTICLES_PER_SLOT, _Batch, _error_text, check_args, execute
from service.cache import DigestCache, open_cache, prompt_version
from service.config import Settings
from service.errors import ConfigError
from service.models import Digest

log = logging.getLogger(__name__)

WORKER_PREFIX = "reportsum-batch-"  # actor names: reportsum-batch-<run>-<i> (visible in `ray list actors`)
MAX_TASK_RETRIES = 3  # re-sends of one article after its worker died; then it is recorded as failed
START_TIMEOUT_S = float(os.environ.get("REPORTSUM_RAY_START_TIMEOUT", "300"))  # placing and starting the pool
FORWARDED_ENV = ("REPORTSUM_", "OPENAI_")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray: pip install 'reportsum[ray]' ({exc})") from exc
    return ray


# --------------------------------------------------------------------------- the worker (an actor)


@dataclass(frozen=True)
class Spent:
    """Model calls and tokens an article used before it failed (``BackendError.usage``)."""

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Outcome:
    digest: Digest | None = None
    error: str | None = None  # already formatted as plain batch would record it
    spent: Spent | None = None


class BatchWorker:
    """One backend for many articles; at most ``concurrency`` model calls in flight.

    Wrapped by ``ray.remote`` at run time (so this module imports without Ray). A backend
    that cannot be built is reported by ``identity`` instead of killing the actor, so the
    driver fails with the reason rather than Ray restarting the actor in a loop.
    """

    def __init__(self, settings: Settings, concurrency: int):
        from service.backends import make_backend

        self.settings = settings
        self.limiter = asyncio.Semaphore(max(1, concurrency))
        self.backend = None
        self.error: str | None = None
        try:
            self.backend = make_backend(settings)
        except Exception as exc:  # noqa: BLE001 - reported to the driver by identity()
            self.error = _error_text(exc)

    async def identity(self) -> dict[str, Any]:
        from service import __version__

        return {
            "error": self.error,
            "backend": getattr(self.backend, "name", None),
            "model": getattr(self.backend, "model", None),
            "prompt_version": prompt_version(),
            "pipeline": __version__,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }

    async def summarize(self, text: str, rel: str) -> Outcome:
        from service.pipeline import summarize

        try:
            digest = await summarize(text, self.backend, self.settings, source=rel, limiter=self.limiter)
        except Exception as exc:  # noqa: BLE001 - one bad article must not stop the batch
            usage = getattr(exc, "usage", None)
            spent = None if usage is None else Spent(
                getattr(usage, "llm_calls", 0), getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0)
            )
            return Outcome(error=_error_text(exc), spent=spent)
        return Outcome(digest=digest)


class WorkerFailed(Exception):
    """An article that failed on a worker; ``described`` is the text plain batch records."""

    def __init__(self, described: str, usage: Spent | None = None):
        super().__init__(described)
        self.described = described
        self.usage = usage


@dataclass
class _Slot:
    actor: Any
    share: int
    in_flight: int = 0


@dataclass(frozen=True)
class RemoteBackend:
    """What the driver needs of the workers' backend: its name and model (for the key)."""

    name: str
    model: str


def shares(concurrency: int, workers: int) -> list[int]:
    """``concurrency`` split over ``workers`` (>= 1 each; sums to ``concurrency``)."""
    workers = max(1, min(workers, concurrency))
    base, extra = divmod(concurrency, workers)
    return [base + (i < extra) for i in range(workers)]


def default_workers(ray: Any, settings: Settings, concurrency: int) -> int:
    """``REPORTSUM_RAY_WORKERS``, else one per CPU of the cluster; with the embedded model
    one per node (each worker loads its own 1.1 GB copy)."""
    configured = os.environ.get("REPORTSUM_RAY_WORKERS")
    if configured:
        try:
            n = int(configured)
        except ValueError:
            raise ConfigError(f"REPORTSUM_RAY_WORKERS must be a whole number, got {configured!r}") from None
    elif settings.resolved_backend() == "local":
        n = sum(1 for node in ray.nodes() if node.get("Alive"))
    else:
        n = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(n, concurrency))


# --------------------------------------------------------------------------- the driver


class RayBatch(_Batch):
    """``service.batch``'s run with ``digest`` sent to an actor pool; the rest is inherited."""

    def __init__(self, *args: Any, workers: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.n_workers = workers
        self.slots: list[_Slot] = []

    async def open(self) -> None:
        ray = _import_ray()
        concurrency = max(1, int(self.settings.concurrency))
        n = self.n_workers or default_workers(ray, self.settings, concurrency)
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
        remote = ray.remote(BatchWorker)
        run = uuid.uuid4().hex[:8]
        self.cache: DigestCache | None = open_cache(self.settings)
        for i, share in enumerate(shares(concurrency, n)):
            actor = remote.options(
                name=f"{WORKER_PREFIX}{run}-{i}",
                num_cpus=1,
                scheduling_strategy="SPREAD",  # over the nodes: their CPUs, NICs and memory
                max_restarts=-1,  # a dead worker comes back (elsewhere, if its node is gone)
                max_task_retries=MAX_TASK_RETRIES,  # ...and gets back the articles it held
                max_concurrency=ARTICLES_PER_SLOT * share + 1,  # +1: room for identity()
                runtime_env={"env_vars": env} if env else None,
            ).remote(self.settings, share)
            self.slots.append(_Slot(actor, share))
        try:
            idents = await asyncio.wait_for(
                asyncio.gather(*(s.actor.identity.remote() for s in self.slots)), START_TIMEOUT_S
            )
            self.backend = self._check(idents)
        except asyncio.TimeoutError:
            await self.close()
            raise ConfigError(
                f"Ray did not start {len(self.slots)} reportsum workers (1 CPU each) in {START_TIMEOUT_S:.0f}s;"
                f" cluster resources: {ray.cluster_resources()} (set REPORTSUM_RAY_WORKERS lower?)"
            ) from None
        except BaseException:
            # _Batch.run calls close() only once open() has returned
            await self.close()
            raise

    def _check(self, idents: list[dict[str, Any]]) -> RemoteBackend:
        from service import __version__

        for ident in idents:
            if ident["error"]:
                raise ConfigError(f"a Ray worker on {ident['host']} could not start its backend: {ident['error']}")
            mine = (__version__, prompt_version())
            theirs = (ident["pipeline"], ident["prompt_version"])
            if theirs != mine:
                raise ConfigError(
                    f"the Ray worker on {ident['host']} runs reportsum {theirs[0]} with prompts {theirs[1]},"
                    f" this driver {mine[0]} with {mine[1]}: install the same reportsum on every node"
                )
        names = {(i["backend"], i["model"]) for i in idents}
        if len(names) != 1:
            raise ConfigError(f"Ray workers disagree on backend and model: {sorted(names)}")
        (name, model), = names
        return RemoteBackend(name, model)

    async def close(self) -> None:
        ray = _import_ray()
        if self.cache is not None:
            self.cache.close()
        for slot in self.slots:
            with contextlib.suppress(Exception):
                ray.kill(slot.actor, no_restart=True)
        self.slots = []

    async def digest(self, text: str, rel: str, key: str) -> tuple[Digest, bool]:
        # The cache lives with the driver (one SQLite file, as for plain batch): a hit
        # never leaves this process, and workers need no disk.
        hit = self._cache_get(key)
        if hit is not None:
            return hit, True
        slot = min(self.slots, key=lambda s: s.in_flight / s.share)
        slot.in_flight += 1
        try:
            outcome: Outcome = await slot.actor.summarize.remote(text, rel)
        except _ray_errors() as exc:
            # the worker died more often than MAX_TASK_RETRIES while holding this article
            first = (str(exc).strip().splitlines() or [""])[0]
            raise WorkerFailed(f"Ray worker lost: {type(exc).__name__}: {first}") from exc
        finally:
            slot.in_flight -= 1
        if outcome.digest is None:
            raise WorkerFailed(outcome.error or "failed on a Ray worker", outcome.spent)
        self._cache_put(key, outcome.digest, rel)
        return outcome.digest, False

    # The same tolerance as cache.summarize_cached: the cache is an optimisation.
    def _cache_get(self, key: str) -> Digest | None:
        if self.cache is None or self.settings.no_cache:
            return None
        try:
            return self.cache.get(key)
        except (sqlite3.Error, OSError) as exc:
            log.warning("digest cache %s unusable, continuing without it: %s", self.cache.path, exc)
            self.cache = None
            return None

    def _cache_put(self, key: str, digest: Digest, rel: str) -> None:
        if self.cache is None or self.settings.no_cache:
            return
        try:
            self.cache.put(key, digest)
        except (sqlite3.Error, OSError) as exc:
            log.warning("digest cache %s: could not store %s: %s", self.cache.path, rel, exc)


def _ray_errors() -> tuple[type[BaseException], ...]:
    from ray.exceptions import RayError

    return (RayError,)


# --------------------------------------------------------------------------- entry point


def connect(address: str | None, *, quiet: bool) -> bool:
    """Join the cluster at ``address`` (``auto``, ``HOST:6379``), or start a local one when
    None; returns whether this call initialised Ray (and so should shut it down)."""
    ray = _import_ray()
    if ray.is_initialized():  # an embedding program (or a test) already connected
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": not quiet}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(include_dashboard=False, **options)  # a private local cluster: no UI to serve
    return True


def run_batch_ray(directory: Path, out: Path, settings: Settings, *, formats: set[str],
                  shard: tuple[int, int] | None, show_progress: bool, address: str | None = None,
                  workers: int | None = None) -> int:
    """``run_batch`` with the pipeline on a Ray cluster; same outputs, same exit codes."""
    directory, out, formats = check_args(directory, out, formats, shard)
    started = connect(address, quiet=settings.quiet)
    try:
        return execute(RayBatch(directory, out, settings, formats, shard, show_progress, workers=workers))
    finally:
        if started:
            _import_ray().shutdown()


__all__ = ["run_batch_ray", "RayBatch", "BatchWorker", "shares", "connect", "WORKER_PREFIX"]
