"""LocalBackend without llama.cpp.

Two seams: the engine that runs inside the worker is tested in this process with a fake
``llama_cpp`` module; the worker process itself is real (a subprocess, its pipes, real
signals) and runs the test-double engine of ``tests/doubles/local_engine.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from service.backends import local
from service.backends.base import LLMRequest
from service.backends.local import MIN_TOKENS_PER_SECOND
from service.backends.local_worker import (
    FAKE_ENV,
    INSTALL_LOCAL,
    REBUILD_COMMAND,
    EngineError,
    LlamaEngine,
    death_message,
)
from service.errors import BackendError, BackendTimeout, ConfigError, TruncatedOutput
from tests.doubles.local_engine import events, wait_for_call_in_flight


class FakeLlama:
    instances = 0

    def __init__(self, model_path, **params):
        FakeLlama.instances += 1
        self.model_path = model_path
        self.params = params
        self.calls = []

    def create_chat_completion(self, **kwargs):
        self.calls.append(kwargs)
        if "overflow" in kwargs["messages"][-1]["content"]:
            raise ValueError("Requested tokens (5000) exceed context window of 4096")
        return {
            "choices": [{"message": {"content": '{"label": "计划"}'}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 42, "completion_tokens": 6},
        }


class FakeGrammar:
    built = 0

    def __init__(self, text):
        self.text = text

    @classmethod
    def from_json_schema(cls, schema, verbose=False):
        cls.built += 1
        return cls(schema)


@pytest.fixture
def fake_llama(monkeypatch):
    module = types.ModuleType("llama_cpp")
    module.Llama = FakeLlama
    module.LlamaGrammar = FakeGrammar
    module.llama_print_system_info = lambda: b"AVX2 = 1 | AMX_INT8 = 0"
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    FakeLlama.instances = FakeGrammar.built = 0
    return module


SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["计划", "成绩"]}}, "required": ["label"]}


def request(text="句子：要加快推进。", schema=SCHEMA, context="a.txt sentence 1"):
    return LLMRequest(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": text}],
                      json_schema=schema, max_tokens=16, context=context)


def params(text="句子：要加快推进。", schema=SCHEMA):
    return {"messages": request(text).messages, "max_tokens": 16, "temperature": 0.0, "json_schema": schema}


# ---------------------------------------------------------------- the engine (in the worker)


def test_missing_llama_cpp_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[local\]'") as err:
        local.LocalBackend("x.gguf", model="m")
    assert INSTALL_LOCAL in str(err.value)  # the fix builds for this CPU, not a bare pip install


def test_engine_maps_reply_and_usage(fake_llama, tmp_path):
    engine = LlamaEngine(str(tmp_path / "m.gguf"), n_ctx=2048, n_threads=3, n_gpu_layers=0)
    reply = engine.complete(params())
    assert reply == {"content": '{"label": "计划"}', "finish_reason": "stop", "prompt_tokens": 42, "completion_tokens": 6}
    assert engine.llm.params["n_ctx"] == 2048 and engine.llm.params["n_threads"] == 3
    assert engine.llm.params["n_threads_batch"] == 3
    assert isinstance(engine.llm.calls[0]["grammar"], FakeGrammar)
    assert "response_format" not in engine.llm.calls[0]


def test_engine_loads_once_and_caches_grammar(fake_llama, tmp_path):
    engine = LlamaEngine(str(tmp_path / "m.gguf"), n_ctx=2048, n_threads=2, n_gpu_layers=0)
    for _ in range(4):
        engine.complete(params())
    engine.complete(params(schema=None))
    assert FakeLlama.instances == 1
    assert FakeGrammar.built == 1
    assert "grammar" not in engine.llm.calls[-1]  # no schema: plain completion


def test_engine_context_overflow_is_its_own_kind(fake_llama, tmp_path):
    engine = LlamaEngine(str(tmp_path / "m.gguf"), n_ctx=2048, n_threads=2, n_gpu_layers=0)
    with pytest.raises(EngineError) as err:
        engine.complete(params("overflow"))
    assert err.value.kind == "context_overflow"


def test_death_messages_name_cause_and_fix():
    segv = death_message(-signal.SIGSEGV, pid=7, during="a complete call")
    assert "pid 7" in segv and "SIGSEGV" in segv and REBUILD_COMMAND in segv and "reportsum doctor" in segv
    ill = death_message(-signal.SIGILL, pid=7, during="x")
    assert "SIGILL" in ill and "instructions this CPU lacks" in ill and REBUILD_COMMAND in ill
    oom = death_message(-signal.SIGKILL, pid=7, during="x")
    assert "out-of-memory" in oom and "REPORTSUM_LOCAL_CTX" in oom and "CMAKE_ARGS" not in oom
    assert "exited with status 3" in death_message(3, pid=7, during="x", stderr_tail="boom")
    assert "boom" in death_message(3, pid=7, during="x", stderr_tail="boom")


# ---------------------------------------------------------------- the worker process (real)


@pytest.fixture
def fake_worker(monkeypatch, tmp_path):
    """Point the worker at the test-double engine; returns (configure(spec) -> backend, log)."""
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF fake")
    log = tmp_path / "engine.log"

    def configure(spec: str = "echo", timeout: float = 20.0) -> local.LocalBackend:
        monkeypatch.setenv(FAKE_ENV, f"{spec};log={log}")
        return local.LocalBackend(model, model="m", n_threads=2, timeout=timeout)

    yield configure, log
    local.close_workers()


def kill_when_busy(log: Path, sig: int) -> threading.Thread:
    """From another thread: wait until the worker is inside a call, then send it ``sig``."""

    def run() -> None:
        call = wait_for_call_in_flight(log)
        os.kill(call["pid"], sig)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_worker_answers_and_loads_once_for_many_backends(fake_worker):
    configure, log = fake_worker
    a, b = configure(), configure()

    async def run():
        replies = await asyncio.gather(*(x.complete(request()) for x in (a, b, a, b)))
        replies.append(await a.complete(request(schema=None)))
        return replies

    replies = asyncio.run(run())
    assert replies[0].content == '{"label": "计划"}'  # the double answers the schema's first enum value
    assert replies[-1].content == "{}"
    assert (replies[0].completion_tokens, replies[0].finish_reason) == (3, "stop")
    starts = [e for e in events(log) if e["event"] == "start"]
    calls = [e for e in events(log) if e["event"] == "call"]
    assert len(starts) == 1 and len(calls) == 5  # one model load serves every backend
    assert starts[0]["pid"] == a.worker_pid() == b.worker_pid() != os.getpid()


def test_context_overflow_is_truncated_output(fake_worker):
    configure, _ = fake_worker
    backend = configure()
    with pytest.raises(TruncatedOutput, match="REPORTSUM_LOCAL_CTX"):
        asyncio.run(backend.complete(request("overflow")))
    assert backend.worker_pid() is not None  # a refused request leaves the worker up


@pytest.mark.parametrize("sig, words", [
    (signal.SIGSEGV, ["SIGSEGV", "crash inside llama.cpp", REBUILD_COMMAND]),
    (signal.SIGKILL, ["SIGKILL", "out-of-memory", "REPORTSUM_LOCAL_CTX"]),
])
def test_worker_killed_mid_call_is_an_error_and_the_next_call_gets_a_fresh_worker(fake_worker, sig, words):
    configure, log = fake_worker
    backend = configure("echo;delay=5")  # each call sleeps 5 s: the test kills it meanwhile
    killer = kill_when_busy(log, sig)
    started = time.monotonic()
    with pytest.raises(BackendError) as err:
        asyncio.run(backend.complete(request(context="report.txt sentence 4")))
    killer.join(5)
    assert time.monotonic() - started < 5  # the caller did not wait for the dead call
    message = str(err.value)
    for word in [*words, "report.txt sentence 4", "reportsum doctor", "next call starts a fresh worker"]:
        assert word in message
    assert not isinstance(err.value, BackendTimeout)
    first_pid = events(log)[0]["pid"]

    configure("echo")  # the fresh worker answers at once
    reply = asyncio.run(backend.complete(request()))
    assert reply.content == '{"label": "计划"}'
    assert backend.worker_pid() not in (None, first_pid)


def test_native_crash_quotes_the_workers_last_output(fake_worker, tmp_path):
    # The worker kills itself with SIGSEGV inside the call, as llama_decode would;
    # faulthandler's report ("Fatal Python error: Segmentation fault" + the stack) is quoted.
    configure, log = fake_worker
    backend = configure(f"crash-after=1;once={tmp_path / 'crashed'}")
    assert asyncio.run(backend.complete(request())).content  # call 1 answers
    with pytest.raises(BackendError, match="SIGSEGV") as err:
        asyncio.run(backend.complete(request()))
    assert "Segmentation fault" in str(err.value)
    assert asyncio.run(backend.complete(request())).content  # once: the fresh worker behaves
    assert len({e["pid"] for e in events(log) if e["event"] == "start"}) == 2


def test_hung_worker_times_out_is_killed_and_replaced(fake_worker, tmp_path):
    configure, log = fake_worker
    backend = configure(f"hang-after=0;once={tmp_path / 'hung'}", timeout=1.0)
    started = time.monotonic()
    # the timeout grows with the reply asked for: 1 s + max_tokens at the slowest decode rate
    allowed = backend.call_timeout({"max_tokens": request().max_tokens})
    assert allowed == 1.0 + request().max_tokens / MIN_TOKENS_PER_SECOND
    with pytest.raises(BackendTimeout, match=rf"within {allowed:g} s.*REPORTSUM_TIMEOUT"):
        asyncio.run(backend.complete(request()))
    assert time.monotonic() - started < 10
    hung_pid = events(log)[0]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(hung_pid, 0)  # killed and reaped, not left running
    assert asyncio.run(backend.complete(request())).content == '{"label": "计划"}'


def test_model_that_fails_to_load_is_a_config_error(fake_worker):
    configure, _ = fake_worker
    backend = configure("load-fail=not a GGUF file")
    with pytest.raises(ConfigError, match="not a GGUF file.*reportsum doctor"):
        asyncio.run(backend.complete(request()))


def test_protocol_is_generic_and_an_unknown_method_leaves_the_worker_up(fake_worker):
    configure, _ = fake_worker
    backend = configure()
    info = asyncio.run(backend.call("system_info", {}))
    assert "fake engine" in info["system_info"]
    pid = backend.worker_pid()
    with pytest.raises(EngineError, match="no method 'logprobs'"):
        asyncio.run(backend.call("logprobs", {"prompt": "x"}))
    assert backend.worker_pid() == pid


def test_a_forked_child_starts_its_own_worker_and_never_uses_the_parents(fake_worker):
    configure, log = fake_worker
    backend = configure()
    asyncio.run(backend.complete(request()))
    parent_worker = backend.worker_pid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            asyncio.run(backend.complete(request()))
            os.write(write, str(backend.worker_pid()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_worker = int(os.read(read, 64) or b"0")
    os.waitpid(child, 0)
    assert child_worker not in (0, parent_worker)
    assert backend.worker_pid() == parent_worker  # the parent's worker is untouched
    assert asyncio.run(backend.complete(request())).content == '{"label": "计划"}'
