"""TEST DOUBLE of the embedded model's engine: never used outside tests.

``REPORTSUM_LOCAL_FAKE=<spec>`` makes the real worker process
(``service/backends/local_worker.py``) load ``FakeEngine`` instead of llama.cpp. Everything
else is real: the subprocess, its pipes, its exit status, signals, timeouts and restarts,
so tests can crash and kill the worker without the 1.1 GB model or a llama.cpp build.

``spec`` is ``;``-separated directives:

    echo           answer each request with the smallest JSON valid under its schema (default)
    delay=S        sleep S seconds inside every call: a window in which a test kills the worker
    log=PATH       append one JSON line per event: {"pid", "event": "start"|"call"|"done", "n", "context"}
    crash-after=N  on call N+1 the worker kills itself with ``signal`` (a real os.kill)
    signal=NAME    the signal for crash-after (default SIGSEGV)
    hang-after=N   call N+1 never answers (a decode that hangs)
    once=PATH      crash or hang only while PATH does not exist (created just before), so the
                   fresh worker that follows behaves
    load-fail=MSG  the model "fails to load" with MSG

A request whose last message contains ``overflow`` fails like llama.cpp's context overflow.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from service.backends.local_worker import EngineError
from tests.doubles.fake_openai import minimal_instance


def parse_spec(spec: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in spec.split(";"):
        part = part.strip()
        if part:
            key, _, value = part.partition("=")
            options[key.strip()] = value.strip()
    return options


class FakeEngine:
    METHODS = ("complete", "system_info")
    name = "fake (tests/doubles/local_engine.py)"

    def __init__(self, spec: str, config: dict[str, Any]):
        self.options = parse_spec(spec)
        self.config = config
        self.calls = 0
        if "load-fail" in self.options:
            raise EngineError("load", f"fake engine: {self.options['load-fail']}")
        self._log("start")

    def _log(self, event: str, **fields: Any) -> None:
        path = self.options.get("log")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"pid": os.getpid(), "event": event, **fields}, ensure_ascii=False) + "\n")

    def _armed(self) -> bool:
        once = self.options.get("once")
        if not once:
            return True
        try:
            Path(once).open("x").close()  # atomic: only the first worker to get here misbehaves
        except FileExistsError:
            return False
        return True

    def complete(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        context = params.get("context", "")
        self._log("call", n=self.calls, context=context)
        if "crash-after" in self.options and self.calls > int(self.options["crash-after"]) and self._armed():
            os.kill(os.getpid(), signal.Signals[self.options.get("signal", "SIGSEGV")])
            time.sleep(10)  # a handled/ignored signal must not look like an answer
        if "hang-after" in self.options and self.calls > int(self.options["hang-after"]) and self._armed():
            time.sleep(3600)
        time.sleep(float(self.options.get("delay", 0) or 0))
        last = params["messages"][-1]["content"] if params.get("messages") else ""
        if "overflow" in last:
            raise EngineError("context_overflow", "Requested tokens (5000) exceed context window of 4096")
        content = json.dumps(minimal_instance(params.get("json_schema")), ensure_ascii=False)
        self._log("done", n=self.calls)
        return {"content": content, "finish_reason": "stop", "prompt_tokens": 10 + len(last), "completion_tokens": 3}

    def system_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"system_info": "fake engine | no llama.cpp"}

    def close(self) -> None:
        self._log("exit")


def events(log: Path) -> list[dict[str, Any]]:
    """The events a FakeEngine wrote to ``log=PATH`` (for the tests that read it)."""
    try:
        text = log.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_for_call_in_flight(log: Path, timeout: float = 30.0, proc: Any = None) -> dict[str, Any]:
    """Block until some worker has started a call it has not finished; return that event.
    ``proc`` (a Popen): give up as soon as it exits, with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exited with {proc.returncode} before any model call: {out!r} {err!r}")
        open_calls: dict[tuple[int, int], dict[str, Any]] = {}
        for e in events(log):
            if e["event"] == "call":
                open_calls[(e["pid"], e["n"])] = e
            elif e["event"] == "done":
                open_calls.pop((e["pid"], e["n"]), None)
        if open_calls:
            return list(open_calls.values())[-1]
        time.sleep(0.02)
    raise TimeoutError(f"no model call started within {timeout}s (log: {events(log)})")


def texts_calling_the_model(n: int) -> list[str]:
    """``n`` distinct short texts for which the pipeline asks the model at least once.

    Which sentences reach the model depends on the pipeline's cues and labeller, so they
    are found (paragraphs of the seed articles, shortest first), not hard-coded."""
    from tests.api.conftest import ARTICLES, model_calls, short_text

    candidates = [short_text(i) for i in range(n)]
    paragraphs = {p.strip() for a in ARTICLES for p in a.read_text(encoding="utf-8").split("\n") if len(p.strip()) > 30}
    candidates += sorted(paragraphs, key=lambda p: (len(p), p))
    found = [t for t in candidates[:200] if model_calls(t) > 0][:n]
    if len(found) < n:
        raise AssertionError(f"only {len(found)} seed paragraphs make the pipeline call the model")
    return found
