"""Recorded model exchanges: one JSON file per request, keyed on what determines the answer.

Keys come from ``LLMRequest.key(model)`` (messages, schema, limits, prompt version), never
from raw HTTP, so a recording survives a change of endpoint or structured-output dialect
and fails loudly when a prompt changes. Only the request and the reply are written: no
API key, no headers, no base URL can leak into a fixture.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from service.fsutil import atomic_write
from service.backends.base import Backend, LLMRequest, LLMResponse
from service.errors import ConfigError

FORMAT_VERSION = 1
_KEY = re.compile(r"^[0-9a-f]{8,64}$")


class RecordedRequest(BaseModel):
    messages: list[dict[str, str]]
    json_schema: dict[str, Any] | None = None
    max_tokens: int
    temperature: float
    schema_name: str = "reply"


class RecordedResponse(BaseModel):
    content: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Recording(BaseModel):
    version: Literal[1] = FORMAT_VERSION
    key: str
    model: str
    prompt_version: str
    request: RecordedRequest
    response: RecordedResponse
    context: str = ""


def make_recording(request: LLMRequest, response: LLMResponse, model: str) -> Recording:
    return Recording(
        key=request.key(model),
        model=model,
        prompt_version=request.prompt_version,
        request=RecordedRequest(
            messages=request.messages,
            json_schema=request.json_schema,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            schema_name=request.schema_name,
        ),
        response=RecordedResponse(
            content=response.content,
            finish_reason=response.finish_reason,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
        ),
        context=request.context,
    )


def save_recording(directory: Path, recording: Recording) -> Path:
    """Write atomically, so a crash or a concurrent writer never leaves half a file."""
    path = directory / f"{recording.key}.json"
    atomic_write(path, json.dumps(recording.model_dump(), ensure_ascii=False, indent=2) + "\n")
    return path


def load_recording(directory: Path, key: str) -> dict[str, Any] | None:
    """The recording for ``key``, or None. A file of another format version is refused."""
    if not _KEY.match(key):
        return None
    path = Path(directory) / f"{key}.json"
    if not path.is_file():
        return None
    return _read(path).model_dump()


def _read(path: Path) -> Recording:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"recording {path} is unreadable: {err}") from err
    if not isinstance(raw, dict) or raw.get("version") != FORMAT_VERSION:
        version = raw.get("version") if isinstance(raw, dict) else None
        raise ConfigError(
            f"recording {path} has format version {version!r}; this reportsum reads version "
            f"{FORMAT_VERSION}: record it again"
        )
    try:
        return Recording.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"recording {path} is malformed: {err}") from err


def _all_recordings(directory: Path) -> list[Recording]:
    found = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            found.append(_read(path))
        except ConfigError:
            continue  # a bad neighbour must not hide the miss being explained
    return found


def nearest_keys(directory: Path, request: LLMRequest, model: str, limit: int = 3) -> list[str]:
    """Recorded keys most like ``request``: same context first, then longest shared
    prefix of the serialized messages. Used to explain a replay miss."""
    target = _blob(request.messages)
    scored = []
    for rec in _all_recordings(directory):
        same_context = bool(request.context) and rec.context == request.context
        shared = _common_prefix(_blob(rec.request.messages), target)
        scored.append((same_context, rec.model == model, shared, rec.key))
    scored.sort(reverse=True)
    return [key for *_, key in scored[:limit]]


def differences(recording: dict[str, Any], request: LLMRequest, model: str) -> list[str]:
    """What differs between a recording and a request, in words (vcrpy-style)."""
    rec = Recording.model_validate(recording)
    diffs = []
    for field, old, new in (
        ("model", rec.model, model),
        ("prompt_version", rec.prompt_version, request.prompt_version),
        ("max_tokens", rec.request.max_tokens, request.max_tokens),
        ("temperature", rec.request.temperature, request.temperature),
    ):
        if old != new:
            diffs.append(f"{field} {old!r} != {new!r}")
    if rec.request.json_schema != request.json_schema:
        diffs.append("json_schema differs")
    diffs.extend(_message_difference(rec.request.messages, request.messages))
    return diffs


def _message_difference(old: list[dict[str, str]], new: list[dict[str, str]]) -> list[str]:
    if old == new:
        return []
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            at = _common_prefix(a.get("content", ""), b.get("content", ""))
            return [f"message {i} ({b.get('role', '?')}) differs from character {at}"]
    return [f"{len(old)} messages recorded, {len(new)} requested"]


def _blob(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class RecordingBackend:
    """Wraps any backend and writes every successful exchange to ``directory``.

    With ``reuse`` an exchange already recorded is answered from its recording and the model
    is asked only about the rest (``--record-missing``): after a change that alters some
    requests (an overview whose items changed) only those are recorded anew, by the model
    that made the others."""

    def __init__(self, inner: Backend, directory: Path, *, reuse: bool = False) -> None:
        self.inner = inner
        self.directory = Path(directory)
        self.name = inner.name
        self.model = inner.model
        self.reuse = reuse

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if self.reuse and (recorded := load_recording(self.directory, request.key(self.inner.model))):
            reply = recorded["response"]
            return LLMResponse(content=reply["content"], finish_reason=reply["finish_reason"],
                               prompt_tokens=reply["prompt_tokens"], completion_tokens=reply["completion_tokens"])
        response = await self.inner.complete(request)
        save_recording(self.directory, make_recording(request, response, self.inner.model))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
