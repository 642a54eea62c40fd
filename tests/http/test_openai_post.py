"""The openai backend's request and reply as bytes on the wire: it posts its plain JSON body
through the SDK's generic ``post`` (no per-call TypedDict transform) and reads the reply as
JSON (no SDK models), so these pin what the server receives and what a broken reply gives."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from service.backends.openai import PROMPT_VERSION_HEADER, OpenAIBackend, response_format
from service.config import Settings
from service.errors import BackendError
from tests.doubles.requests import label_request

SECRET = "sk-test-post-0123456789"


def complete_with(handler, *, max_retries: int = 0, structured_mode: str = "json_schema"):
    """``backend.complete`` of one request against a MockTransport answering with ``handler``."""
    settings = Settings(backend="openai", model="fake-model", openai_base_url="http://model.test/v1",
                        openai_api_key=SECRET, timeout=5.0, max_retries=max_retries,
                        structured_mode=structured_mode)
    seen: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return handler(request, len(seen))

    async def main():
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(record))
        backend = OpenAIBackend.from_settings(settings, http_client=client)
        try:
            return await backend.complete(request())
        finally:
            await backend.aclose()

    return asyncio.run(main()), seen


def request():
    return label_request(messages=[{"role": "system", "content": "你是助手。"},
                                   {"role": "user", "content": "句子：完成投资1.7亿元。"}])


def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}}


def test_the_body_is_the_request_as_json_and_the_reply_is_read_from_json():
    reply, seen = complete_with(lambda r, n: httpx2.Response(200, json=completion('{"label": "B"}', "length")))
    (sent,) = seen
    assert sent.method == "POST" and sent.url.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.headers[PROMPT_VERSION_HEADER] == "label-v1"
    r = request()
    assert json.loads(sent.content) == {
        "messages": r.messages, "model": "fake-model", "max_tokens": r.max_tokens,
        "temperature": r.temperature, "response_format": response_format(r, "json_schema"),
    }
    assert (reply.content, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens, reply.calls) == (
        '{"label": "B"}', "length", 31, 7, 1)


def test_a_server_error_is_still_retried_by_the_sdk_and_every_request_counted():
    def handler(r, n):
        return httpx2.Response(500, json={"error": {"message": "busy"}}) if n == 1 else \
            httpx2.Response(200, json=completion('{"label": "A"}'))

    reply, seen = complete_with(handler, max_retries=1)
    assert len(seen) == 2 and reply.calls == 2 and reply.content == '{"label": "A"}'


@pytest.mark.parametrize("body, why", [
    (b"<html>gateway</html>", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"choices": []}).encode(), "no choices"),
])
def test_a_reply_that_is_no_completion_is_a_backend_error(body, why):
    with pytest.raises(BackendError, match=why):
        complete_with(lambda r, n: httpx2.Response(200, content=body, headers={"content-type": "application/json"}))


def test_a_reply_without_usage_or_content_counts_zero_tokens_and_empty_text():
    bare = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": None}]}
    reply, _ = complete_with(lambda r, n: httpx2.Response(200, json=bare))
    assert (reply.content, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == ("", "stop", 0, 0)
