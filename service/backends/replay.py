"""Replay recorded exchanges with no network, through the real openai SDK code path.

The SDK talks to ``ReplayTransport``, an httpx2 transport that answers
``POST .../chat/completions`` from ``settings.recordings`` and never opens a connection.
Because the request goes through ``OpenAIBackend`` and the SDK unchanged, CI exercises
the same serialization, dialect handling and response parsing as a live endpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2

from service.backends.base import Backend, LLMRequest
from service.backends.openai import CONTEXT_HEADER, PROMPT_VERSION_HEADER, OpenAIBackend, strip_schema_note
from service.config import Settings
from service.errors import ReplayMiss
from service.recordings import differences, load_recording, nearest_keys

# Never resolved: the transport answers every request itself.
REPLAY_BASE_URL = "http://replay.invalid/v1"


def make_replay_backend(settings: Settings) -> Backend:
    replay_settings = settings.model_copy(
        update={
            "openai_base_url": REPLAY_BASE_URL,
            "openai_api_key": None,
            "max_retries": 0,  # a recording does not get better by asking twice
            "structured_mode": "json_schema",  # the transport reads every dialect alike
        }
    )
    client = httpx2.AsyncClient(transport=ReplayTransport(settings.recordings))
    backend = OpenAIBackend.from_settings(replay_settings, http_client=client)
    backend.name = "replay"
    backend.send_context = True  # the miss message names the article and chunk
    return backend


class ReplayTransport(httpx2.AsyncBaseTransport):
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return httpx2.Response(404, json={"error": {"message": f"replay serves only chat completions, not {request.url.path}"}})
        body = json.loads(await request.aread())
        llm_request, model = request_from_body(body, request.headers)
        key = llm_request.key(model)
        recording = load_recording(self.directory, key)
        if recording is None:
            raise ReplayMiss(self._miss_message(llm_request, model, key))
        return httpx2.Response(200, json=completion_json(recording, key))

    def _miss_message(self, request: LLMRequest, model: str, key: str) -> str:
        where = request.context or "a request"
        lines = [
            f"no recording for {where}: key {key} (model {model!r}, prompt version "
            f"{request.prompt_version!r}) in {self.directory}"
        ]
        for near in nearest_keys(self.directory, request, model):
            recorded = load_recording(self.directory, near) or {}
            diff = "; ".join(differences(recorded, request, model)) or "same request"
            lines.append(f"  nearest recorded {near} ({recorded.get('context') or 'no context'}): {diff}")
        lines.append(f"record it with: reportsum summarize --record --backend local {_article(request.context)}")
        return "\n".join(lines)


def request_from_body(body: dict[str, Any], headers: httpx2.Headers) -> tuple[LLMRequest, str]:
    """Rebuild the ``LLMRequest`` the backend was given, whatever dialect carried it."""
    messages, noted_schema = strip_schema_note(body["messages"])
    schema, name = _schema_of(body.get("response_format"))
    request = LLMRequest(
        messages=messages,
        json_schema=schema if schema is not None else noted_schema,
        schema_name=name,
        max_tokens=body.get("max_tokens", body.get("max_completion_tokens", 512)),
        temperature=body.get("temperature", 0.0),
        prompt_version=unquote(headers.get(PROMPT_VERSION_HEADER, "")),
        context=unquote(headers.get(CONTEXT_HEADER, "")),
    )
    return request, body["model"]


def _schema_of(fmt: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    if not fmt:
        return None, "reply"
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return spec.get("schema"), spec.get("name", "reply")
    return fmt.get("schema"), "reply"  # json_object, with the schema llama.cpp-style or none


def completion_json(recording: dict[str, Any], key: str) -> dict[str, Any]:
    reply = recording["response"]
    return {
        "id": f"replay-{key}",
        "object": "chat.completion",
        "created": 0,
        "model": recording["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply["content"]},
                "finish_reason": reply["finish_reason"],
            }
        ],
        "usage": {
            "prompt_tokens": reply["prompt_tokens"],
            "completion_tokens": reply["completion_tokens"],
            "total_tokens": reply["prompt_tokens"] + reply["completion_tokens"],
        },
    }


def _article(context: str) -> str:
    match = re.search(r"article (\S+)", context)
    return match.group(1) if match else "<article>"
