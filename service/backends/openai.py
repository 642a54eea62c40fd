"""Any OpenAI-compatible endpoint through the official async SDK.

Transport retries (408/409/429 honouring Retry-After, 5xx, timeouts) belong to the SDK
alone: one retry policy, in one place. This module adds only what the SDK cannot know:
which structured-output dialect the server speaks, and how many HTTP requests an answer
really cost (``LLMResponse.calls``, counted by an httpx2 event hook, retries included).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import os
import re
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import httpx2
import openai

from service.backends.base import LLMRequest, LLMResponse
from service.config import Settings
from service.errors import BackendError, BackendTimeout, ReplayMiss

log = logging.getLogger(__name__)

# Calls go through the SDK's aiohttp transport (``openai[aiohttp]``, ``DefaultAioHttpClient``),
# not its default httpx2 one: with 200 calls in flight httpcore scans every connection of its pool
# each time a call starts or ends, and its request path is pure Python. One process, 2,000 calls,
# 200 in flight, loopback double at 250 ms: 2.46 ms of CPU per call over httpx2 (already spread
# over eight pools), 1.40 ms over aiohttp. The serve process spends that CPU per model call.
# Idle connections close after 5 s; the SDK's timeouts and retries are the same either way.
CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=5.0)
PROMPT_VERSION_HEADER = "X-Reportsum-Prompt-Version"
CONTEXT_HEADER = "X-Reportsum-Context"

# Internal dialects, most to least constrained. "json_object" carries the schema the way
# llama.cpp's server wants it; "json_object_plain" is what DeepSeek/DashScope accept.
DIALECTS = ("json_schema", "json_object", "json_object_plain", "none")
CHAINS: dict[str, tuple[str, ...]] = {
    "auto": DIALECTS,
    "json_schema": ("json_schema",),
    "json_object": ("json_object", "json_object_plain"),
    "none": ("none",),
}

# Marks the schema description added to the prompt, so replay can undo it exactly and the
# recording key stays the same whatever dialect the request travelled in.
SCHEMA_NOTE = "Reply with only one JSON object that conforms to this JSON Schema (no prose, no code fences):\n"

_DIALECT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")
_NOT_DIALECT_WORDS = ("context length", "context_length", "maximum context", "too many tokens", "api key")

# Per-task request counter; tasks copy the context, so concurrent calls never mix counts.
_REQUESTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("reportsum_requests", default=None)


async def _count_request(request: httpx2.Request) -> None:
    counter = _REQUESTS.get()
    if counter is not None:
        counter[0] += 1


def count_requests(client: httpx2.AsyncClient) -> httpx2.AsyncClient:
    """Install the request-counting hook on an httpx2 client (idempotent)."""
    hooks = client.event_hooks
    if _count_request not in hooks["request"]:
        hooks["request"].append(_count_request)
        client.event_hooks = hooks
    return client


def add_schema_note(messages: list[dict[str, str]], schema: dict[str, Any]) -> list[dict[str, str]]:
    """Describe the schema in the prompt (also puts the word "json" there, which
    DeepSeek and DashScope require for json_object)."""
    note = SCHEMA_NOTE + json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{note}"
    else:
        out.insert(0, {"role": "system", "content": note})
    return out


def strip_schema_note(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
    """Inverse of ``add_schema_note``: the original messages and the schema, if noted."""
    if not messages or messages[0].get("role") != "system":
        return messages, None
    content = messages[0].get("content") or ""
    head, sep, tail = content.rpartition(SCHEMA_NOTE)
    if not sep:
        return messages, None
    try:
        schema = json.loads(tail)
    except ValueError:
        return messages, None
    rest = [dict(m) for m in messages[1:]]
    if head == "":
        return rest, schema
    if not head.endswith("\n\n"):
        return messages, None
    return [{**messages[0], "content": head[:-2]}, *rest], schema


def response_format(request: LLMRequest, dialect: str) -> dict[str, Any] | None:
    schema = request.json_schema
    if schema is None or dialect == "none":
        return None
    if dialect == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": request.schema_name, "schema": schema, "strict": False}}
    if dialect == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def dialect_messages(request: LLMRequest, dialect: str) -> list[dict[str, str]]:
    # json_schema is enforced by the server; every other dialect may ignore the schema, so
    # the model must read it.
    if request.json_schema is None or dialect == "json_schema":
        return request.messages
    return add_schema_note(request.messages, request.json_schema)


def request_body(request: LLMRequest, dialect: str, model: str) -> dict[str, Any]:
    """The JSON body of ``/chat/completions`` for this request in this dialect."""
    body: dict[str, Any] = {
        "messages": dialect_messages(request, dialect),
        "model": model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    fmt = response_format(request, dialect)
    if fmt is not None:
        body["response_format"] = fmt
    return body


def is_dialect_rejection(err: openai.APIStatusError) -> bool:
    """Did the server refuse the response_format rather than the request?

    DeepSeek answers 400, some servers 422, llama.cpp's server 500 naming the schema.
    """
    text = f"{err.message} {err.body}".lower()
    if any(w in text for w in _NOT_DIALECT_WORDS) or err.status_code in (401, 403, 404):
        return False
    if err.status_code in (400, 422):
        return True
    return err.status_code >= 500 and any(w in text for w in _DIALECT_WORDS)


def _refused(err: BaseException) -> bool:
    """A connection refused or a name not resolved: the SDK's aiohttp transport maps that to a
    connect *timeout*, which would tell the user "timed out after 10 s" for an instant refusal."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectorError) and not isinstance(seen, asyncio.TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _public_url(url: str) -> str:
    # error messages show where we connected, never userinfo or query (may hold secrets)
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


