"""HTTP API load benchmark: 50 concurrent clients, 1,000 POST /v1/summaries.

    python bench/api_bench.py                        # latency 0.25 s, short articles
    python bench/api_bench.py --text seed --requests 300
    python bench/api_bench.py --health --concurrency 16   # /healthz during a 1,000,000-char digest
    python bench/api_bench.py --text seed --requests 200 --py-spy 25   # where the server's CPU goes

Three processes, so each one's CPU is its own: the fake OpenAI-compatible endpoint
(``tests.doubles.fake_openai``, ``--latency`` seconds per call), ``reportsum serve
--no-cache`` on the openai backend pointed at it (so every request runs the pipeline), and
this script's clients (httpx.AsyncClient).

What is measured:
- per request: wall latency at the client (p50/p95/p99/max), throughput, errors (any
  status but 200 or a transport error), model calls (the digest's ``meta.llm_calls`` and
  the fake's own count);
- the endpoint's latency per call as a client sees it (``--latency`` plus HTTP), measured
  directly before the run;
- CPU seconds of the server process (and per model call on the wire), of its CPU pool and
  of the fake endpoint during the run: the load-independent figure on a shared machine.

``--replies model`` has the fake answer every unit it is asked about
(``tests/doubles/context_replies``), as the capable reader did in all 248 silver exchanges;
the default minimal instance answers none, so every window is asked again (13 calls for seed 001
instead of 7, and five sequential rounds instead of three).

``--py-spy N`` samples the server process (whichever thread holds the GIL: its Python CPU, not
its threads' waits) with py-spy (``pip install py-spy``)
during the measured run and prints its top N frames by own samples and the top N functions of
this project (``service/``) by samples under them: the profile of issue 26, kept with the bench.

Target (issue 8): zero errors and p95 under 2x the endpoint's latency per call. With
``--text short`` (default) each request is a one-sentence article; under the context
strategy it costs three sequential calls (its window, the window asked again when the fake's
minimal reply answers no unit, the overview). With ``--text seed`` a request costs several
calls, ``--concurrency`` at a time, so the p95 is compared with ``rounds x per-call latency``
where rounds = ceil(calls / concurrency). That count assumes the calls independent; the ones
that wait for others (a window asked again, the overview after every window) can make a
request's own critical path longer, so the bench also times the same request with one
client and nothing else in flight (``one client alone``) and prints p95 / alone: what the
load costs, apart from how many rounds a request needs.

Every process of the bench shares this machine's cores, so the bench also prints the CPU its
load needs: ``clients / alone`` requests a second (each client sending again as soon as its
answer is back, as fast as one request alone) times the CPU one request cost in the run
(server, its pool, the fake endpoint, the clients). By Little's law a closed loop of clients
waits clients / throughput on average; when the load needs more cores than there are, the
throughput is what the cores allow and every request waits longer. On this project's 2-core
machine (2026-12-03): 25 clients need 1.7 cores and p95 reads 1.83x; 50 clients need 3.1
cores, 1.6 of them in the server process, and p95 reads 2.5-3.1x.

``--health`` (issue 26): one client posts a 1,000,000-character article (the seeds one
after another, as ``bench/pipeline_overhead.py`` builds it) while another asks
``/healthz`` every 50 ms until the digest is back; target: p99 under 100 ms. The server
prepares documents in its CPU pool, so the event loop answers while the report is read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import signal
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

SEED = ROOT / "fixtures" / "articles" / "001_9bad2e52d17f6118.txt"


def short_text(i: int) -> str:
    """One sentence no cue decides: the pipeline asks the model once."""
    return f"医疗服务能力持续提升（{i}）。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake(port: int, latency: float, keep_nagle: bool, counter, ready, replies: str = "minimal") -> None:  # type: ignore[no-untyped-def]
    from tests.doubles.context_replies import reply
    from tests.doubles.fake_openai import FakeOpenAIServer

    class Counting(FakeOpenAIServer):
        def decide(self, received):  # type: ignore[no-untyped-def]
            with counter.get_lock():
                counter.value += 1
            self.requests.clear()  # the bench sends thousands: keep none
            return super().decide(received)

    def answer_units(body):  # type: ignore[no-untyped-def]
        try:
            return reply(body)
        except (IndexError, StopIteration):  # not a pipeline request: the latency probe
            return "{}"

    server = Counting(port=port, latency=latency, responder=answer_units if replies == "model" else None)
    # http.server sends headers and body in two writes; with Nagle on, the client's delayed
    # ACK adds ~40 ms to every call, which no real server (uvicorn, vLLM) does.
    server._httpd.RequestHandlerClass.disable_nagle_algorithm = not keep_nagle
    ready.set()
    server._httpd.serve_forever()


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of process ``pid`` and of its live descendants (the
    server's CPU pool: the fork server's children), read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(child)
        cpu[child] = (int(fields[11]) + int(fields[12])) / tick
    todo, kids = list(children.get(pid, [])), 0.0
    while todo:
        c = todo.pop()
        kids += cpu.get(c, 0.0)
        todo += children.get(c, [])
    return cpu.get(pid, 0.0), kids


def start_py_spy(pid: int, out: Path) -> subprocess.Popen:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise SystemExit("--py-spy needs py-spy: pip install py-spy")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--threads",
                             "--nonblocking", "--gil", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_py_spy(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
    proc.wait(timeout=60)


def print_profile(raw: Path, top: int) -> None:
    """Top frames by own samples, and this project's functions by samples under them."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames, count = stack.split(";"), int(n)
        total += count
        own[frames[-1]] += count
        for frame in {f for f in frames if "(service/" in f}:
            under[frame] += count
    print(f"  py-spy: {total} samples of the server process (the thread holding the GIL, 200 Hz)")
    for title, counter in (("own samples", own), ("service/ functions, samples under them", under)):
        print(f"    top {top} by {title}:")
        for frame, count in counter.most_common(top):
            print(f"      {count / max(total, 1):6.1%}  {frame[:140]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def sdk_cpu_per_call(base_url: str, n: int, in_flight: int = 50) -> float:
    """CPU seconds per call of the openai backend alone (the SDK, its aiohttp transport and
    our wrapper, no pipeline) against the same fake, ``in_flight`` calls at a time, each a
    context chunk the size of seed 001's (~1,700 characters)."""
    from service.backends.openai import OpenAIBackend
    from service.config import Settings
    from service.context import chunk_request

    backend = OpenAIBackend.from_settings(Settings(backend="openai", openai_base_url=base_url,
                                                   openai_api_key="sk-bench", model="fake-model"))
    request = chunk_request("〔1〕" + "全市新建村卫生室120所，基层诊疗量增长8.5%。" * 70, 1, "sdk floor")

    async def calls(k: int) -> None:
        for _ in range(k):
            await backend.complete(request)

    try:
        await asyncio.gather(*(calls(2) for _ in range(in_flight)))  # connections and imports, not counted
        started = time.process_time()
        await asyncio.gather(*(calls(n // in_flight) for _ in range(in_flight)))
        return (time.process_time() - started) / (n // in_flight * in_flight)
    finally:
        await backend.aclose()


def cpu_budget(clients: int, alone: float, requests: int, *cpu: float) -> dict[str, float]:
    """The CPU the clients' load asks for if every request ran as fast as one alone: ``clients /
    alone`` requests a second, each costing this run's CPU per request (the server's process,
    its pool, the fake endpoint and the clients: all on this machine). By Little's law the
    mean latency of a closed loop of clients is clients / throughput, so where the load needs
    more cores than the machine has, latency grows until throughput fits the cores."""
    per_request = sum(cpu) / max(requests, 1)
    rate = clients / alone
    return {"cores_needed": round(rate * per_request, 2), "server_cores_needed": round(rate * cpu[0] / max(requests, 1), 2)}


async def measure_call_latency(base_url: str, n: int = 20) -> float:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "句子"}]}
    times = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(n):
            t = time.perf_counter()
            (await client.post(f"{base_url}/chat/completions", json=body)).raise_for_status()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


async def drive(base: str, texts: list[str], clients: int) -> tuple[list[float], list[str], list[int], float]:
    latencies: list[float] = []
    errors: list[str] = []
    calls: list[int] = []
    queue = iter(range(len(texts)))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one_client() -> None:
            for i in queue:
                t = time.perf_counter()
                try:
                    res = await client.post("/v1/summaries", json={"text": texts[i]})
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - t)
                if res.status_code != 200:
                    errors.append(f"HTTP {res.status_code}: {res.text[:200]}")
                else:
                    calls.append(res.json()["meta"]["llm_calls"])

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return latencies, errors, calls, time.perf_counter() - started


async def health_while_digesting(base: str, text: str, every: float) -> tuple[httpx.Response, list[float], float]:
    async with httpx.AsyncClient(base_url=base, timeout=3600) as client:
        started = time.perf_counter()
        post = asyncio.create_task(client.post("/v1/summaries", json={"text": text}))
        waits: list[float] = []
        while not post.done():
            t = time.perf_counter()
            (await client.get("/healthz")).raise_for_status()
            waits.append(time.perf_counter() - t)
            await asyncio.sleep(every)
        return await post, waits, time.perf_counter() - started


def report_health(res: httpx.Response, waits: list[float], took: float, chars: int) -> bool:
    p50, p99 = percentile(waits, 0.50), percentile(waits, 0.99)
    meta = res.json().get("meta", {}) if res.status_code == 200 else {}
    print(f"reportsum API bench: GET /healthz every 50 ms while one {chars:,}-character article is digested")
    print(f"  digest: HTTP {res.status_code} in {took:.1f} s; {meta.get('llm_calls')} model calls,"
          f" {meta.get('chunks')} chunks, strategy {meta.get('strategy')}")
    print(f"  /healthz: {len(waits)} probes; p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms"
          f"  max {max(waits) * 1000:.1f} ms  (target p99 < 100 ms: {'met' if p99 < 0.1 else 'NOT met'})")
    return res.status_code == 200 and p99 < 0.1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.25, help="fake endpoint seconds per call (default 0.25)")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--text", choices=["short", "seed"], default="short",
                   help="short: one-call articles; seed: fixture 001 with a unique line (several calls)")
    p.add_argument("--concurrency", type=int, default=4, help="model calls in flight per article (server)")
    p.add_argument("--replies", choices=["minimal", "model"], default="minimal",
                   help="minimal: the fake's minimal schema instance (no unit answered, so every window is "
                        "asked again); model: every unit answered, as a model does (tests/doubles/context_replies)")
    p.add_argument("--keep-nagle", action="store_true", help="leave Nagle on in the fake server (+~40 ms a call)")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    p.add_argument("--health", action="store_true", help="/healthz while a 1,000,000-character article is digested")
    p.add_argument("--health-chars", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=1, help="reportsum serve --workers N (server processes)")
    p.add_argument("--sdk-floor", type=int, default=0, metavar="N",
                   help="after the run, time N calls of the openai backend alone (no pipeline) against the fake")
    p.add_argument("--py-spy", type=int, default=0, metavar="N",
                   help="profile the server during the run with py-spy and print its top N frames")
    a = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    fake_port, api_port = free_port(), free_port()
    counter = multiprocessing.Value("q", 0)
    ready = multiprocessing.Event()
    fake = multiprocessing.Process(target=_fake, args=(fake_port, a.latency, a.keep_nagle, counter, ready, a.replies),
                                   daemon=True)
    fake.start()
    ready.wait(10)
    fake_url = f"http://127.0.0.1:{fake_port}/v1"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REPORTSUM_"))}
    env.update(
        REPORTSUM_BACKEND="openai", OPENAI_BASE_URL=fake_url, OPENAI_API_KEY="sk-bench",
        REPORTSUM_MODEL="fake-model", REPORTSUM_DB=str(tmp / "jobs.sqlite3"),
        REPORTSUM_CACHE=str(tmp / "cache.sqlite3"), NO_PROXY="127.0.0.1",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    log = open(tmp / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(api_port),
         "--no-cache", "--quiet", "--concurrency", str(a.concurrency), "--workers", str(a.workers)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((tmp / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.1)

        if a.health:
            from bench.pipeline_overhead import big_article

            text = big_article(a.health_chars)
            res, waits, took = asyncio.run(health_while_digesting(base, text, 0.05))
            return 0 if report_health(res, waits, took, len(text)) else 2
        call_latency = asyncio.run(measure_call_latency(fake_url))
        seed = SEED.read_text(encoding="utf-8")
        make = short_text if a.text == "short" else (lambda i: f"{seed}\n编号{i}。\n")
        asyncio.run(drive(base, [make(-1 - i) for i in range(20)], 10))  # warm-up, not counted
        # the same request with nothing else in flight: its own sequential rounds (a window
        # asked again, the overview after the windows) plus the pipeline's CPU
        alone = statistics.median(asyncio.run(drive(base, [make(-100 - i) for i in range(5)], 1))[0])
        calls_before = counter.value
        (own0, pool0), fake0 = tree_cpu(server.pid), tree_cpu(fake.pid)[0]
        spy = start_py_spy(server.pid, tmp / "serve.raw") if a.py_spy else None
        client0 = time.process_time()
        latencies, errors, calls, wall = asyncio.run(drive(base, [make(i) for i in range(a.requests)], a.clients))
        cpu_clients = time.process_time() - client0
        if spy is not None:
            stop_py_spy(spy)
        wire_calls = counter.value - calls_before
        (own1, pool1), fake1 = tree_cpu(server.pid), tree_cpu(fake.pid)[0]
        cpu_server, cpu_pool, cpu_fake = own1 - own0, pool1 - pool0, fake1 - fake0
        sdk_call = None
        if a.sdk_floor:
            from service.pipeline import gc_tuned_for_model_calls

            with gc_tuned_for_model_calls():  # as in the server
                sdk_call = asyncio.run(sdk_cpu_per_call(fake_url, a.sdk_floor))
    finally:
        server.terminate()
        server.wait(timeout=15)
        fake.terminate()
        log.close()

    ok = len(latencies) - sum(1 for e in errors if e.startswith("HTTP"))
    calls_per_request = statistics.mean(calls) if calls else 0.0
    rounds = max(1, math.ceil(max(calls) / a.concurrency)) if calls else 1
    p50, p95, p99 = (percentile(latencies, q) for q in (0.50, 0.95, 0.99))
    budget = 2 * rounds * call_latency
    figures = {
        "requests": a.requests, "clients": a.clients, "text": a.text, "ok": ok, "errors": len(errors),
        "wall_s": round(wall, 2), "throughput_rps": round(a.requests / wall, 1),
        "p50_s": round(p50, 3), "p95_s": round(p95, 3), "p99_s": round(p99, 3), "max_s": round(max(latencies), 3),
        "fake_latency_s": a.latency, "call_latency_s": round(call_latency, 3),
        "calls_per_request": round(calls_per_request, 2), "sequential_rounds": rounds,
        "model_calls_on_wire": wire_calls,
        "p95_over_call_latency": round(p95 / (rounds * call_latency), 2),
        "alone_s": round(alone, 3), "p95_over_alone": round(p95 / alone, 2),
        "cpu_server_s": round(cpu_server, 2), "cpu_pool_s": round(cpu_pool, 2), "cpu_fake_s": round(cpu_fake, 2),
        "cpu_clients_s": round(cpu_clients, 2),
        "server_over_fake_cpu": round(cpu_server / cpu_fake, 2) if cpu_fake else None,
        "server_cpu_ms_per_call": round(cpu_server / max(wire_calls, 1) * 1000, 2),
        **cpu_budget(a.clients, alone, a.requests, cpu_server, cpu_pool, cpu_fake, cpu_clients),
        "target_met": not errors and p95 < budget,
    }
    print(f"reportsum API bench: {a.requests} POST /v1/summaries ({a.text} articles), {a.clients} concurrent clients")
    print(f"  fake endpoint: latency {a.latency:.3f} s configured, {call_latency:.3f} s per call measured"
          f"{' (Nagle on)' if a.keep_nagle else ''}")
    print(f"  model calls: {calls_per_request:.2f} per request (meta.llm_calls), {wire_calls} on the wire,"
          f" {rounds} sequential round(s) at --concurrency {a.concurrency}")
    print(f"  throughput: {figures['throughput_rps']} req/s over {wall:.2f} s")
    print(f"  latency: p50 {p50:.3f} s  p95 {p95:.3f} s  p99 {p99:.3f} s  max {max(latencies):.3f} s")
    print(f"  one client alone: {alone:.3f} s per request ({alone / call_latency:.1f} x per-call latency); "
          f"p95 / alone = {figures['p95_over_alone']}")
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"  CPU: server process {cpu_server:.1f} s ({figures['server_cpu_ms_per_call']} ms per model call on the"
          f" wire), its CPU pool {cpu_pool:.1f} s, the fake endpoint {cpu_fake:.1f} s, the clients {cpu_clients:.1f} s,"
          f" in {wall:.1f} s on"
          f" {os.cpu_count()} cores")
    # the fake endpoint does the same work for the same calls in every run of one command, so
    # the server's CPU over the fake's moves with the server's code, not with the machine's speed
    print(f"  server CPU / fake endpoint CPU = {figures['server_over_fake_cpu']} (for A/B runs on a machine whose speed"
          f" drifts)")
    print(f"  CPU the offered load needs ({a.clients} clients each sending a request every {alone:.2f} s, as fast as"
          f" one alone): {figures['cores_needed']} cores ({figures['server_cores_needed']} of them in the server"
          f" process{f'es ({a.workers})' if a.workers > 1 else ', whose event loop is one thread'}), against {os.cpu_count()} here: above"
          f" that, requests queue for CPU and wait longer than alone")
    if sdk_call is not None:
        figures["sdk_cpu_ms_per_call"] = round(sdk_call * 1000, 2)
        print(f"  the openai backend alone (SDK and transport, no pipeline): {sdk_call * 1000:.2f} ms CPU per call;"
              f" this load's {a.clients / alone * calls_per_request:.0f} calls a second need"
              f" {a.clients / alone * calls_per_request * sdk_call:.2f} cores for that alone")
    print(f"  p95 / (rounds x per-call latency) = {figures['p95_over_call_latency']}  "
          f"(target < 2: {'met' if figures['target_met'] else 'NOT met'})")
    if a.py_spy:
        print_profile(tmp / "serve.raw", a.py_spy)
    if a.json:
        print(json.dumps(figures))
    return 0 if figures["target_met"] else 2


if __name__ == "__main__":
    raise SystemExit(main())
