"""The process pool that takes the pipeline's CPU work off the event loop.

Cleaning, segmentation, features and the labeller (``pipeline.prepare``) are pure Python:
on the event loop they stall every other article's model calls and every other request
(``/healthz`` included), and in a thread they still hold the GIL. So ``batch`` and
``serve`` run them in worker processes, while the model calls stay on the loop.

- Start method: ``forkserver`` where there is one (Linux, macOS), else ``spawn``; never a
  plain ``fork`` of a process that runs threads (uvicorn, SQLite helpers, the SDK). The
  fork server preloads ``service.pipeline``, so a new worker starts in milliseconds.
- Each worker loads the labeller once (``initializer``), ignores Ctrl-C (the parent handles
  it and shuts the pool down) and exits by itself if the process that made the pool dies
  without shutting it down (SIGKILL), so no worker outlives its server or batch.
- Starting a worker waits for the fork server's imports (seconds, the first time): the
  server starts them up front (``warm``, from a thread), and ``pipeline`` submits work from a
  thread, so neither blocks the event loop.
- A worker that dies (the OOM killer) breaks a ``ProcessPoolExecutor`` for good; ``CpuPool``
  fails the documents it held and starts a fresh pool for the next ones.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

PARENT_POLL_S = 1.0


def cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class CpuPool(Executor):
    """A process pool for ``pipeline.prepare`` that replaces itself when a worker dies."""

    def __init__(self, workers: int, labeller: Path | None):
        self.workers = workers
        self.labeller = labeller
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["service.pipeline"])
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(str(self.labeller) if self.labeller else None,))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(fn, *args, **kwargs)

    def warm(self) -> None:
        """Start every worker now and wait until each has loaded the labeller (blocking:
        call it from a thread)."""
        for f in [self.submit(_ready) for _ in range(self.workers)]:
            f.result()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def start_pool(workers: int | None = None, labeller: Path | None = None) -> CpuPool:
    """A pool of ``workers`` processes (default: one per core) ready for ``pipeline.prepare``.

    Its workers start on ``warm()`` or with the first documents; shut it down with
    ``pool.shutdown(cancel_futures=True)`` when the batch or the server ends.
    """
    return CpuPool(max(1, workers or cores()), labeller)


def _ready() -> int:
    return os.getpid()


def _init_worker(labeller: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    from service import pipeline

    pipeline.cached_labeller(Path(labeller) if labeller else None)


def exit_with_parent() -> None:
    """End this process (at once, no cleanup) within a second of its parent ending.

    A pool worker of a process that died without shutting its pool down (SIGKILL, OOM)
    would wait for work forever, and a ``serve --workers`` worker would go on holding the
    socket: each leaves instead (a forkserver's children see it end with the process that
    started it). Unfinished jobs go back to the queue when the server next starts: their
    owner is dead. The parent's pid is not polled: a killed parent that nobody has reaped
    yet still answers ``kill(pid, 0)``, but its children are re-parented at once."""
    parent = os.getppid()
    threading.Thread(target=_watch, args=(parent,), name="exit-with-parent", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


__all__ = ["CpuPool", "cores", "exit_with_parent", "start_pool"]
