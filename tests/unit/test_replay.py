"""Record over the fake server, then replay through the real SDK with no network."""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import contextmanager

import pytest

from service.backends import make_backend
from service.backends.base import LLMRequest
from service.backends.openai import OpenAIBackend
from service.backends.replay import make_replay_backend
from service.config import Settings
from service.errors import ConfigError, ReplayMiss
from service.extract import ask, schema_of
from service.recordings import RecordingBackend, load_recording, nearest_keys
from tests.doubles.requests import Label, label_request
from tests.doubles.fake_openai import FakeOpenAIServer, ok

MODEL = "fake-model"


def request(**overrides) -> LLMRequest:
    messages = [
        {"role": "system", "content": "判断句子类别。"},
        {"role": "user", "content": "下一步，要持续推进医共体建设。"},
    ]
    fields = dict(messages=messages, max_tokens=32, context="article 003_88b8b5c2e6747ca6.txt chunk 2 sentence 7")
    return label_request(**(fields | overrides))




def record(tmp_path, requests, content='{"label": "C"}', **settings):
    """Record ``requests`` against a fresh fake server; return the server (stopped)."""
    with FakeOpenAIServer() as server:
        server.script(*[ok(content) for _ in requests])
        config = Settings(backend="openai", model=MODEL, openai_base_url=server.base_url,
                          openai_api_key="sk-secret", recordings=tmp_path, **settings)

        async def main():
            backend = RecordingBackend(OpenAIBackend.from_settings(config), tmp_path)
            try:
                return [await backend.complete(r) for r in requests]
            finally:
                await backend.aclose()

        responses = asyncio.run(main())
    return server, responses


def replay(tmp_path, job):
    async def main():
        backend = make_replay_backend(Settings(backend="replay", model=MODEL, recordings=tmp_path))
        try:
            return await job(backend)
        finally:
            await backend.aclose()

    return asyncio.run(main())


@contextmanager
def no_network():
    def refuse(*args, **kwargs):
        raise AssertionError("replay opened a network connection")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield


def test_replay_returns_the_recorded_answer_without_network(tmp_path):
    server, [recorded] = record(tmp_path, [request()])
    seen = len(server.requests)
    with no_network():
        replayed = replay(tmp_path, lambda b: b.complete(request()))
    assert replayed.content == recorded.content == '{"label": "C"}'
    assert (replayed.finish_reason, replayed.prompt_tokens, replayed.completion_tokens) == (
        recorded.finish_reason, recorded.prompt_tokens, recorded.completion_tokens)
    assert len(server.requests) == seen  # the (stopped) server heard nothing more


def test_replay_through_extract_and_backend_name(tmp_path):
    record_dir = tmp_path
    key = request().key(MODEL)
    (record_dir / f"{key}.json").write_text(json.dumps({
        "version": 1, "key": key, "model": MODEL, "prompt_version": "label-v1",
        "request": {"messages": request().messages, "json_schema": schema_of(Label), "max_tokens": 32,
                    "temperature": 0.0, "schema_name": "label"},
        "response": {"content": '{"label": "B"}', "finish_reason": "stop", "prompt_tokens": 9,
                     "completion_tokens": 3},
        "context": "",
    }), encoding="utf-8")

    async def job(backend):
        assert backend.name == "replay" and backend.model == MODEL
        return await ask(backend, request(), Label)

    with no_network():
        value, usage = replay(record_dir, job)
    assert value == Label(label="B") and (usage.llm_calls, usage.prompt_tokens) == (1, 9)


def test_recordings_do_not_depend_on_the_dialect(tmp_path):
    # recorded through json_object (prompt carries a schema note), replayed via json_schema
    server, _ = record(tmp_path, [request()], structured_mode="json_object")
    assert "schema" in server.requests[0].body["response_format"]
    with no_network():
        replayed = replay(tmp_path, lambda b: b.complete(request()))
    assert replayed.content == '{"label": "C"}'


def test_changed_prompt_version_is_a_loud_miss(tmp_path):
    record(tmp_path, [request()])
    changed = request(prompt_version="label-v2")
    with no_network(), pytest.raises(ReplayMiss) as info:
        replay(tmp_path, lambda b: b.complete(changed))
    message = str(info.value)
    assert changed.key(MODEL) in message
    assert "reportsum summarize --record --backend local 003_88b8b5c2e6747ca6.txt" in message
    assert request().key(MODEL) in message  # the nearest recording...
    assert "prompt_version 'label-v1' != 'label-v2'" in message  # ...and what differs
    assert "chunk 2 sentence 7" in message


def test_miss_is_not_retried_or_wrapped(tmp_path):
    async def job(backend):
        with pytest.raises(ReplayMiss):
            await backend.complete(request())
        return backend

    backend = replay(tmp_path, job)
    assert backend.name == "replay"


def test_make_backend_picks_replay_and_refuses_record(tmp_path):
    backend = make_backend(Settings(backend="replay", recordings=tmp_path))
    assert backend.name == "replay"
    asyncio.run(backend.aclose())
    with pytest.raises(ConfigError):
        make_backend(Settings(backend="replay", record=True, recordings=tmp_path))


def test_nearest_keys_prefers_the_same_context(tmp_path):
    other = request(context="article 001_x.txt chunk 0 sentence 0",
                    messages=[{"role": "user", "content": "完全不同"}])
    record(tmp_path, [request(), other])
    assert nearest_keys(tmp_path, request(prompt_version="v9"), MODEL)[0] == request().key(MODEL)


def test_old_recording_format_is_refused(tmp_path):
    key = "0" * 32
    (tmp_path / f"{key}.json").write_text('{"version": 0}', encoding="utf-8")
    with pytest.raises(ConfigError, match="version"):
        load_recording(tmp_path, key)


def test_record_missing_asks_the_model_only_about_exchanges_not_yet_recorded(tmp_path):
    first = request()
    record(tmp_path, [first], content='{"label": "A"}')
    second = request(messages=[{"role": "system", "content": "判断句子类别。"},
                               {"role": "user", "content": "全年完成投资12亿元。"}])
    with FakeOpenAIServer() as server:
        server.script(ok('{"label": "B"}'))
        config = Settings(backend="openai", model=MODEL, openai_base_url=server.base_url,
                          openai_api_key="sk-secret", recordings=tmp_path, record_missing=True)

        async def main():
            backend = make_backend(config)
            try:
                return [await backend.complete(r) for r in (first, second)]
            finally:
                await backend.aclose()

        old, new = asyncio.run(main())
        asked = len(server.requests)
    assert asked == 1  # only the new exchange reached the model
    assert json.loads(old.content) == {"label": "A"}  # the recorded answer, not a fresh one
    assert json.loads(new.content) == {"label": "B"}
    assert load_recording(tmp_path, second.key(MODEL))["response"]["content"] == '{"label": "B"}'
