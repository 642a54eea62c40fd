"""FakeOpenAIServer: a test double of an OpenAI-compatible ``/v1/chat/completions``.

A real HTTP server on loopback (``http.server`` in a thread), so the real openai SDK, its
retries and its timeouts are exercised end to end. Tests script a queue of behaviours
(``ok``, ``status``, ``hang``, ``length``, ...) and read back every request received.
When the queue is empty it answers with a minimal valid instance of the requested schema.

Standalone, for the batch/API benchmarks:

    python -m tests.doubles.fake_openai --port 8999 --latency 0.25 --fail-rate 0.2
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from service.backends.openai import strip_schema_note


@dataclass
class Behaviour:
    """One scripted answer. ``content`` None means: a valid instance of the schema."""

    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted failure"
    hang: float = 0.0  # seconds to sit on the request before answering (past the client's timeout)
    # computes the reply text from the request body (e.g. tests.doubles.context_replies)
    respond: Callable[[dict[str, Any]], str] | None = None


def ok(content: str | None = None) -> Behaviour:
    return Behaviour(content=content)


def length(content: str = '{"label": "A", "note": "cut off mid') -> Behaviour:
    return Behaviour(content=content, finish_reason="length")


def status(code: int, retry_after: str | None = None, error: str = "scripted failure") -> Behaviour:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Behaviour(status=code, headers=headers, error=error)


def hang(seconds: float = 5.0) -> Behaviour:
    return Behaviour(hang=seconds)


def answer(respond: Callable[[dict[str, Any]], str], finish_reason: str = "stop") -> Behaviour:
    return Behaviour(respond=respond, finish_reason=finish_reason)


def malformed() -> Behaviour:
    return Behaviour(content='{"label": "A", ')


# How real servers refuse a response_format they do not speak.
REJECTIONS = {
    "llama.cpp": (500, "Either \"json_schema\" or \"grammar\" can be specified, but not both: response_format"),
    "deepseek": (400, "This response_format type is unavailable now"),
}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler must not hold up shutdown
    request_queue_size = 256  # benchmarks open many connections at once


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]


class FakeOpenAIServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 fail_rate: float = 0.0, seed: int | None = 0,
                 responder: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.latency = latency
        self.responder = responder  # answers when the script is empty (default: a minimal instance)
        self.fail_rate = fail_rate
        self.requests: list[Received] = []
        self.rejected_dialects: dict[str, str] = {}  # "json_schema"/"json_object_schema" -> REJECTIONS key
        self._queue: list[Behaviour] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._random = random.Random(seed)
        self._httpd = _HTTPServer((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *behaviours: Behaviour) -> FakeOpenAIServer:
        with self._lock:
            self._queue.extend(behaviours)
        return self

    def reject(self, dialect: str, like: str = "llama.cpp") -> FakeOpenAIServer:
        """Refuse requests whose response_format is ``dialect`` ("json_schema", or
        "json_object_schema" for json_object with a schema key), as server ``like`` does."""
        self.rejected_dialects[dialect] = like
        return self

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- called from handler threads --

    def decide(self, received: Received) -> Behaviour:
        with self._lock:
            self.requests.append(received)
            rejection = self._rejection(received.body)
            if rejection is not None:
                return rejection
            if self._queue:
                return self._queue.pop(0)
            if self.fail_rate and self._random.random() < self.fail_rate:
                return self._random.choice([status(503), status(429, retry_after="0.2")])
        return answer(self.responder) if self.responder else ok()

    def _rejection(self, body: dict[str, Any]) -> Behaviour | None:
        fmt = body.get("response_format") or {}
        dialect = fmt.get("type")
        if dialect == "json_object" and "schema" in fmt:
            dialect = "json_object_schema"
        like = self.rejected_dialects.get(dialect or "")
        if like is None:
            return None
        code, message = REJECTIONS[like]
        return status(code, error=message)


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
        protocol_version = "HTTP/1.1"  # keep-alive, like a real server

        def log_message(self, format: str, *args: Any) -> None:  # quiet tests
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error": {"message": "body is not JSON"}})
            headers = {k.lower(): v for k, v in self.headers.items()}
            behaviour = server.decide(Received(self.path, headers, body))
            if server.latency:
                time.sleep(server.latency)
            if behaviour.hang and server._stopping.wait(behaviour.hang):
                return
            self._answer(behaviour, body)

        def _answer(self, behaviour: Behaviour, body: dict[str, Any]) -> None:
            if behaviour.status != 200:
                error = {"error": {"message": behaviour.error, "type": "fake", "code": behaviour.status}}
                return self._send(behaviour.status, error, behaviour.headers)
            content = behaviour.content
            if behaviour.respond is not None:
                content = behaviour.respond(body)
            if content is None:
                content = json.dumps(minimal_instance(requested_schema(body)), ensure_ascii=False)
            self._send(200, completion(body, content, behaviour.finish_reason), behaviour.headers)

        def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

    return Handler


def completion(body: dict[str, Any], content: str, finish_reason: str = "stop") -> dict[str, Any]:
    prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
    usage = {"prompt_tokens": prompt_chars // 2 + 1, "completion_tokens": len(content) // 2 + 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": usage,
    }


def requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema the client asked for, in whichever dialect it was sent."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    if fmt.get("schema"):
        return fmt["schema"]
    return strip_schema_note(body.get("messages", []))[1]


def minimal_instance(schema: dict[str, Any] | None, root: dict[str, Any] | None = None) -> Any:
    """The smallest value valid under ``schema`` (first enum value, required fields...)."""
    if schema is None:
        return {}
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return minimal_instance(root.get("$defs", root.get("definitions", {}))[name], root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combo in ("anyOf", "oneOf", "allOf"):
        if schema.get(combo):
            return minimal_instance(schema[combo][0], root)
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties", {})
        return {name: minimal_instance(props[name], root) for name in schema.get("required", props)}
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    return {"boolean": False, "null": None}.get(kind)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat completions server (test double)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 503 or 429")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(args.host, args.port, args.latency, args.fail_rate, args.seed)
    print(f"fake OpenAI server on {server.base_url} (latency {args.latency}s, fail rate {args.fail_rate})", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
