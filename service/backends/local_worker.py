"""The embedded model's worker process: llama.cpp runs here, never in the caller.

Why a separate process: llama.cpp is native code. A segfault (its AMX kernels on
virtualized Xeons, llama.cpp issue 20824), an illegal instruction (a build for a CPU
this one is not), the kernel's out-of-memory killer or a decode that never returns
would otherwise take the whole CLI, batch or HTTP server down with it. Out of process,
each of those ends one call with a ``BackendError`` that names the cause and the fix,
and the next call starts a fresh worker.

Two halves live in this module because they share the protocol:

- the worker (``main``, run as ``python -m service.backends.local_worker``): loads the
  model once, then answers requests one at a time until its stdin closes;
- the caller's handle (``Worker``): starts the worker, sends one request, waits for the
  reply with a deadline, and turns a dead or hung worker into an error.

Protocol: JSON lines. The worker's stdout is redirected to stderr at start-up so that
nothing llama.cpp (or anything else) prints can corrupt the protocol; replies go to a
private duplicate of the original stdout.

    caller -> {"model_path": ..., "n_ctx": ..., "n_threads": ..., "n_gpu_layers": ...}
    worker -> {"ready": true, "pid": ..., "engine": ..., "load_seconds": ...}
            | {"ready": false, "error": {"kind": "load", "message": ...}}
    caller -> {"id": 1, "method": "complete", "params": {...}}
    worker -> {"id": 1, "ok": true, "result": {...}}
            | {"id": 1, "ok": false, "error": {"kind": ..., "message": ...}}

A method is any public method of the engine listed in its ``METHODS``: a dict of JSON
in, a dict of JSON out. ``complete`` is the chat completion the pipeline uses; another
(next-token log-probabilities, embeddings) is one more engine method, with nothing to
change here or in the caller.

``REPORTSUM_LOCAL_FAKE`` swaps llama.cpp for the test double in
``tests/doubles/local_engine.py`` (tests only: it runs the real process, pipes and
signals without the 1.1 GB model).
"""

from __future__ import annotations

import faulthandler
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from service.errors import BackendError, BackendTimeout, ConfigError

FAKE_ENV = "REPORTSUM_LOCAL_FAKE"

# How to build llama-cpp-python: `python3 -m service.buildflags` prints the fastest flags
# that are safe on this CPU (no -march=native, never the AMX kernels). The README's
# install command, the crash messages and `reportsum doctor` all quote these constants
# (a unit test checks the README and .ci/run against them).
LLAMA_VERSION = "0.3.36"
BUILDFLAGS = "$(python3 -m service.buildflags)"
INSTALL_LOCAL = f"CMAKE_ARGS=\"{BUILDFLAGS}\" pip install -e '.[local]'"
# --no-cache-dir: pip reuses a cached wheel whatever CMAKE_ARGS says.
REBUILD_COMMAND = (
    f'CMAKE_ARGS="{BUILDFLAGS}" pip install --force-reinstall --no-cache-dir llama-cpp-python=={LLAMA_VERSION}'
)

_SIGNAL_CAUSES = {
    signal.SIGSEGV: "a crash inside llama.cpp (on Xeons with AMX under a hypervisor, its AMX kernels do this)",
    signal.SIGBUS: "a crash inside llama.cpp (the model file may have changed or been truncated under it)",
    signal.SIGABRT: "llama.cpp aborted (a failed assertion inside it)",
    signal.SIGFPE: "a crash inside llama.cpp (arithmetic fault)",
    signal.SIGILL: "llama.cpp was built for instructions this CPU lacks (e.g. AVX-512 or -march=native on another CPU)",
    signal.SIGKILL: "it was killed from outside, most often by the kernel's out-of-memory killer (see `dmesg`)",
}
_OOM_FIX = "free memory, lower REPORTSUM_LOCAL_CTX, or use a smaller model (REPORTSUM_LOCAL_MODEL=/path/to/smaller.gguf)"
_REBUILD_FIX = f"rebuild llama-cpp-python for this CPU, without the AMX kernels: {REBUILD_COMMAND}"


# =========================================================================== errors


