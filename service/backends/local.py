"""The embedded model: llama.cpp in a worker process owned by this backend.

llama.cpp runs in ``service.backends.local_worker``, never in this process: a native
crash, an out-of-memory kill or a hung decode there ends one call with a
``BackendError`` that names the cause and the fix, and the next call starts a fresh
worker. The CLI, a batch and the HTTP server survive it.

Loading the GGUF file costs seconds, so one worker per (path, context, threads, GPU
layers) is started per process, on first use, and shared by every ``LocalBackend``
(``aclose`` leaves it running for the next backend; it ends with the process).
llama.cpp is neither thread-safe nor cheap: every call in this process runs on one
dedicated daemon thread, so calls are serialized (two at once on the same cores would
only make both slower) and the event loop stays free for the HTTP server. A call
cancelled while still queued never runs. The timeout (``REPORTSUM_TIMEOUT``) counts
from when the worker gets the request, not the time spent queued.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import importlib.util
import os
import queue
import threading
from pathlib import Path
from typing import Any

from service.backends.base import LLMRequest, LLMResponse
from service.backends.local_worker import FAKE_ENV, INSTALL_LOCAL, EngineError, Worker, WorkerConfig
from service.config import Settings
from service.errors import BackendError, ConfigError, TruncatedOutput

LLAMA_HINT = (
    f"the embedded model needs llama-cpp-python: `{INSTALL_LOCAL}` "
    "(it compiles llama.cpp, about 5 minutes on 2 cores); or point OPENAI_BASE_URL at "
    "an OpenAI-compatible endpoint"
)
# Starting a worker includes loading the model (mmap, seconds); never less than this.
MIN_LOAD_TIMEOUT = 120.0


class _SerialThread:
    """One daemon thread that runs submitted functions in order.

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so a CLI
    interrupted mid-call would wait for the decode; a daemon thread does not, and the
    atexit hook below ends the workers.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Any, *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((future, fn, args))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llama-worker-calls", daemon=True)
                self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                future.set_exception(exc)


_CALLS = _SerialThread()
_WORKERS: dict[WorkerConfig, Worker] = {}  # touched only on the _CALLS thread (and at exit)


def _close_all() -> None:
    while _WORKERS:
        _, worker = _WORKERS.popitem()
        try:
            worker.close(grace=2.0)
        except Exception:  # pragma: no cover - best effort at exit
            pass


atexit.register(_close_all)


def _forget_after_fork() -> None:
    # A forked child (a process pool, Ray's workers) inherits the parent's worker handles
    # but must never talk over the parent's pipes: it starts its own worker on first use.
    global _CALLS
    _WORKERS.clear()
    _CALLS = _SerialThread()


os.register_at_fork(after_in_child=_forget_after_fork)


def close_workers() -> None:
    """End every worker of this process (tests; the next call starts a fresh one)."""
    _CALLS.submit(_close_all).result()


def _require_llama_cpp() -> None:
    # find_spec, not import: this process never loads llama.cpp's native code.
    if os.environ.get(FAKE_ENV):
        return  # the worker runs the test double, which needs no llama.cpp
    try:
        found = importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"{LLAMA_HINT} (llama_cpp is not installed)")


def _usable_cpus() -> int:
    # The cores this process may run on (a container's cpuset), not the host's count.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


MIN_TOKENS_PER_SECOND = 4.0  # slower than this, a decode counts as hung


