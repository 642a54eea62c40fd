"""The README's install command, ``.ci/run`` and the code's fix messages say the same thing."""

from __future__ import annotations

from service.backends.local_worker import INSTALL_LOCAL, REBUILD_COMMAND
from service.buildflags import cmake_args
from service.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
CI = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
ZEN4 = set("avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni".split())


def test_readme_first_command_needs_nothing_compiled():
    first = next(ln for ln in README.splitlines() if ln.startswith("    ") and "reportsum summarize" in ln)
    assert first == "    pip install -e . && reportsum summarize fixtures/articles/000_e74761c77b6d2746.txt --format md"
    # CI runs that digest on the [dev] install, before llama-cpp-python is installed
    lines = [ln.strip() for ln in CI.splitlines()]
    step = next(i for i, ln in enumerate(lines) if "reportsum summarize fixtures/articles/000_e74761c77b6d2746.txt" in ln)
    assert step < lines.index(INSTALL_LOCAL)


def test_readme_model_command_builds_for_this_cpu():
    assert f"    {INSTALL_LOCAL} && reportsum summarize fixtures/articles/" in README
    assert 'CMAKE_ARGS="$(python3 -m service.buildflags)"' in INSTALL_LOCAL and "--no-cache-dir" in REBUILD_COMMAND


def test_ci_installs_the_local_extra_the_readme_way_and_runs_the_model_tests():
    lines = [ln.strip() for ln in CI.splitlines()]
    assert INSTALL_LOCAL in lines
    assert "pip install -e '.[dev]' && pytest -q" in lines  # the README's test command, first
    assert lines.index(INSTALL_LOCAL) < next(i for i, ln in enumerate(lines) if ln.startswith("pytest -m local_model"))
    # pip's wheel cache ignores CMAKE_ARGS: CI keys its cache on the flags, so it runs the
    # build the README's command makes, not a wheel an earlier install built otherwise
    cache = next(i for i, ln in enumerate(lines) if ln.startswith("export PIP_CACHE_DIR="))
    assert "service.buildflags" in lines[cache] and cache < lines.index(INSTALL_LOCAL)


def test_readme_shows_what_buildflags_prints_on_this_projects_machines():
    assert f"`{cmake_args(ZEN4)}`" in README
    assert "-DGGML_CUDA=on" in README  # how to build for a GPU instead
