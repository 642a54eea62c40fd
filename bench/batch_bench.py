"""Batch benchmark: throughput, resume, failures and memory against the fake endpoint.

    python bench/batch_bench.py                    # all four phases (about 2-3 minutes)
    python bench/batch_bench.py --skip-memory      # without the 2,000-article phase
    python bench/batch_bench.py --skip-failures --latencies 0.25,0.05   # issue 26's figures
    python bench/batch_bench.py --skip-failures --skip-memory --latencies 0.05 --profile 40
                                                   # cProfile of the batch's event loop: top 40

Phases (targets from issues 7 and 26):
 1. 120 articles cut from the seed reports (``fixtures/articles``), the openai backend
    (so the context strategy), a fake OpenAI-compatible server with 250 ms latency per
    call, ``--concurrency 16``: wall time vs the ideal ``calls x latency / 16`` (target
    <= 1.3x at 250 ms; with ``--latencies 0.25,0.05`` also at 50 ms, target <= 1.6x).
 2. The same batch again: model calls (target 0) and wall time (seconds).
 3. 20% of calls failing (429, 500, 503, malformed JSON, truncated reply, a hang past the
    client timeout): every article ends done or failed, none missing; a rerun sends only
    the failed ones to the model, and those done with a chunk that fell back after failed
    calls (``meta.failed_chunks``: redone by design).
 4. 2,000 small articles: peak RSS of the batch process (target < 300 MB), and the peak
    of its whole process tree (the batch plus its CPU pool's workers and fork server) as
    PSS, which counts pages the workers share with the fork server once.

Every batch runs in a fresh child process (what ``reportsum batch`` does), and the fake
server in another, so the timings and the RSS are the batch's own. The child imports the
pipeline and the openai SDK before the clock starts (process start-up, printed apart); each
throughput run prints when the first model call arrived, the span from first to last call,
and the CPU seconds of the batch process (per model call: the figure that does not move with
the machine's load), of its CPU pool and of the fake endpoint. Model calls are
counted by the server (HTTP requests received, SDK retries and repair rounds included).
The batch prepares articles in a process pool (``service.cpupool``), so the CPU figure
printed for each run is the batch process's plus its workers'.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "fixtures" / "articles"


# --------------------------------------------------------------------------- fake server


def _serve(port: int, latency: float, fail_rate: float, seed: int, hang_s: float, keep_nagle: bool,
           counter, span, ready) -> None:
    from tests.doubles.fake_openai import FakeOpenAIServer, hang, length, malformed, status

    failures = [
        lambda: status(429, retry_after="0.2"),
        lambda: status(500),
        lambda: status(503),
        malformed,
        lambda: length('{"label": "成'),
        lambda: hang(hang_s),
    ]

    class CountingServer(FakeOpenAIServer):
        """The test double, counting requests and failing ``fail_rate`` of them in all the
        ways issue 7 lists (the double's own ``--fail-rate`` answers only 429/503)."""

        def decide(self, received):
            with counter.get_lock():
                counter.value += 1
                now = time.time()
                span[0] = span[0] or now  # when the first and the latest call arrived
                span[1] = now
            behaviour = super().decide(received)
            self.requests.clear()  # do not grow without bound over thousands of requests
            if fail_rate and self._random.random() < fail_rate:
                return self._random.choice(failures)()
            return behaviour

    server = CountingServer("127.0.0.1", port, latency=latency, fail_rate=0.0, seed=seed)
    # http.server writes headers and body in two sends; with Nagle on, the client's delayed
    # ACK adds ~45 ms to every call (measured), which is the double's artefact, not latency
    # any real server (uvicorn, vLLM) adds. --keep-nagle measures with it.
    server._httpd.RequestHandlerClass.disable_nagle_algorithm = not keep_nagle
    ready.set()
    server._httpd.serve_forever()


class Server:
    keep_nagle = False

    def __init__(self, latency: float, fail_rate: float = 0.0, hang_s: float = 3.0, seed: int = 7):
        ctx = multiprocessing.get_context("spawn")
        self.counter = ctx.Value("l", 0)
        self.span = ctx.Array("d", 2)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        ready = ctx.Event()
        self.proc = ctx.Process(
            target=_serve, args=(self.port, latency, fail_rate, seed, hang_s, self.keep_nagle, self.counter, self.span, ready), daemon=True
        )
        self.proc.start()
        if not ready.wait(30):
            raise RuntimeError("fake server did not start")
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> int:
        return self.counter.value

    def cpu(self) -> float:
        """CPU seconds the fake server has used (it shares the machine's cores with the batch)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset(self) -> None:
        with self.counter.get_lock():
            self.counter.value = 0
            self.span[0] = self.span[1] = 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- corpus


def _paragraphs() -> list[list[str]]:
    return [
        [p.strip() for p in f.read_text(encoding="utf-8").split("\n") if p.strip()]
        for f in sorted(FIXTURES.glob("*.txt"))
    ]


def make_corpus(directory: Path, n: int, chars: int, seed: int = 1) -> None:
    """``n`` distinct articles of about ``chars`` characters, cut from the fixture reports,
    in a few sub-folders; written one by one."""
    rng = random.Random(seed)
    sources = _paragraphs()
    for i in range(n):
        paras = sources[i % len(sources)]
        start = rng.randrange(len(paras))
        body, size = [], 0
        j = start
        while size < chars:
            body.append(paras[j % len(paras)])
            size += len(body[-1])
            j += 1
        title = f"第{i + 1}期 卫生健康工作推进情况通报"
        path = directory / f"region{i % 6:02}" / f"report{i:05}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(title + "\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- one batch (child process)


def child(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--base-url", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--formats", default="json")
    p.add_argument("--profile", type=int, default=0)
    p.add_argument("--sample-every", type=float, default=1.0)
    a = p.parse_args(argv)
    # Imports are process start-up (1.5-2 s here, the openai SDK's types most of it), not
    # throughput: done before the clock starts and reported apart. At 50 ms per call the whole
    # ideal batch is 2.5 s, so counting them would put 1.6x out of reach before any call.
    t_import = time.perf_counter()
    import service.backends.openai  # noqa: F401
    import service.pipeline  # noqa: F401
    from service.batch import run_batch
    from service.config import Settings

    imports = time.perf_counter() - t_import

    settings = Settings(
        backend="openai", openai_base_url=a.base_url, openai_api_key="bench", model="bench-model",
        concurrency=a.concurrency, timeout=a.timeout, cache=Path(a.cache), quiet=True,
    )
    sampler = TreeMemory(a.sample_every)
    profiler = _start_profile() if a.profile else None
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    t0 = time.perf_counter()
    rc = run_batch(Path(a.src), Path(a.out), settings, formats=set(a.formats.split(",")), shard=None,
                   show_progress=False)
    seconds = time.perf_counter() - t0
    if profiler is not None:
        _print_profile(profiler, a.profile)
    sampler.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"rc": rc, "seconds": seconds, "imports": imports, "started": started, "peak_rss_mb": peak_mb, "tree_pss_mb": sampler.peak_mb,
                      "cpu_own": own.ru_utime + own.ru_stime - before.ru_utime - before.ru_stime,
                      "cpu_pool": kids.ru_utime + kids.ru_stime + sampler.pool_cpu}))


def _start_profile():  # type: ignore[no-untyped-def]
    """cProfile of the batch process's main thread: the event loop, where every model call's
    own CPU (SDK, parsing, checks) competes with the others' (threads and the pool are not in it)."""
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _print_profile(profiler, top: int) -> None:  # type: ignore[no-untyped-def]
    import io
    import pstats

    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(buf.getvalue(), file=sys.stderr)


class TreeMemory:
    """Samples the proportional set size (PSS) of this process and its descendants (Linux
    /proc) every 0.2 s; keeps the peak of the sum, and the CPU time of the descendants
    (they are the fork server's children, so RUSAGE_CHILDREN never sees them)."""

    def __init__(self, every: float = 0.2) -> None:
        # each sample reads every /proc/<pid>/stat on the machine (~8 ms of this process's
        # GIL): the throughput runs sample once a second, the memory phase every 0.2 s
        self.every = every
        self.peak_mb = 0.0
        self.pool_cpu = 0.0
        self._cpu: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            self.peak_mb = max(self.peak_mb, self._sample())
        self.pool_cpu = sum(self._cpu.values())

    def _sample(self) -> float:
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        total_kb, todo, tick = 0, [os.getpid()], os.sysconf("SC_CLK_TCK")
        while todo:
            pid = todo.pop()
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                if pid != os.getpid():
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    self._cpu[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            except OSError:
                pass
            todo += children.get(pid, [])
        return total_kb / 1024


PROFILE_TOP = 0  # --profile N: the batch child prints its top N functions (cProfile)


def run_child(src: Path, out: Path, server: Server, cache: Path, concurrency: int, timeout: float,
              formats: str = "json", sample_every: float = 1.0) -> dict:
    cmd = [sys.executable, __file__, "--child", str(src), str(out), "--base-url", server.base_url,
           "--cache", str(cache), "--concurrency", str(concurrency), "--timeout", str(timeout),
           "--formats", formats, "--profile", str(PROFILE_TOP), "--sample-every", str(sample_every)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"batch child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    if PROFILE_TOP:
        print(f"\n--- profile of the batch process's event loop ({src.name} -> {out.name}) ---\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def read_index(out: Path) -> dict[str, dict]:
    from service.batch import read_index as _read

    return _read(out / "index.jsonl")


def statuses(index: dict[str, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in index.values():
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    return counts


# --------------------------------------------------------------------------- phases


TARGETS = {0.25: 1.3, 0.05: 1.6}  # ratio to the ideal by latency (issue 26); 1.3 for any other


def throughput(src: Path, work: Path, a: argparse.Namespace, latency: float, out: str) -> bool:
    """Phase 1 at one latency, in a fresh output folder and cache."""
    with Server(latency) as server:
        cpu0 = server.cpu()
        r = run_child(src, work / out, server, work / f"cache-{out}.sqlite3", a.concurrency, timeout=10)
        r["cpu_server"] = server.cpu() - cpu0
        r["span"] = tuple(server.span)
        return report_throughput(r, server.calls, work / out, a, latency)


def report_throughput(r: dict, calls: int, out: Path, a: argparse.Namespace, latency: float) -> bool:
    ideal = calls * latency / a.concurrency
    ratio = r["seconds"] / ideal if ideal else float("nan")
    target = TARGETS.get(latency, 1.3)
    st = statuses(read_index(out))
    print(f"\n[1] throughput: {a.articles} articles, latency {latency}s, concurrency {a.concurrency}")
    print(f"    model calls {calls}; wall {r['seconds']:.2f}s (process {r['process_seconds']:.2f}s, imports before"
          f" the batch {r['imports']:.2f}s); ideal {ideal:.2f}s; ratio {ratio:.3f} (target <= {target})"
          f" -> {'PASS' if ratio <= target else 'FAIL'}")
    first, last = r["span"]
    print(f"    first model call {first - r['started']:.2f}s after the start (the CPU pool starting, the first"
          f" articles prepared); calls from first to last {last - first:.2f}s"
          f" ({(last - first) / ideal if ideal else float('nan'):.3f} x the ideal)")
    print(f"    index: {st}; CPU {r['cpu_own']:.1f}s in the batch process ({r['cpu_own'] / max(calls, 1) * 1000:.1f} ms"
          f" per model call; imports not counted), {r['cpu_pool']:.1f}s in its CPU pool,"
          f" {r['cpu_server']:.1f}s in the fake endpoint;"
          f" peak RSS {r['peak_rss_mb']:.0f} MB, process tree PSS {r['tree_pss_mb']:.0f} MB")
    return ratio <= target and st.get("done") == a.articles


def failures(src: Path, work: Path, a: argparse.Namespace) -> bool:
    """Phase 3: a share of the calls fail in every way; then a rerun retries just the failed."""
    ok = True
    timeout = 2.0
    with Server(a.latency, fail_rate=a.fail_rate, hang_s=timeout + 1.5) as server:
        out3, cache3 = work / "out3", work / "cache3.sqlite3"
        r3 = run_child(src, out3, server, cache3, a.concurrency, timeout=timeout)
        idx = read_index(out3)
        st3 = statuses(idx)
        missing = a.articles - len(idx)
        print(f"\n[3] {a.fail_rate:.0%} of calls failing (429, 500, 503, malformed JSON, truncated,"
              f" hang {timeout + 1.5}s past a {timeout}s timeout); SDK max_retries=2")
        print(f"    model calls {server.calls}; wall {r3['seconds']:.2f}s; exit code {r3['rc']}")
        print(f"    done {st3.get('done', 0)}, failed {st3.get('failed', 0)}, missing {missing}"
              f" -> {'PASS' if missing == 0 and set(st3) <= {'done', 'failed'} else 'FAIL'}")
        reasons: dict[str, int] = {}
        for e in idx.values():
            if e["status"] == "failed":
                kind = (e["error"] or "").split(":")[0]
                reasons[kind] = reasons.get(kind, 0) + 1
        if reasons:
            print(f"    failure reasons: {reasons}")
        ok &= missing == 0 and set(st3) <= {"done", "failed"}
        # a digest with a chunk that fell back after failed calls is redone by design (batch.py)
        fell_back = {f for f, e in idx.items() if e["status"] == "done" and _failed_chunks(out3, f)}
        failed_before = {f for f, e in idx.items() if e["status"] == "failed"} | fell_back
        done_before = {f for f, e in idx.items() if e["status"] == "done"} - fell_back

        server.reset()
        r3b = run_child(src, out3, server, cache3, a.concurrency, timeout=timeout)
        idx2 = read_index(out3)
        retried = {f for f, e in idx2.items() if e["status"] != "skipped"}
        skipped = {f for f, e in idx2.items() if e["status"] == "skipped"}
        only_failed = retried == failed_before and skipped == done_before
        st3b = statuses(idx2)
        print(f"    rerun (same failure rate): retried {len(retried)} = the {len(failed_before) - len(fell_back)} failed"
              f" and the {len(fell_back)} done with a chunk that fell back"
              f" ({'exactly those' if only_failed else 'MISMATCH'}), skipped {len(skipped)};"
              f" model calls {server.calls}; now done {st3b.get('done', 0) + st3b.get('skipped', 0)},"
              f" failed {st3b.get('failed', 0)}; wall {r3b['seconds']:.2f}s"
              f" -> {'PASS' if only_failed else 'FAIL'}")
        ok &= only_failed
    return ok


def _failed_chunks(out: Path, rel: str) -> int:
    from service.batch import output_path

    obj = json.loads(output_path(out, rel, "json").read_text(encoding="utf-8"))
    return int((obj.get("meta") or {}).get("failed_chunks") or 0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--articles", type=int, default=120)
    p.add_argument("--chars", type=int, default=2500, help="size of a phase-1 article")
    p.add_argument("--latency", type=float, default=0.25, help="phase-1 latency (see --latencies)")
    p.add_argument("--latencies", help="comma list: run phase 1 at each (the first also gets phase 2)")
    p.add_argument("--skip-failures", action="store_true", help="skip phase 3")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--fail-rate", type=float, default=0.2)
    p.add_argument("--small", type=int, default=2000, help="articles in the memory phase")
    p.add_argument("--small-latency", type=float, default=0.02, help="latency in the memory phase")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    p.add_argument("--keep-nagle", action="store_true",
                   help="leave Nagle on in the fake server (adds ~45 ms per call through delayed ACKs)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="cProfile each batch child's main thread and print its top N functions")
    a = p.parse_args()
    Server.keep_nagle = a.keep_nagle
    global PROFILE_TOP
    PROFILE_TOP = a.profile

    work = Path(tempfile.mkdtemp(prefix="reportsum-bench-"))
    ok = True
    try:
        src = work / "reports"
        make_corpus(src, a.articles, a.chars)
        print(f"corpus: {a.articles} articles of ~{a.chars} chars under {src}")

        # 1. throughput
        latencies = [float(x) for x in a.latencies.split(",")] if a.latencies else [a.latency]
        for latency in latencies[1:]:
            ok &= throughput(src, work, a, latency, f"out1-{latency}")
        with Server(latencies[0]) as server:
            cpu0 = server.cpu()
            r = run_child(src, work / "out1", server, work / "cache1.sqlite3", a.concurrency, timeout=10)
            r["cpu_server"] = server.cpu() - cpu0
            r["span"] = tuple(server.span)
            ok &= report_throughput(r, server.calls, work / "out1", a, latencies[0])

            # 2. rerun
            server.reset()
            r2 = run_child(src, work / "out1", server, work / "cache1.sqlite3", a.concurrency, timeout=10)
            st2 = statuses(read_index(work / "out1"))
            print(f"\n[2] rerun: model calls {server.calls} (target 0); wall {r2['seconds']:.2f}s"
                  f" (process {r2['process_seconds']:.2f}s); index: {st2}"
                  f" -> {'PASS' if server.calls == 0 else 'FAIL'}")
            ok &= server.calls == 0 and st2.get("skipped") == a.articles

        # 3. failures
        if not a.skip_failures:
            ok &= failures(src, work, a)

        # 4. memory
        if not a.skip_memory:
            small = work / "small"
            make_corpus(small, a.small, 300, seed=2)
            with Server(a.small_latency) as server:
                r4 = run_child(small, work / "out4", server, work / "cache4.sqlite3", a.concurrency, timeout=10,
                               formats="json,csv", sample_every=0.2)
                st4 = statuses(read_index(work / "out4"))
                print(f"\n[4] memory: {a.small} small articles (~300 chars), latency {a.small_latency}s,"
                      f" concurrency {a.concurrency}, --format json,csv")
                print(f"    model calls {server.calls}; wall {r4['seconds']:.2f}s; index: {st4}")
                print(f"    peak RSS {r4['peak_rss_mb']:.0f} MB (target < 300; {a.articles}-article run:"
                      f" {r['peak_rss_mb']:.0f} MB) -> {'PASS' if r4['peak_rss_mb'] < 300 else 'FAIL'};"
                      f" with the CPU pool's processes (PSS) {r4['tree_pss_mb']:.0f} MB")
                ok &= r4["peak_rss_mb"] < 300 and st4.get("done") == a.small
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
