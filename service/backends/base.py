"""The one seam between the pipeline and any model.

A backend turns an ``LLMRequest`` (chat messages plus an optional JSON schema the reply
must follow) into an ``LLMResponse`` (raw text, finish reason, token usage). It does not
parse or validate the reply: ``service.extract`` owns validation and the repair round,
so every backend (openai, local, replay) gets the same guarantees.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class LLMRequest(BaseModel):
    messages: list[dict[str, str]]
    json_schema: dict[str, Any] | None = None  # the reply must be JSON of this schema
    schema_name: str = "reply"
    max_tokens: int = 512
    temperature: float = 0.0
    prompt_version: str = ""
    # Where the request comes from, for error messages only (never part of the key).
    context: str = Field(default="", exclude=True)

    def key(self, model: str) -> str:
        """Stable hash of everything that determines the answer.

        Recordings are keyed on this, not on raw HTTP, so a change of base URL, headers or
        structured-output dialect does not invalidate them, while any prompt edit does.
        """
        payload = {
            "model": model,
            "messages": self.messages,
            "json_schema": self.json_schema,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "prompt_version": self.prompt_version,
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class LLMResponse(BaseModel):
    content: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 1  # HTTP requests this answer cost (dialect fallbacks count)


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str

    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    async def aclose(self) -> None: ...
