"""Ray batch benchmark: 2,000 short articles, plain ``batch`` vs ``batch --ray``, one machine.

    python bench/ray_bench.py                  # about 3 minutes on 2 cores
    python bench/ray_bench.py --articles 500   # quicker

Both runs use the same fake OpenAI-compatible endpoint (``--latency`` 0.25 s per call, in
its own process, from ``bench/batch_bench.py``) and the same total ``--concurrency``, with
the digest cache off. Printed for each: model calls (counted by the endpoint), wall time,
the ideal ``calls x latency / concurrency``, their ratio (target <= 1.3, issue 16), and the
peak RSS of the batch process (for Ray: the driver; workers are separate processes). Each
batch runs in a fresh child process, so the figures are its own; the Ray child starts a
local cluster (one worker per CPU), whose start-up is reported apart from the batch.

Articles: labels are partly decided by cue words without the model, so a random piece of a
report may cost no call at all and measure nothing. The bench first digests every short
paragraph of the fixture reports once (zero latency), keeps those that cost 1 to
``--max-calls`` model calls, and builds the articles from them (a numbered title line plus
one such paragraph). The plain run's index then reports how many articles made calls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from batch_bench import Server, _paragraphs  # noqa: E402  (the counting fake endpoint, fixture paragraphs)


def title(i: int) -> str:
    return f"第{i + 1}期 卫生健康工作推进情况通报"


def article(i: int, paragraph: str) -> str:
    return title(i) + "\n\n" + paragraph + "\n"


def calling_paragraphs(work: Path, max_calls: int, max_chars: int) -> list[str]:
    """Fixture paragraphs that, as an article of their own, cost 1..max_calls model calls."""
    from service.batch import read_index, run_batch
    from service.config import Settings
    from tests.doubles.fake_openai import FakeOpenAIServer

    paras = sorted({p for doc in _paragraphs() for p in doc if 40 <= len(p) <= max_chars})
    src = work / "probe"
    src.mkdir()
    for j, p in enumerate(paras):
        (src / f"p{j:04}.txt").write_text(article(0, p), encoding="utf-8")
    with FakeOpenAIServer() as srv:
        settings = Settings(backend="openai", openai_base_url=srv.base_url, openai_api_key="bench",
                            model="bench-model", concurrency=16, no_cache=True, quiet=True)
        run_batch(src, work / "probe-out", settings, formats={"json"}, shard=None, show_progress=False)
    index = read_index(work / "probe-out" / "index.jsonl")
    return [p for j, p in enumerate(paras) if 1 <= index[f"p{j:04}.txt"]["llm_calls"] <= max_calls]


def make_corpus(directory: Path, n: int, paragraphs: list[str]) -> None:
    for i in range(n):
        path = directory / f"region{i % 8:02}" / f"report{i:05}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(article(i, paragraphs[i % len(paragraphs)]), encoding="utf-8")


# --------------------------------------------------------------------------- one batch (child process)


def child(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["plain", "ray"])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--base-url", required=True)
    p.add_argument("--concurrency", type=int, required=True)
    a = p.parse_args(argv)
    from service.config import Settings

    settings = Settings(backend="openai", openai_base_url=a.base_url, openai_api_key="bench", model="bench-model",
                        concurrency=a.concurrency, timeout=10, no_cache=True, quiet=True)
    result: dict = {}
    if a.mode == "plain":
        from service.batch import run_batch as run
    else:
        from service.batch_ray import connect, run_batch_ray as run

        t0 = time.perf_counter()
        connect(None, quiet=True)
        result["cluster_start_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result["rc"] = run(Path(a.src), Path(a.out), settings, formats={"json"}, shard=None, show_progress=False)
    result["seconds"] = time.perf_counter() - t0
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(result))


def run_child(mode: str, src: Path, out: Path, server: Server, concurrency: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(src), str(out), "--base-url", server.base_url,
           "--concurrency", str(concurrency)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"{mode} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--articles", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--concurrency", type=int, default=16, help="total model calls in flight, both runs")
    p.add_argument("--max-calls", type=int, default=2, help="most model calls of one article")
    p.add_argument("--max-chars", type=int, default=300, help="longest paragraph used")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = p.parse_args()

    from service.batch import read_index

    work = Path(tempfile.mkdtemp(prefix="reportsum-ray-bench-"))
    ok = True
    try:
        t0 = time.perf_counter()
        paras = calling_paragraphs(work, a.max_calls, a.max_chars)
        if not paras:
            raise SystemExit("no fixture paragraph costs a model call: nothing to measure")
        src = work / "reports"
        make_corpus(src, a.articles, paras)
        print(f"corpus: {a.articles} articles, each a title and one of {len(paras)} paragraphs (<= {a.max_chars}"
              f" chars) that cost 1-{a.max_calls} model calls; built in {time.perf_counter() - t0:.1f}s")
        print(f"endpoint latency {a.latency}s, total concurrency {a.concurrency}, {os.cpu_count()} CPUs, cache off\n")
        for mode in ("plain", "ray"):
            with Server(a.latency) as server:
                out = work / f"out-{mode}"
                r = run_child(mode, src, out, server, a.concurrency)
                index = read_index(out / "index.jsonl")
            calls = server.calls
            ideal = calls * a.latency / a.concurrency
            ratio = r["seconds"] / ideal
            statuses = Counter(e["status"] for e in index.values())
            silent = sum(e["llm_calls"] == 0 for e in index.values())
            good = ratio <= 1.3 and statuses.get("done") == a.articles
            ok &= good
            label = "batch" if mode == "plain" else "batch --ray"
            print(f"[{label}] model calls {calls}; wall {r['seconds']:.1f}s; ideal {ideal:.1f}s;"
                  f" ratio {ratio:.2f} (target <= 1.3) -> {'PASS' if good else 'FAIL'}")
            extra = f"; cluster start {r['cluster_start_seconds']:.1f}s (not in wall)" if mode == "ray" else ""
            print(f"    index {dict(statuses)}; articles without a model call {silent};"
                  f" peak driver RSS {r['peak_rss_mb']:.0f} MB{extra}")
    finally:
        if a.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'ALL PASS' if ok else 'SOME TARGETS MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        sys.exit(main())
