"""One model call -> one validated pydantic object, with a bounded re-ask.

Failures are routed by kind (design notes, "What peers' users ran into"):
- ``finish_reason == "length"``: raise ``TruncatedOutput``; the caller shrinks the
  request. Re-asking with the truncated output appended only makes it longer.
- blank content: ask again once, unchanged.
- not JSON / not the schema: one repair round quoting the validation error; then
  ``InvalidOutput``.
Transport failures were already retried by the SDK and pass through untouched. Every
error raised here carries ``.usage`` so the caller can count the calls honestly.
"""

from __future__ import annotations

import functools

import json
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.backends.base import Backend, LLMRequest, LLMResponse
from service.errors import BackendError, InvalidOutput, TruncatedOutput

T = TypeVar("T", bound=BaseModel)

REPAIR_PROMPT = (
    "Your previous reply could not be used: {error}\n"
    "Reply again with only the corrected JSON, matching the requested schema: "
    "no explanation, no code fences."
)


class Usage(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, response: LLMResponse) -> None:
        self.llm_calls += response.calls
        self.prompt_tokens += response.prompt_tokens
        self.completion_tokens += response.completion_tokens

    def __iadd__(self, other: Usage) -> Usage:
        self.llm_calls += other.llm_calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        return self


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    # pydantic rebuilds a JSON schema on every call (milliseconds, on the event loop, once per
    # model call): built once per reply model, handed out as a copy callers may change. The
    # copy is decoded from the schema's JSON text: one C call, where copy.deepcopy walks the
    # schema in Python (~0.3 ms per model call)
    return json.loads(_schema_json(model))


@functools.cache
def _schema_json(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), ensure_ascii=False)


async def ask(backend: Backend, request: LLMRequest, reply_model: type[T]) -> tuple[T, Usage]:
    usage = Usage()
    try:
        content = await _answer(backend, request, usage)
        parsed, error = parse_reply(content, reply_model)
        if parsed is not None:
            return parsed, usage
        repaired = await _answer(backend, repair_request(request, content, error), usage)
        parsed, error = parse_reply(repaired, reply_model)
        if parsed is not None:
            return parsed, usage
        raise InvalidOutput(f"{_where(request)}: reply still invalid after one repair round: {error}")
    except BackendError as err:
        # a transport failure reports the requests it cost (SDK retries included)
        usage.llm_calls += getattr(err, "calls", 0)
        err.usage = usage  # type: ignore[attr-defined]
        raise


async def _answer(backend: Backend, request: LLMRequest, usage: Usage) -> str:
    """The reply text, asking once more if it came back blank."""
    for _ in range(2):
        response = await backend.complete(request)
        usage.add(response)
        if response.finish_reason == "length":
            raise TruncatedOutput(
                f"{_where(request)}: reply cut off at max_tokens={request.max_tokens}; shrink the request"
            )
        if response.content.strip():
            return response.content
    raise InvalidOutput(f"{_where(request)}: blank reply twice")


def repair_request(request: LLMRequest, bad_reply: str, error: str) -> LLMRequest:
    messages = [
        *request.messages,
        {"role": "assistant", "content": bad_reply},
        {"role": "user", "content": REPAIR_PROMPT.format(error=error)},
    ]
    context = f"{request.context} (repair)" if request.context else "repair"
    return request.model_copy(update={"messages": messages, "context": context})


def parse_reply(content: str, reply_model: type[T]) -> tuple[T | None, str]:
    """Validate the reply as is, then without fences or prose around the JSON.

    Returns the object, or None and the error worth quoting to the model.
    """
    error = ""
    for candidate in _candidates(content):
        try:
            return reply_model.model_validate_json(candidate), ""
        except ValidationError as err:
            # prefer the schema error of a candidate that is JSON over a syntax error
            if not error or _is_json(candidate):
                error = _describe(err)
    return None, error or "the reply is not JSON"


def _candidates(content: str) -> Iterator[str]:
    """The reply as is, without code fences, then its first balanced JSON value: lazily, since a
    valid reply needs only the first and the scan for a balanced value walks it char by char."""
    text = content.strip()
    yield text
    unfenced = _strip_fences(text)
    if unfenced != text:
        yield unfenced
    span = _first_json_value(unfenced)
    if span is not None and span not in (text, unfenced):
        yield span


def _strip_fences(text: str) -> str:
    start = text.find("```")
    if start < 0:
        return text
    body = text[start + 3:]
    newline = body.find("\n")
    if newline >= 0 and body[:newline].strip().isalpha():  # a language tag such as json
        body = body[newline + 1:]
    end = body.rfind("```")
    return (body[:end] if end >= 0 else body).strip()


def _first_json_value(text: str) -> str | None:
    """The first balanced {...} or [...] (string-aware), e.g. out of chatty prose."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    begin = min(starts)
    depth, in_string, escaped = 0, False, False
    for i in range(begin, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[begin:i + 1]
    return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:8]:
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)[:1000]


def _where(request: LLMRequest) -> str:
    return request.context or "model call"
