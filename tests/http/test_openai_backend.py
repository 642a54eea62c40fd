"""The openai backend through the REAL SDK over loopback, against FakeOpenAIServer."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from service.backends.base import LLMRequest
from service.backends.openai import OpenAIBackend
from service.config import Settings
from service.errors import BackendError, BackendTimeout, InvalidOutput, TruncatedOutput
from service.extract import ask, schema_of
from service.recordings import RecordingBackend
from tests.doubles.requests import Label, label_request
from tests.doubles.fake_openai import FakeOpenAIServer, hang, length, malformed, ok, status

SECRET = "sk-test-DO-NOT-LEAK-1234567890"


def request(**overrides) -> LLMRequest:
    messages = [
        {"role": "system", "content": "你是政府工作报告分析助手。"},
        {"role": "user", "content": "句子：全年完成投资1.7亿元。标签？"},
    ]
    return label_request(**({"messages": messages} | overrides))




@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


def settings_for(server: FakeOpenAIServer, **overrides) -> Settings:
    fields = dict(backend="openai", model="fake-model", openai_base_url=server.base_url,
                  openai_api_key=SECRET, timeout=5.0, max_retries=2)
    return Settings(**(fields | overrides))


def run_with(settings: Settings, job):
    """Run ``job(backend)`` on a fresh event loop, always closing the backend."""

    async def main():
        backend = OpenAIBackend.from_settings(settings)
        try:
            return await job(backend)
        finally:
            await backend.aclose()

    return asyncio.run(main())


def test_429_with_retry_after_is_retried_by_the_sdk_and_counted(server):
    server.script(status(429, retry_after="1"), ok('{"label": "B"}'))
    started = time.monotonic()
    response = run_with(settings_for(server), lambda b: b.complete(request()))
    assert response.content == '{"label": "B"}'
    assert response.calls == 2 and len(server.requests) == 2
    assert time.monotonic() - started >= 0.9  # honoured Retry-After, not the 0.5 s backoff
    assert response.prompt_tokens > 0 and response.completion_tokens > 0


def test_500_then_success(server):
    server.script(status(500), ok('{"label": "A"}'))
    response = run_with(settings_for(server), lambda b: b.complete(request()))
    assert (response.content, response.calls, len(server.requests)) == ('{"label": "A"}', 2, 2)


def test_503_after_all_sdk_retries_is_a_backend_error_without_the_key(server):
    server.script(status(503), status(503))
    with pytest.raises(BackendError) as info:
        run_with(settings_for(server, max_retries=1), lambda b: b.complete(request()))
    assert "503" in str(info.value) and SECRET not in str(info.value)
    assert len(server.requests) == 2  # no retry loop of ours on top of the SDK's


def test_unauthorized_is_not_retried_and_never_echoes_the_key(server):
    server.script(status(401, error=f"Incorrect API key provided: {SECRET}"))
    with pytest.raises(BackendError) as info:
        run_with(settings_for(server), lambda b: b.complete(request()))
    assert "401" in str(info.value) and SECRET not in str(info.value)
    assert len(server.requests) == 1


def test_hang_becomes_backend_timeout_after_retries(server):
    server.script(hang(5), hang(5))
    with pytest.raises(BackendTimeout) as info:
        run_with(settings_for(server, timeout=0.3, max_retries=1), lambda b: ask(b, request(), Label))
    assert len(server.requests) == 2
    assert info.value.calls == 2 and info.value.usage.llm_calls == 2  # the failure is counted too


def test_prompt_version_header_and_schema_are_sent(server):
    run_with(settings_for(server), lambda b: b.complete(request()))
    sent = server.requests[0]
    assert sent.headers["x-reportsum-prompt-version"] == "label-v1"
    assert "x-reportsum-context" not in sent.headers  # article names stay home
    fmt = sent.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema_of(Label)
    assert sent.body["messages"] == request().messages


def test_malformed_json_gets_one_repair_round(server):
    server.script(malformed(), ok('{"label": "A"}'))
    value, usage = run_with(settings_for(server), lambda b: ask(b, request(), Label))
    assert value == Label(label="A") and usage.llm_calls == 2
    repair = server.requests[1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"label": "A", '}
    assert "JSON" in repair[-1]["content"]


def test_fenced_json_in_prose_needs_no_repair(server):
    server.script(ok('当然！\n```json\n{"label": "C"}\n```\n希望有帮助。'))
    value, usage = run_with(settings_for(server), lambda b: ask(b, request(), Label))
    assert value == Label(label="C") and usage.llm_calls == 1


def test_schema_invalid_reply_is_repaired_with_the_validation_error(server):
    server.script(ok('{"label": "Z"}'), ok('{"label": "B"}'))
    value, usage = run_with(settings_for(server), lambda b: ask(b, request(), Label))
    assert value == Label(label="B") and usage.llm_calls == 2
    assert "label" in server.requests[1].body["messages"][-1]["content"]


def test_still_invalid_after_repair_raises_invalid_output(server):
    server.script(ok('{"label": "Z"}'), ok("not json at all"))
    with pytest.raises(InvalidOutput) as info:
        run_with(settings_for(server), lambda b: ask(b, request(), Label))
    assert len(server.requests) == 2 and info.value.usage.llm_calls == 2


def test_blank_reply_is_asked_again_once(server):
    server.script(ok("   "), ok('{"label": "A"}'))
    value, usage = run_with(settings_for(server), lambda b: ask(b, request(), Label))
    assert value == Label(label="A") and usage.llm_calls == 2
    assert server.requests[0].body == server.requests[1].body


def test_truncated_reply_raises_without_a_reask(server):
    server.script(length())
    with pytest.raises(TruncatedOutput) as info:
        run_with(settings_for(server), lambda b: ask(b, request(), Label))
    assert len(server.requests) == 1 and info.value.usage.llm_calls == 1


def test_llama_cpp_rejecting_json_schema_falls_back_to_json_object_and_remembers(server):
    server.reject("json_schema", like="llama.cpp")

    async def job(backend):
        first = await backend.complete(request())
        second = await backend.complete(request(prompt_version="label-v2"))
        return backend, first, second

    backend, first, second = run_with(settings_for(server, max_retries=1), job)
    kinds = [r.body.get("response_format", {}).get("type") for r in server.requests]
    # the SDK retries the 500 once, then the dialect falls back; the second call goes direct
    assert kinds == ["json_schema", "json_schema", "json_object", "json_object"]
    assert (first.calls, second.calls) == (3, 1) and backend.dialect == "json_object"
    fallback = server.requests[2].body
    assert fallback["response_format"]["schema"] == schema_of(Label)
    assert "json" in json.dumps(fallback["messages"], ensure_ascii=False).lower()


def test_deepseek_rejecting_schemas_lands_on_plain_json_object(server):
    server.reject("json_schema", like="deepseek").reject("json_object_schema", like="deepseek")
    response = run_with(settings_for(server), lambda b: b.complete(request()))
    formats = [r.body.get("response_format") for r in server.requests]
    assert formats[-1] == {"type": "json_object"} and len(formats) == 3 and response.calls == 3
    assert "JSON" in server.requests[-1].body["messages"][0]["content"]  # DeepSeek needs the word


def test_forced_none_mode_sends_no_response_format(server):
    run_with(settings_for(server, structured_mode="none"), lambda b: b.complete(request()))
    body = server.requests[0].body
    assert "response_format" not in body and "Schema" in body["messages"][0]["content"]


def test_concurrent_first_calls_probe_the_dialect_once(server):
    server.reject("json_schema", like="deepseek")

    async def job(backend):
        return await asyncio.gather(*(backend.complete(request(prompt_version=f"v{i}")) for i in range(4)))

    responses = run_with(settings_for(server), job)
    kinds = [r.body.get("response_format", {}).get("type") for r in server.requests]
    assert kinds.count("json_schema") == 1 and len(kinds) == 5
    assert sum(r.calls for r in responses) == 5  # every request counted exactly once


def test_recordings_never_hold_the_key_headers_or_url(server, tmp_path):
    async def job(backend):
        recorder = RecordingBackend(backend, tmp_path)
        assert (recorder.name, recorder.model) == ("openai", "fake-model")
        return await recorder.complete(request())

    run_with(settings_for(server), job)
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was sent...
    [path] = tmp_path.glob("*.json")
    text = path.read_text(encoding="utf-8")  # ...and never written
    for leak in (SECRET, "Bearer", "uthorization", server.base_url, "127.0.0.1"):
        assert leak not in text
    saved = json.loads(text)
    assert saved["version"] == 1 and saved["key"] == request().key("fake-model") == path.stem
    assert "全年完成投资1.7亿元" in text  # ensure_ascii=False: readable fixtures


def test_calls_go_through_the_sdks_aiohttp_transport_and_reuse_its_connections(server):
    """The default HTTP client is the SDK's aiohttp one (a third less CPU per call than
    httpx2's pool under load). 80 calls at once all complete; a second wave of 80 reuses the
    kept-alive connections instead of opening new ones."""
    from openai._vendor.httpx_aiohttp import AiohttpTransport

    async def job(backend):
        transport = backend._client._client._transport
        assert isinstance(transport, AiohttpTransport)
        first = await asyncio.gather(*(backend.complete(request()) for _ in range(80)))
        connector = transport.get_client().connector
        kept = sum(len(conns) for conns in connector._conns.values())
        second = await asyncio.gather(*(backend.complete(request()) for _ in range(80)))
        return first + second, kept, sum(len(conns) for conns in connector._conns.values())

    server.latency = 0.05
    replies, kept, kept_after = run_with(settings_for(server), job)
    assert len(replies) == 160 and all(r.content and r.calls == 1 for r in replies)
    assert 0 < kept <= 80 and 0 < kept_after <= 80  # wave two opened none beyond those kept
    assert len(server.requests) == 160


def test_requests_carry_our_idempotency_key_so_the_sdk_draws_no_uuid4(server, monkeypatch):
    # uuid4 is an os.urandom system call per request, dear in a sandbox; our keys are unique
    # per request and differ in a forked child
    import os

    import openai._base_client as sdk

    from service.backends import openai as backend_module

    def no_uuid4():
        raise AssertionError("the SDK drew its own idempotency key")

    monkeypatch.setattr(sdk.uuid, "uuid4", no_uuid4)
    settings = settings_for(server)
    got = run_with(settings, lambda b: asyncio.gather(*(b.complete(request()) for _ in range(3))))
    assert len(got) == 3 and len(server.requests) == 3

    keys = [next(backend_module._KEYS) for _ in range(3)]
    assert len(set(keys)) == 3
    read, write = os.pipe()
    if (pid := os.fork()) == 0:  # a forked child draws its own prefix
        os.write(write, next(backend_module._KEYS).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    assert child.rsplit("-", 1)[0] != keys[0].rsplit("-", 1)[0]