# The SDK gives every POST an idempotency key, reused across its retries of that request,
# from uuid4: an os.urandom call each, ~0.25 ms of the batch's CPU per model call in this
# sandbox, where system calls are dear. Ours is as unique (a random prefix per process, drawn
# again in a forked child, then a counter) and costs no system call.
class _Keys:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix, self.count = f"reportsum-{os.urandom(8).hex()}", itertools.count()

    def __next__(self) -> str:
        return f"{self.prefix}-{next(self.count)}"


_KEYS = _Keys()
os.register_at_fork(after_in_child=_KEYS.reset)


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        structured_mode: str = "auto",
        *,
        send_context: bool = False,
    ) -> None:
        self._client = client
        self.model = model
        self._chain = CHAINS[structured_mode]
        # the dialect that worked once; later calls go straight to it
        self.dialect: str | None = None
        self._probe_lock = asyncio.Lock()
        # the request context (article names) only travels to endpoints that need it: replay
        self.send_context = send_context

    @classmethod
    def from_settings(cls, settings: Settings, http_client: httpx2.AsyncClient | None = None) -> OpenAIBackend:
        """The backend for ``settings``; ``http_client`` replaces the aiohttp one (replay, tests)."""
        client = openai.AsyncOpenAI(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key or "unused",
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            http_client=count_requests(http_client or openai.DefaultAioHttpClient(limits=CONNECTION_LIMITS)),
        )
        return cls(client, settings.resolved_model(), settings.structured_mode)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        counter = [0]
        token = _REQUESTS.set(counter)
        try:
            completion = await self._complete(request)
        except ReplayMiss:
            raise
        except openai.APIError as err:
            error = self._translate(err)
            error.calls = counter[0]  # type: ignore[attr-defined]  # requests spent before failing
            raise error from err
        finally:
            _REQUESTS.reset(token)
        return self._response(completion, max(counter[0], 1))

    async def aclose(self) -> None:
        await self._client.close()

    async def _complete(self, request: LLMRequest) -> Any:
        if request.json_schema is not None and self.dialect is None:
            # one caller probes while the others wait, so a rejecting server sees one probe
            async with self._probe_lock:
                if self.dialect is None:
                    return await self._probe(request)
        return await self._send(request, self.dialect or self._chain[0])

    async def _probe(self, request: LLMRequest) -> Any:
        for i, dialect in enumerate(self._chain):
            try:
                completion = await self._send(request, dialect)
            except openai.APIStatusError as err:
                if i + 1 == len(self._chain) or not is_dialect_rejection(err):
                    raise
                log.info("%s rejected response_format %s (HTTP %s); trying %s",
                         self.name, dialect, err.status_code, self._chain[i + 1])
                continue
            self.dialect = dialect
            return completion
        raise AssertionError("unreachable: the last dialect re-raises")  # pragma: no cover

    async def _send(self, request: LLMRequest, dialect: str) -> dict[str, Any]:
        # The body is plain JSON already, so it goes through the SDK's generic ``post`` (its
        # retries, timeouts and errors all apply) rather than ``chat.completions.create``, whose
        # TypedDict transform walks every message and the schema node by node (4-8 ms of event
        # loop per call, more than the rest of the call) to send the same bytes; the reply is
        # read as JSON rather than built into the SDK's ChatCompletion models (another 1-2 ms).
        response = await self._client.post(
            "/chat/completions", body=request_body(request, dialect, self.model),
            options={"headers": self._headers(request), "idempotency_key": next(_KEYS)}, cast_to=httpx2.Response,
        )
        try:
            completion = response.json()
        except ValueError as err:
            raise BackendError(f"{self._where()}: the reply is not JSON: {response.text[:200]!r}") from err
        if not isinstance(completion, dict):
            raise BackendError(f"{self._where()}: the reply is not a JSON object")
        return completion

    def _headers(self, request: LLMRequest) -> dict[str, str]:
        # percent-encoded: header values must be ASCII, article names may be Chinese
        headers = {PROMPT_VERSION_HEADER: quote(request.prompt_version, safe="")}
        if self.send_context and request.context:
            headers[CONTEXT_HEADER] = quote(request.context, safe="")
        return headers

    def _response(self, completion: dict[str, Any], calls: int) -> LLMResponse:
        choices = completion.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise BackendError(f"{self._where()}: the reply has no choices")
        choice = choices[0]
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        usage = completion.get("usage") if isinstance(completion.get("usage"), dict) else {}
        return LLMResponse(
            content=message.get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            calls=calls,
        )

    def _translate(self, err: openai.APIError) -> Exception:
        retries = self._client.max_retries
        if isinstance(err, openai.APITimeoutError) and not _refused(err):
            return BackendTimeout(f"{self._where()}: timed out after {self._client.timeout}s, {retries} retries")
        if isinstance(err, openai.APIConnectionError):
            if isinstance(err.__cause__, ReplayMiss):  # defensive: should the SDK ever wrap it
                return err.__cause__
            return BackendError(f"{self._where()}: cannot connect ({retries} retries): {err.__cause__ or err}")
        if isinstance(err, openai.APIStatusError):
            return BackendError(f"{self._where()}: HTTP {err.status_code}: {self._redact(err.message)}")
        return BackendError(f"{self._where()}: {self._redact(str(err))}")

    def _where(self) -> str:
        return f"{self.name} backend (model {self.model} at {_public_url(str(self._client.base_url))})"

    def _redact(self, text: str) -> str:
        # some servers echo the key they refused; never let it reach a log or a terminal
        key = self._client.api_key
        text = text.replace(key, "***") if key and key != "unused" else text
        return re.sub(r"\s+", " ", text)[:500]
