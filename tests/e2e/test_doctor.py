"""``reportsum doctor`` names each problem and the command that fixes it.

Runs the real command in a subprocess (its llama.cpp probe and test decode are
subprocesses of their own), with the environment cleared as in CI. The broken setups are
real: a corrupt model file, a loopback port nobody listens on, a ``llama_cpp`` that
fails to import.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

from service.backends.local_worker import INSTALL_LOCAL, REBUILD_COMMAND
from service.config import DEFAULT_LOCAL_MODEL_NAME, PROJECT_ROOT
from service.doctor import Report, build_flags, check_cpu
from tests.api.serving import clean_env
from tests.doubles.fake_openai import FakeOpenAIServer


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", "doctor", *args], env=clean_env(**env),
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: connections are refused


def test_corrupt_model_file_is_named_with_its_checksum_and_fix(tmp_path: Path) -> None:
    model = tmp_path / "broken.gguf"
    model.write_bytes(b"<html>not a model</html>" * 100)
    result = doctor(REPORTSUM_LOCAL_MODEL=str(model))
    assert result.returncode == 1, result.stdout
    out = result.stdout
    assert "backend" in out and "local" in out and "the embedded model is the default" in out
    assert f"{model}" in out and hashlib.sha256(model.read_bytes()).hexdigest() in out
    assert "PROBLEM" in out and "not a GGUF file" in out
    assert "fix: point REPORTSUM_LOCAL_MODEL at a valid .gguf file" in out
    assert "test decode  skipped" in out


def test_corrupt_cached_default_model_says_delete_it(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "reportsum" / "models" / f"{DEFAULT_LOCAL_MODEL_NAME}.gguf"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"GGUF" + b"\0" * 1000)  # right magic, truncated
    result = doctor(XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert result.returncode == 1
    assert "corrupt, expected 1,117,320,768 bytes" in result.stdout
    assert f"fix: rm {cached}" in result.stdout


def test_unreachable_endpoint_is_named_with_its_fix() -> None:
    port = closed_port()
    result = doctor(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", OPENAI_API_KEY="sk-test")
    assert result.returncode == 1
    out = result.stdout
    assert "openai (OPENAI_BASE_URL is set)" in out
    assert f"http://127.0.0.1:{port}/v1 cannot be reached" in out and "Connection refused" in out
    assert "fix: start the server or correct OPENAI_BASE_URL" in out
    assert "sk-test" not in out + result.stderr


def test_missing_llama_cpp_extra_is_named_with_the_install_command(tmp_path: Path) -> None:
    # A llama_cpp that cannot be imported, first on the path: what a machine without the
    # [local] extra (or with a half-installed build) shows the doctor.
    shadow = tmp_path / "shadow" / "llama_cpp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("simulated: llama-cpp-python is not installed")\n')
    env = clean_env()
    result = doctor(PYTHONPATH=f"{tmp_path / 'shadow'}:{env['PYTHONPATH']}")
    assert result.returncode == 1
    assert "llama-cpp-python cannot be imported: ImportError: simulated" in result.stdout
    assert f"fix: {INSTALL_LOCAL}" in result.stdout


def test_reachable_endpoint_reports_its_dialect() -> None:
    with FakeOpenAIServer() as fake:
        result = doctor(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", REPORTSUM_MODEL="fake-model")
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(fake.requests) >= 1  # the dialect probe went over the wire
    assert "answers" in result.stdout
    assert "structured output: json_schema (model fake-model" in result.stdout
    assert "problem" not in result.stdout.lower()


def test_amx_build_on_an_amx_cpu_is_a_problem_with_the_rebuild_command(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx2 avx512f amx_tile amx_int8 hypervisor\n")
    build = build_flags("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 |")
    assert build["AMX_INT8"] and build["AVX2"] and not build.get("CUDA")
    report = Report()
    check_cpu(report, build, cpuinfo)
    assert "Xeon" in report.findings[0].text and "amx_tile yes (virtualized)" in report.findings[0].text
    (problem,) = report.problems
    assert "AMX kernels" in problem.text and problem.fix == REBUILD_COMMAND

    safe = Report()
    check_cpu(safe, build_flags("CPU : AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 0"), cpuinfo)
    assert safe.problems == []


def test_avx512_build_on_a_cpu_without_it_is_a_problem(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Old CPU\nflags\t\t: fpu sse4_2 avx avx2 fma\n")
    report = Report()
    check_cpu(report, build_flags("AVX2 = 1 | AVX512 = 1"), cpuinfo)
    (problem,) = report.problems
    assert "AVX-512" in problem.text and "SIGILL" in problem.text and problem.fix == REBUILD_COMMAND