class EngineError(Exception):
    """A request the engine refused or failed; ``kind`` travels over the protocol."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def death_message(returncode: int | None, *, pid: int | None, during: str, stderr_tail: str = "") -> str:
    """One sentence a user can act on: what killed the worker, and what fixes it."""
    if returncode is not None and returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        cause = _SIGNAL_CAUSES.get(sig, "it was stopped by a signal")
        fix = _OOM_FIX if sig == signal.SIGKILL else _REBUILD_FIX
        how = f"died with {name}"
    else:
        how = f"exited with status {returncode}" if returncode is not None else "stopped answering"
        cause = "it failed outside a request"
        fix = "see the worker's last output below"
    msg = (
        f"the embedded model worker (pid {pid}) {how} during {during}: {cause}; fix: {fix}; "
        "diagnose with `reportsum doctor`. The next call starts a fresh worker."
    )
    if stderr_tail:
        msg += f" Worker's last output: {stderr_tail}"
    return msg


# =========================================================================== worker side


class LlamaEngine:
    """llama.cpp through llama-cpp-python; lives in the worker process only.

    llama-cpp-python keeps the KV cache of the previous call and re-evaluates only what
    follows the longest common token prefix, so callers that keep the system prompt
    byte-identical across calls pay for it once.

    A JSON schema is enforced with a GBNF grammar compiled once per distinct schema:
    unlike ``response_format``, the converter does not silently fall back to "any JSON"
    when the schema has a construct it does not know.
    """

    METHODS = ("complete", "system_info")
    name = "llama.cpp"

    def __init__(self, model_path: str, *, n_ctx: int, n_threads: int, n_gpu_layers: int):
        import llama_cpp  # only here: the caller's process never loads native code

        self._llama_cpp = llama_cpp
        self.n_ctx = n_ctx
        self._grammars: dict[str, Any] = {}
        try:
            self.llm = llama_cpp.Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                # llama-cpp-python would otherwise use every core for prompt eval
                n_threads_batch=n_threads,
                n_gpu_layers=n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError("load", f"llama.cpp could not load the model {model_path}: {exc}") from exc

    def grammar(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                grammar = self._llama_cpp.LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as exc:  # the converter raises bare Exceptions
                raise EngineError("bad_request", f"llama.cpp cannot turn this JSON schema into a grammar: {exc}") from exc
            self._grammars[key] = grammar
        return grammar

    def complete(self, params: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "messages": params["messages"],
            "max_tokens": params.get("max_tokens", 512),
            "temperature": params.get("temperature", 0.0),
        }
        if params.get("json_schema") is not None:
            kwargs["grammar"] = self.grammar(params["json_schema"])
        try:
            result = self.llm.create_chat_completion(**kwargs)
        except ValueError as exc:
            # "Requested tokens (N) exceed context window of M"
            if "context window" in str(exc):
                raise EngineError("context_overflow", str(exc)) from exc
            raise EngineError("failed", str(exc)) from exc
        except RuntimeError as exc:
            raise EngineError("failed", str(exc)) from exc
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return {
            "content": choice["message"].get("content") or "",
            "finish_reason": choice.get("finish_reason") or "stop",
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
        }

    def system_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self._llama_cpp.llama_print_system_info()
        return {"system_info": info.decode() if isinstance(info, bytes) else str(info)}

    def close(self) -> None:
        self.llm.close()


def make_engine(config: dict[str, Any]) -> Any:
    spec = os.environ.get(FAKE_ENV)
    if spec:
        # tests/ is not installed: find it next to the package (a source checkout).
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests.doubles.local_engine import FakeEngine

        return FakeEngine(spec, config)
    return LlamaEngine(
        config["model_path"],
        n_ctx=int(config["n_ctx"]),
        n_threads=int(config["n_threads"]),
        n_gpu_layers=int(config["n_gpu_layers"]),
    )


def serve(engine: Any, requests: Any, replies: Any) -> None:
    """Answer requests (JSON lines) until the caller closes the pipe."""
    for line in requests:
        if not line.strip():
            continue
        msg = json.loads(line)
        reply: dict[str, Any] = {"id": msg.get("id")}
        method = msg.get("method")
        try:
            if method not in engine.METHODS:
                raise EngineError("bad_request", f"the worker has no method {method!r} (it has {', '.join(engine.METHODS)})")
            reply.update(ok=True, result=getattr(engine, method)(msg.get("params") or {}))
        except EngineError as exc:
            reply.update(ok=False, error={"kind": exc.kind, "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
            reply.update(ok=False, error={"kind": "failed", "message": f"{type(exc).__name__}: {exc}"})
        replies.write(json.dumps(reply, ensure_ascii=False) + "\n")
        replies.flush()


def main() -> None:
    # On a native crash, print the Python stack (which llama.cpp call) to stderr; the
    # caller quotes the tail of it. The signal is re-raised, so the exit status still names it.
    faulthandler.enable()
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever else writes to stdout (llama.cpp's C code) lands on stderr
    requests = sys.stdin
    config = json.loads(requests.readline() or "{}")
    started = time.perf_counter()
    try:
        engine = make_engine(config)
    except EngineError as exc:
        replies.write(json.dumps({"ready": False, "error": {"kind": exc.kind, "message": str(exc)}}) + "\n")
        replies.flush()
        return
    except ImportError as exc:
        replies.write(json.dumps({"ready": False, "error": {"kind": "import", "message": str(exc)}}) + "\n")
        replies.flush()
        return
    ready = {"ready": True, "pid": os.getpid(), "engine": engine.name, "load_seconds": round(time.perf_counter() - started, 3)}
    replies.write(json.dumps(ready) + "\n")
    replies.flush()
    try:
        serve(engine, requests, replies)
    finally:
        engine.close()


# =========================================================================== caller side


@dataclass(frozen=True)
class WorkerConfig:
    model_path: str
    n_ctx: int
    n_threads: int
    n_gpu_layers: int


class Worker:
    """One worker process and the blocking calls to it (use from one thread at a time)."""

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.engine = ""
        self.load_seconds = 0.0
        self._stderr: Any = None
        self._buffer = b""
        self._next_id = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float) -> None:
        """Start the worker and wait until its model is loaded (``timeout`` seconds)."""
        # stderr to a file, not a pipe: nobody drains a pipe while a decode runs, and
        # after a crash its tail is what says where it happened.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.backends.local_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            # Ctrl-C in a terminal goes to the caller, which ends the worker itself.
            start_new_session=True,
        )
        self._send(asdict(self.config), during="start-up")
        ready = self._receive(timeout, during="loading the model")
        if not ready.get("ready"):
            self.kill()
            error = ready.get("error") or {}
            if error.get("kind") == "import":
                from service.backends.local import LLAMA_HINT

                raise ConfigError(f"{LLAMA_HINT} ({error.get('message')})")
            raise ConfigError(f"{error.get('message', 'the model did not load')}; check it with `reportsum doctor`")
        self.engine = ready.get("engine", "")
        self.load_seconds = float(ready.get("load_seconds", 0.0))

    def call(self, method: str, params: dict[str, Any], timeout: float, *, during: str = "") -> dict[str, Any]:
        """Send one request and wait for its reply. Raises ``EngineError`` for a refusal,
        ``BackendTimeout`` (the worker is killed) or ``BackendError`` (it died)."""
        self._next_id += 1
        request_id = self._next_id
        what = f"a {method} call" + (f" ({during})" if during else "")
        self._send({"id": request_id, "method": method, "params": params}, during=what)
        reply = self._receive(timeout, during=what)
        if reply.get("id") != request_id:  # never expected: one request at a time
            self.kill()
            raise BackendError(f"the embedded model worker answered request {reply.get('id')} to request {request_id}")
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise EngineError(error.get("kind", "failed"), error.get("message", "the local model failed"))
        return reply["result"]

    def close(self, grace: float = 5.0) -> None:
        """Close stdin (the worker exits after its current request), then kill if it lingers."""
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._cleanup()

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._cleanup()

    # ------------------------------------------------------------------ internals

    def _cleanup(self) -> None:
        assert self.proc is not None
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def _send(self, message: dict[str, Any], *, during: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            raise self._died(during) from None

    def _receive(self, timeout: float, *, during: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pid = self.pid
                self.kill()
                raise BackendTimeout(
                    f"the embedded model worker (pid {pid}) did not finish {during} within {timeout:g} s "
                    "and was killed (a hung or very slow decode); fix: raise REPORTSUM_TIMEOUT (--timeout), "
                    "send less text, or check the build with `reportsum doctor`. The next call starts a fresh worker."
                )
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # EOF: the worker is gone
                raise self._died(during)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _died(self, during: str) -> BackendError:
        assert self.proc is not None
        try:
            returncode = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its stdout but lives on: end it
            self.kill()
            returncode = self.proc.returncode
        pid = self.pid
        self._cleanup()
        return BackendError(death_message(returncode, pid=pid, during=during, stderr_tail=self._stderr_tail()))

    def _stderr_tail(self, lines: int = 4, limit: int = 500) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 16384))
            text = self._stderr.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
        fatal = [i for i, ln in enumerate(kept) if ln.startswith("Fatal Python error")]
        if fatal:
            # faulthandler's report, innermost frame first: the error line and the frames
            # nearest the crash say where it happened (e.g. llama_cpp ... in decode).
            start = fatal[-1]
            frames = [ln for ln in kept[start + 1:] if ln.startswith("File ")][:3]
            kept = [kept[start], *frames]
        else:
            kept = kept[-lines:]
        return " | ".join(kept)[:limit]


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the engines (and the test
    # double) raise service.backends.local_worker.EngineError, which must be the class
    # that serve() catches.
    from service.backends.local_worker import main as _main

    _main()
