"""The process pool that takes the pipeline's CPU work off the event loop.

Cleaning, segmentation, features and the labeller (``pipeline.prepare``) are pure Python:
on the event loop they stall every other article's model calls and every other request
(``/healthz`` included), and in a thread they still hold the GIL. So ``batch`` and
``serve`` run them in worker processes, while the model calls stay on the loop.

- Start method: ``forkserver`` where there is one (Linux, macOS), else ``spawn``; never a
  plain ``fork`` of a process that runs threads (uvicorn, SQLite helpers, the SDK). The
  fork server preloads ``service.pipeline`` and ``service.preload`` (the shipped labeller and
  the tokenizer's table, read once there), so a new worker starts in milliseconds with both.
- Each worker loads the labeller once (``initializer``), ignores Ctrl-C (the parent handles
  it and shuts the pool down) and exits by itself if the process that made the pool dies
  without shutting it down (SIGKILL), so no worker outlives its server or batch.
- Starting a worker waits for the fork server's imports (seconds, the first time): the
  server starts them up front (``warm``, from a thread), and ``pipeline`` submits work from a
  thread, so neither blocks the event loop.
- A worker that dies (the OOM killer) breaks a ``ProcessPoolExecutor`` for good; ``CpuPool``
  fails the documents it held and starts a fresh pool for the next ones.
- Batch start (``inline_while_starting``): the workers need a second or two to start (the
  fork server imports the pipeline, each worker loads the labeller and the tokenizer) while
  the batch process has all of it loaded already. Until every worker is ready, documents are
  prepared one at a time by a thread of the batch process, so model calls begin at once; the
  documents still queued when the workers are ready go to them. ``serve`` warms its pool
  before it takes requests and never prepares in its own process.
"""

from __future__ import annotations

import collections
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

    def __init__(self, workers: int, labeller: Path | None, *, inline_while_starting: bool = False):
        self.workers = workers
        self.labeller = labeller
        self._pool = self._start()
        # inline_while_starting: work submitted before the workers are ready waits here, and a
        # thread of this process takes it one item at a time until they are
        self._starting = inline_while_starting
        self._waiting: collections.deque[tuple[Future[Any], Callable[..., Any], tuple, dict]] = collections.deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = threading.Event()
        self.inline_done = 0  # items this process prepared itself while the workers started

    def _start(self) -> ProcessPoolExecutor:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["service.pipeline", "service.preload"])
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(str(self.labeller) if self.labeller else None,))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._starting:
                return self._wait_for_start(fn, args, kwargs)
        return self._submit(fn, *args, **kwargs)

    def _submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(fn, *args, **kwargs)

    def _wait_for_start(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Future[Any]:
        """Queue one item while the workers start (called holding ``_lock``); the first item
        starts the workers and the thread that prepares items here meanwhile."""
        future: Future[Any] = Future()
        self._waiting.append((future, fn, args, kwargs))
        if not self._threads:
            for target, name in ((self._start_workers, "cpupool-start"), (self._run_inline, "cpupool-inline")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def _start_workers(self) -> None:
        try:
            self.warm()
        except Exception:  # noqa: BLE001 - a pool that cannot start fails each item it is given
            pass
        with self._lock:
            self._starting = False
            waiting, self._waiting = list(self._waiting), collections.deque()
        for future, fn, args, kwargs in waiting:
            if future.set_running_or_notify_cancel():
                _chain(self._submit_or_fail(fn, args, kwargs), future)
        self._started.set()

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block until the workers have started and work goes to them (``inline_while_starting``)."""
        return self._started.wait(timeout)

    def _submit_or_fail(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Future[Any]:
        try:
            return self._submit(fn, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a shut-down pool: the item fails, the caller sees why
            failed: Future[Any] = Future()
            failed.set_exception(exc)
            return failed

    def _run_inline(self) -> None:
        while True:
            with self._lock:
                if not self._starting or not self._waiting:
                    if not self._starting:
                        return
                    item = None
                else:
                    item = self._waiting.popleft()
            if item is None:
                time.sleep(0.01)  # the workers are still starting and nothing waits
                continue
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, as the pool would
                future.set_exception(exc)
            else:
                self.inline_done += 1
                future.set_result(result)

    def warm(self) -> None:
        """Start every worker now and wait until each has loaded the labeller (blocking:
        call it from a thread)."""
        for f in [self._submit(_ready) for _ in range(self.workers)]:
            f.result()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            with self._lock:
                waiting, self._waiting = list(self._waiting), collections.deque()
            for future, *_ in waiting:
                if future.cancel():
                    future.set_running_or_notify_cancel()  # wakes concurrent.futures.wait() too
        elif wait:
            for thread in self._threads:  # what waits for the workers reaches them before they stop
                thread.join()
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            for thread in self._threads:
                thread.join()


def _chain(source: Future[Any], target: Future[Any]) -> None:
    """Settle ``target`` (already running) as ``source`` settles."""
    def settle(done: Future[Any]) -> None:
        if done.cancelled():
            target.set_exception(BrokenProcessPool("the pool was shut down before this item ran"))
        elif done.exception() is not None:
            target.set_exception(done.exception())
        else:
            target.set_result(done.result())

    source.add_done_callback(settle)


def start_pool(workers: int | None = None, labeller: Path | None = None, *,
               inline_while_starting: bool = False) -> CpuPool:
    """A pool of ``workers`` processes (default: one per core) ready for ``pipeline.prepare``.

    Its workers start on ``warm()`` or with the first documents; shut it down with
    ``pool.shutdown(cancel_futures=True)`` when the batch or the server ends. With
    ``inline_while_starting`` this process prepares documents itself until they are ready.
    """
    return CpuPool(max(1, workers or cores()), labeller, inline_while_starting=inline_while_starting)


def _ready() -> int:
    return os.getpid()


def _init_worker(labeller: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    from service import pipeline

    # both are in memory already when the fork server preloaded them (service.preload)
    pipeline.cached_labeller(Path(labeller) if labeller else None)
    from service.chunk import count_tokens

    count_tokens("")  # the tokenizer's table (~0.4 s): read before the first document, not during it


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
