"""``batch --ray`` on a real local Ray cluster against the loopback fake endpoint.

One Ray cluster (2 CPUs, node address 127.0.0.1, no dashboard) and one fake server serve
the whole module, because starting Ray costs seconds on this machine. The 40 articles are
the plain batch's kind (pieces of the fixture reports, plus an empty and a binary file);
the plain ``run_batch`` digests them once, and every Ray run is compared with that.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

# Ray >= 2.x turns _node_ip_address="127.0.0.1" into the machine's external address and
# binds its gRPC servers to every interface; with "clusters disabled" (read once, when ray
# is imported) the node address stays 127.0.0.1 and every server binds to loopback only.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
import ray  # noqa: E402

from service import batch as batch_module
from service.batch import INDEX_NAME, output_path, read_index, run_batch
from service.batch_ray import WORKER_PREFIX, default_workers, run_batch_ray, shares
from service.cli import build_parser
from service.errors import ConfigError
from tests.doubles.fake_openai import FakeOpenAIServer, status
from tests.e2e.test_batch import ARTICLES, piece, settings_for

N_GOOD = 38
BAD = {"empty.txt", "sub/binary.md"}
TIMING = {"seconds"}  # the only index/meta fields that may differ between two runs


class GaugeServer(FakeOpenAIServer):
    """The fake endpoint, measuring how many requests it holds at once.

    Each request is held ``hold`` seconds inside ``decide`` while counted, so the peak is
    a lower bound of the true in-flight count (the reply is written after the decrement).
    """

    def __init__(self) -> None:
        super().__init__()
        self.hold = 0.0
        self.in_flight = 0
        self.peak = 0
        self._gauge = threading.Lock()

    def decide(self, received):
        with self._gauge:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold:
                time.sleep(self.hold)
            return super().decide(received)
        finally:
            with self._gauge:
                self.in_flight -= 1

    def reset(self, hold: float = 0.0, latency: float = 0.0) -> None:
        self.requests.clear()
        self.peak, self.hold, self.latency = 0, hold, latency


@pytest.fixture(scope="module")
def cluster():
    # Workers inherit the environment Ray starts with: no proxy for loopback, no user
    # endpoint; and no usage-stats report (no network beyond loopback).
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("OPENAI_", "REPORTSUM_")) or name.lower().endswith("_proxy"):
                mp.delenv(name)
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                 object_store_memory=100 * 1024 * 1024, logging_level="WARNING")
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]  # one node, on loopback
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def server():
    with GaugeServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("ray-corpus")
    for i in range(N_GOOD):
        sub = src / f"region{i % 3}"
        sub.mkdir(exist_ok=True)
        (sub / f"r{i:02}.txt").write_text(piece(ARTICLES[i % 5], 2 + i % 4, 300) + f"第{i}篇。\n", encoding="utf-8")
    (src / "empty.txt").write_bytes(b"")
    (src / "sub").mkdir()
    (src / "sub" / "binary.md").write_bytes(bytes(range(256)) * 8)
    return src


@pytest.fixture(scope="module")
def plain(corpus, server, tmp_path_factory) -> Path:
    """The single-machine batch's outputs: what every Ray run must reproduce."""
    tmp = tmp_path_factory.mktemp("plain")
    server.reset()
    rc = run_batch(corpus, tmp / "out", settings_for(server, tmp, no_cache=True), formats={"json", "md", "csv"},
                   shard=None, show_progress=False)
    assert rc == 1  # the two bad files
    return tmp / "out"


def ray_batch(corpus: Path, out: Path, settings, formats=("json",), workers: int = 2) -> int:
    return run_batch_ray(corpus, out, settings, formats=set(formats), shard=None, show_progress=False,
                         workers=workers)


def digest_of(path: Path) -> dict:
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj["meta"] = {k: v for k, v in obj["meta"].items() if k not in TIMING}
    return obj


def untimed(index: dict[str, dict]) -> dict[str, dict]:
    return {rel: {k: v for k, v in e.items() if k not in TIMING} for rel, e in index.items()}


def markdown_of(path: Path) -> str:
    return re.sub(r"[\d.]+ 秒", "", path.read_text(encoding="utf-8"))  # the footer shows seconds


