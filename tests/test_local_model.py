"""The real embedded model (opt-in: ``pytest -m local_model``; needs the [local] extra)."""

from __future__ import annotations

import asyncio
import json

import pytest

from service.backends.base import LLMRequest
from service.config import Settings

pytestmark = pytest.mark.local_model

LABELS = ["成绩", "问题", "计划", "其他"]
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": LABELS}},
    "required": ["label"],
}


def test_local_model_classifies_with_schema():
    pytest.importorskip("llama_cpp")
    from service.backends.local import LocalBackend

    backend = LocalBackend.from_settings(Settings(backend="local"))
    assert backend.name == "local"
    request = LLMRequest(
        messages=[
            {
                "role": "system",
                "content": "判断句子属于成绩、问题、计划、其他中的哪一类，只输出JSON：{\"label\": \"...\"}。",
            },
            {"role": "user", "content": "句子：上半年全市新建标准化村卫生室169家，完成年度任务的81.7%。"},
        ],
        json_schema=SCHEMA,
        max_tokens=32,
    )

    async def run():
        try:
            return await backend.complete(request)
        finally:
            await backend.aclose()

    reply = asyncio.run(run())
    data = json.loads(reply.content)
    assert data["label"] in LABELS
    assert reply.prompt_tokens > 0
    assert reply.completion_tokens > 0
    assert reply.finish_reason == "stop"
