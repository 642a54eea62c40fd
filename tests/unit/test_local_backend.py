"""LocalBackend without llama.cpp: a fake ``llama_cpp`` module stands in for it."""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from service.backends import local
from service.backends.base import LLMRequest
from service.errors import ConfigError, TruncatedOutput


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
    monkeypatch.setitem(sys.modules, "llama_cpp", module)
    monkeypatch.setattr(local, "_MODELS", {})
    monkeypatch.setattr(local, "_GRAMMARS", {})
    FakeLlama.instances = FakeGrammar.built = 0
    return module


SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def request(text="句子：要加快推进。", schema=SCHEMA):
    return LLMRequest(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": text}],
                      json_schema=schema, max_tokens=16)


def test_missing_llama_cpp_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[local\]'"):
        local.LocalBackend("x.gguf", model="m")


def test_complete_maps_reply_and_usage(fake_llama, tmp_path):
    backend = local.LocalBackend(tmp_path / "m.gguf", model="m", n_ctx=2048, n_threads=3)
    reply = asyncio.run(backend.complete(request()))
    assert reply.content == '{"label": "计划"}'
    assert (reply.prompt_tokens, reply.completion_tokens, reply.finish_reason) == (42, 6, "stop")
    (llm,) = local._MODELS.values()
    assert llm.params["n_ctx"] == 2048 and llm.params["n_threads"] == 3
    assert isinstance(llm.calls[0]["grammar"], FakeGrammar)
    assert "response_format" not in llm.calls[0]


def test_model_loaded_once_and_grammar_cached(fake_llama, tmp_path):
    async def run():
        a = local.LocalBackend(tmp_path / "m.gguf", model="m", n_threads=2)
        b = local.LocalBackend(tmp_path / "m.gguf", model="m", n_threads=2)
        await asyncio.gather(*(x.complete(request()) for x in (a, b, a, b)))
        await a.complete(request(schema=None))

    asyncio.run(run())
    assert FakeLlama.instances == 1
    assert FakeGrammar.built == 1
    (llm,) = local._MODELS.values()
    assert "grammar" not in llm.calls[-1]  # no schema: plain completion


def test_context_overflow_is_truncated_output(fake_llama, tmp_path):
    backend = local.LocalBackend(tmp_path / "m.gguf", model="m")
    with pytest.raises(TruncatedOutput, match="context"):
        asyncio.run(backend.complete(request("overflow")))