def assert_same_as_plain(out: Path, plain: Path, formats=("json",)) -> dict[str, dict]:
    index = read_index(out / INDEX_NAME)
    assert untimed(index) == untimed(read_index(plain / INDEX_NAME))
    for rel, e in index.items():
        if e["status"] == "failed":
            assert not output_path(out, rel, "json").exists()
            continue
        assert digest_of(output_path(out, rel, "json")) == digest_of(output_path(plain, rel, "json")), rel
        if "md" in formats:
            assert markdown_of(output_path(out, rel, "md")) == markdown_of(output_path(plain, rel, "md")), rel
    if "csv" in formats:
        assert (out / "items.csv").read_bytes() == (plain / "items.csv").read_bytes()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    return index


def test_same_results_as_plain_batch_one_concurrency_limit_and_a_rerun_makes_no_calls(
        cluster, corpus, plain, server, tmp_path):
    out = tmp_path / "out"
    settings = settings_for(server, tmp_path, concurrency=4, no_cache=True)
    # hold each request a little so the limit is actually reached, and measurable
    server.reset(hold=0.05)
    assert ray_batch(corpus, out, settings, formats=("json", "md", "csv")) == 1

    index = assert_same_as_plain(out, plain, formats=("json", "md", "csv"))
    assert sum(e["status"] == "done" for e in index.values()) == N_GOOD
    assert {r for r, e in index.items() if e["status"] == "failed"} == BAD
    assert "empty" in index["empty.txt"]["error"] and "binary" in index["sub/binary.md"]["error"]
    # every model call went through the cluster, once, and counted honestly
    assert len(server.requests) == sum(e["llm_calls"] for e in index.values()) > N_GOOD
    # --concurrency 4 split 2 + 2 over two workers: the endpoint never sees more than 4
    assert 3 <= server.peak <= 4, server.peak

    server.reset()
    assert ray_batch(corpus, out, settings, formats=("json", "md", "csv")) == 1
    assert server.requests == []
    rerun = read_index(out / INDEX_NAME)
    assert {r for r, e in rerun.items() if e["status"] == "skipped"} == set(index) - BAD
    assert {r for r, e in rerun.items() if e["status"] == "failed"} == BAD
    assert all(rerun[r]["plans"] == index[r]["plans"] and rerun[r]["tokens"] == 0 for r in rerun)
    assert (out / "items.csv").read_bytes() == (plain / "items.csv").read_bytes()


def test_a_failed_article_is_listed_with_its_error_and_only_it_is_retried(cluster, corpus, plain, server, tmp_path):
    out = tmp_path / "out"
    settings = settings_for(server, tmp_path, concurrency=2, max_retries=0)
    server.reset()
    server.script(status(500))  # with max_retries=0 the first model call fails for good
    assert ray_batch(corpus, out, settings) == 1
    index = read_index(out / INDEX_NAME)
    failed = {r for r, e in index.items() if e["status"] == "failed"} - BAD
    assert len(failed) == 1 and len(index) == N_GOOD + len(BAD)
    (rel,) = failed
    assert "InternalServerError" in index[rel]["error"] or "500" in index[rel]["error"]
    assert index[rel]["llm_calls"] >= 1  # the failed call is counted, as plain batch counts it
    assert not output_path(out, rel, "json").exists()

    server.reset()
    assert ray_batch(corpus, out, settings) == 1  # the bad files still fail
    rerun = read_index(out / INDEX_NAME)
    assert rerun[rel]["status"] == "done"
    assert {r for r, e in rerun.items() if e["status"] == "skipped"} == set(index) - BAD - failed
    assert len(server.requests) == rerun[rel]["llm_calls"] > 0
    assert digest_of(output_path(out, rel, "json")) == digest_of(output_path(plain, rel, "json"))