class LocalBackend:
    name = "local"

    def __init__(
        self,
        model_path: Path | None,
        *,
        model: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        timeout: float = 120.0,
        settings: Settings | None = None,
    ):
        # With a path: fail at construction, with the fix, not at the first call. Without
        # one (``lazy``): llama.cpp and the model file are needed only when a call is made.
        if model_path is not None:
            _require_llama_cpp()
        self._model_path = Path(model_path) if model_path is not None else None
        self._settings = settings
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _usable_cpus()
        self.n_gpu_layers = n_gpu_layers
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings, *, lazy: bool = False) -> LocalBackend:
        """The embedded model. ``lazy``: the digest will make no call (the learned labeller
        decides alone), so neither llama-cpp-python nor the 1.1 GB model file is required
        unless a call is made after all; then the same clear error is raised."""
        kwargs = dict(model=settings.resolved_model(), n_ctx=settings.local_ctx, n_threads=settings.local_threads,
                      n_gpu_layers=settings.local_gpu_layers, timeout=settings.timeout)
        if lazy:
            return cls(None, settings=settings, **kwargs)
        _require_llama_cpp()  # a missing extra is the likelier problem: say so first
        from service.modelstore import resolve_model_path

        return cls(resolve_model_path(settings), **kwargs)

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            _require_llama_cpp()
            from service.modelstore import resolve_model_path

            if self._settings is None:  # pragma: no cover - constructed without either
                raise ConfigError("the embedded model has neither a model path nor settings")
            self._model_path = Path(resolve_model_path(self._settings))
        return self._model_path

    @property
    def config(self) -> WorkerConfig:
        return WorkerConfig(str(self.model_path.resolve()), self.n_ctx, self.n_threads, self.n_gpu_layers)

    # ------------------------------------------------------------------ public

    async def complete(self, request: LLMRequest) -> LLMResponse:
        params = {
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "json_schema": request.json_schema,
            "context": request.context,  # for the worker's own logs; engines ignore it
        }
        try:
            result = await self.call("complete", params, context=request.context)
        except EngineError as exc:
            if exc.kind == "context_overflow":
                raise TruncatedOutput(
                    f"{request.context or 'request'}: prompt does not fit the {self.n_ctx}-token context "
                    f"of the local model ({exc}); send less text or raise REPORTSUM_LOCAL_CTX"
                ) from exc
            raise BackendError(f"local model failed: {exc}") from exc
        return LLMResponse(
            content=result["content"],
            finish_reason=result["finish_reason"],
            prompt_tokens=result["prompt_tokens"],
            completion_tokens=result["completion_tokens"],
        )

    async def call(self, method: str, params: dict[str, Any], *, context: str = "") -> dict[str, Any]:
        """Any worker method (``complete``, ``system_info``, ...): a dict in, a dict out.

        Raises ``EngineError`` when the engine refuses the request, ``BackendTimeout``
        when the worker hangs, ``BackendError`` when it dies (each kills or discards the
        worker: the next call starts a fresh one)."""
        self.model_path  # a lazy backend's first call: llama.cpp and the model, or the fix
        return await asyncio.wrap_future(_CALLS.submit(self._call_blocking, method, params, context))

    async def warm_up(self) -> None:
        """Start the worker (load the model) now rather than during the first request."""
        self.model_path
        await asyncio.wrap_future(_CALLS.submit(self._worker))

    def worker_pid(self) -> int | None:
        """The pid of this backend's worker, if one is running."""
        worker = _WORKERS.get(self.config)
        return worker.pid if worker is not None and worker.alive() else None

    async def aclose(self) -> None:
        # The worker stays up for the next backend in this process: loading is the
        # expensive part. It ends when the process exits.
        return None

    # ------------------------------------------------------------------ on the calls thread

    def _worker(self) -> Worker:
        config = self.config
        worker = _WORKERS.get(config)
        if worker is not None and worker.alive():
            return worker
        if worker is not None:  # died between calls (killed while idle)
            worker.kill()
        worker = Worker(config)
        try:
            worker.start(timeout=max(self.timeout, MIN_LOAD_TIMEOUT))
        except BaseException:
            _WORKERS.pop(config, None)
            raise
        _WORKERS[config] = worker
        return worker

    def call_timeout(self, params: dict[str, Any]) -> float:
        """The timeout, plus time for long replies: a chunk under the context strategy may
        ask for thousands of tokens, which a laptop CPU writes at 10-30 tokens a second.
        A hung decode is still caught (at MIN_TOKENS_PER_SECOND)."""
        return self.timeout + int(params.get("max_tokens") or 0) / MIN_TOKENS_PER_SECOND

    def _call_blocking(self, method: str, params: dict[str, Any], context: str) -> dict[str, Any]:
        worker = self._worker()
        try:
            return worker.call(method, params, self.call_timeout(params), during=context)
        except EngineError:
            raise  # the worker is fine; only this request failed
        except BaseException:
            # dead or hung (and killed): forget it, the next call starts a fresh one
            worker.kill()
            _WORKERS.pop(self.config, None)
            raise


def grammar_for_schema(schema: dict[str, Any]) -> Any:
    """The GBNF grammar of a JSON schema, built in this process.

    For benchmarks that drive ``llama_cpp`` directly (bench/local_speed.py); the backend
    itself builds grammars inside its worker."""
    import json

    import llama_cpp

    return llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema, sort_keys=True, ensure_ascii=False), verbose=False)
