"""The embedded model: llama.cpp in this process, through llama-cpp-python.

Loading the GGUF file costs seconds, so one ``Llama`` per (path, context, threads, GPU
layers) is loaded per process and shared by every ``LocalBackend``. llama.cpp is neither
thread-safe nor cheap: each call runs on one dedicated worker thread (the event loop stays
free for the HTTP server) and holds one process-wide lock, so calls are serialized
(running two at once on the same cores would only make both slower). A single-worker
executor rather than ``asyncio.to_thread``: queued calls wait without occupying the
default pool's threads, and a call cancelled while still queued never runs.

llama-cpp-python keeps the KV cache of the previous call and re-evaluates only what
follows the longest common token prefix, so callers that keep the system prompt
byte-identical across calls pay for it once.

A JSON schema is enforced with a GBNF grammar (sampling can only produce text the
schema allows). The grammar is compiled from the schema once and cached: the
conversion is pure Python and, unlike ``response_format``, does not silently fall back
to "any JSON" when the schema has a construct the converter does not know.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.backends.base import LLMRequest, LLMResponse
from service.config import Settings
from service.errors import BackendError, ConfigError, TruncatedOutput

if TYPE_CHECKING:  # pragma: no cover
    from llama_cpp import Llama, LlamaGrammar

log = logging.getLogger(__name__)

LLAMA_HINT = (
    "the embedded model needs llama-cpp-python: `pip install -e '.[local]'` "
    "(it compiles llama.cpp, about 5 minutes on 2 cores); or point OPENAI_BASE_URL at "
    "an OpenAI-compatible endpoint"
)

# One lock for everything llama.cpp: loading, and every call on any loaded model.
_LLAMA_LOCK = threading.Lock()
_MODELS: dict[tuple[str, int, int, int], Llama] = {}
_GRAMMARS: dict[str, LlamaGrammar] = {}
_GRAMMARS_LOCK = threading.Lock()
_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _close_all() -> None:
    # Free the models while llama_cpp is still importable: left to the garbage collector at
    # interpreter exit, Llama.__del__ runs after its module is torn down and prints a
    # "TypeError: 'NoneType' object is not callable" traceback on every CLI run.
    with _LLAMA_LOCK:
        while _MODELS:
            _, llm = _MODELS.popitem()
            try:
                llm.close()
            except Exception:  # pragma: no cover - best effort at exit
                pass


atexit.register(_close_all)


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        return _EXECUTOR


async def _in_llama_thread(fn: Any, *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args))


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(f"{LLAMA_HINT} ({exc})") from exc
    return llama_cpp


def load_model(path: Path, *, n_ctx: int, n_threads: int, n_gpu_layers: int) -> Llama:
    """The shared ``Llama`` for these parameters, loading it on first use."""
    llama_cpp = _import_llama_cpp()
    key = (str(Path(path).resolve()), n_ctx, n_threads, n_gpu_layers)
    with _LLAMA_LOCK:
        llm = _MODELS.get(key)
        if llm is None:
            started = time.perf_counter()
            try:
                llm = llama_cpp.Llama(
                    model_path=key[0],
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    # llama-cpp-python would otherwise use every core for prompt eval
                    n_threads_batch=n_threads,
                    n_gpu_layers=n_gpu_layers,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ConfigError(f"llama.cpp could not load the model {key[0]}: {exc}") from exc
            log.info("loaded %s in %.1f s", key[0], time.perf_counter() - started)
            _MODELS[key] = llm
        return llm


def grammar_for_schema(schema: dict[str, Any]) -> LlamaGrammar:
    """The GBNF grammar of a JSON schema, compiled once per distinct schema."""
    llama_cpp = _import_llama_cpp()
    key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
    with _GRAMMARS_LOCK:
        grammar = _GRAMMARS.get(key)
        if grammar is None:
            try:
                grammar = llama_cpp.LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as exc:  # the converter raises bare Exceptions
                raise BackendError(
                    f"llama.cpp cannot turn this JSON schema into a grammar: {exc}"
                ) from exc
            _GRAMMARS[key] = grammar
        return grammar


def _usable_cpus() -> int:
    # The cores this process may run on (a container's cpuset), not the host's count.
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LocalBackend:
    name = "local"

    def __init__(
        self,
        model_path: Path,
        *,
        model: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
    ):
        _import_llama_cpp()  # fail at construction, with the fix, not at the first call
        self.model_path = Path(model_path)
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _usable_cpus()
        self.n_gpu_layers = n_gpu_layers

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        _import_llama_cpp()  # a missing extra is the likelier problem: say so first
        from service.modelstore import resolve_model_path

        return cls(
            resolve_model_path(settings),
            model=settings.resolved_model(),
            n_ctx=settings.local_ctx,
            n_threads=settings.local_threads,
            n_gpu_layers=settings.local_gpu_layers,
        )

    def llama(self) -> Llama:
        """Load (or fetch the already loaded) model; blocking, call from a thread."""
        return load_model(
            self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers
        )

    async def warm_up(self) -> None:
        """Load the model now rather than during the first request."""
        await _in_llama_thread(self.llama)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return await _in_llama_thread(self._complete_blocking, request)

    def _complete_blocking(self, request: LLMRequest) -> LLMResponse:
        llm = self.llama()
        kwargs: dict[str, Any] = {
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.json_schema is not None:
            kwargs["grammar"] = grammar_for_schema(request.json_schema)
        with _LLAMA_LOCK:
            try:
                result = llm.create_chat_completion(**kwargs)
            except ValueError as exc:
                # "Requested tokens (N) exceed context window of M"
                if "context window" in str(exc):
                    raise TruncatedOutput(
                        f"{request.context or 'request'}: prompt does not fit the "
                        f"{self.n_ctx}-token context of the local model ({exc}); "
                        "send less text or raise REPORTSUM_LOCAL_CTX"
                    ) from exc
                raise BackendError(f"local model failed: {exc}") from exc
            except RuntimeError as exc:
                raise BackendError(f"local model failed: {exc}") from exc
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return LLMResponse(
            content=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    async def aclose(self) -> None:
        # The model stays loaded for the next backend in this process: loading is the
        # expensive part, and the memory is mmapped from the cache file.
        return None