def test_a_worker_killed_mid_run_loses_nothing_and_nothing_is_written_twice(
        cluster, corpus, plain, server, tmp_path, monkeypatch):
    out = tmp_path / "out"
    settings = settings_for(server, tmp_path, concurrency=4, no_cache=True)
    server.reset(latency=0.15)  # articles stay in flight long enough to be caught mid-way

    writes: Counter[str] = Counter()
    real_write = batch_module.atomic_write

    def counting_write(path, data, **kw):
        writes[Path(path).relative_to(out).as_posix()] += 1
        return real_write(path, data, **kw)

    monkeypatch.setattr(batch_module, "atomic_write", counting_write)
    ours = lambda: {n for n in ray.util.list_named_actors() if n.startswith(WORKER_PREFIX)}  # noqa: E731
    before = ours()  # names of earlier runs' workers may linger a moment after ray.kill
    result: dict = {}
    run = threading.Thread(target=lambda: result.setdefault("rc", ray_batch(corpus, out, settings)))
    run.start()
    try:
        deadline = time.monotonic() + 120
        while len(list(out.rglob("r*.txt.json"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        names = sorted(ours() - before)
        assert len(names) == 2, names
        victim = ray.get_actor(names[0])
        pid = ray.get(victim.identity.remote(), timeout=30)["pid"]
        os.kill(pid, signal.SIGKILL)
        killed_at = len(list(out.rglob("r*.txt.json")))
    finally:
        run.join(timeout=300)
    assert not run.is_alive()
    assert killed_at < N_GOOD  # the kill landed mid-run, not after the last article

    assert result["rc"] == 1  # only the two bad files failed
    index = assert_same_as_plain(out, plain)
    assert sum(e["status"] == "done" for e in index.values()) == N_GOOD
    # the dead worker's in-flight calls were wasted and its articles re-sent: the endpoint
    # saw more requests than the digests account for
    assert len(server.requests) > sum(e["llm_calls"] for e in index.values())
    # every output written exactly once, by the driver, and the index once at the end
    assert writes == Counter({**{f"{r}.json": 1 for r, e in index.items() if e["status"] == "done"}, INDEX_NAME: 1})


def test_a_worker_that_cannot_build_its_backend_fails_the_run_with_the_reason(cluster, corpus, tmp_path):
    from service.config import Settings

    bad = Settings(backend="replay", record=True, quiet=True, no_cache=True)  # --record needs a real backend
    with pytest.raises(ConfigError, match="could not start its backend.*--record"):
        ray_batch(corpus, tmp_path / "out", bad)
    deadline = time.monotonic() + 20  # ray.kill is asynchronous: the names go shortly after
    while [n for n in ray.util.list_named_actors() if n.startswith(WORKER_PREFIX)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [n for n in ray.util.list_named_actors() if n.startswith(WORKER_PREFIX)]


def test_workers_default_to_one_per_cpu_or_one_per_node_for_the_embedded_model(cluster, monkeypatch):
    from service.config import Settings

    monkeypatch.delenv("REPORTSUM_RAY_WORKERS", raising=False)
    assert default_workers(ray, Settings(backend="openai"), 16) == 2  # num_cpus=2
    assert default_workers(ray, Settings(backend="openai"), 1) == 1  # never more than the limit
    assert default_workers(ray, Settings(backend="local"), 16) == 1  # one node: one model copy
    monkeypatch.setenv("REPORTSUM_RAY_WORKERS", "3")
    assert default_workers(ray, Settings(backend="local"), 16) == 3
    monkeypatch.setenv("REPORTSUM_RAY_WORKERS", "many")
    with pytest.raises(ConfigError, match="REPORTSUM_RAY_WORKERS"):
        default_workers(ray, Settings(backend="openai"), 16)


def test_concurrency_shares_sum_to_the_limit():
    assert shares(4, 2) == [2, 2]
    assert shares(5, 2) == [3, 2]
    assert shares(3, 8) == [1, 1, 1]  # never more workers than model-call slots
    assert sum(shares(32, 7)) == 32 and min(shares(32, 7)) >= 4


def test_cli_ray_option_takes_an_optional_address():
    parse = build_parser().parse_args
    assert parse(["batch", "in", "-o", "out"]).ray is None
    assert parse(["batch", "in", "-o", "out", "--ray"]).ray == ""  # start a local cluster
    assert parse(["batch", "in", "-o", "out", "--ray", "auto"]).ray == "auto"
