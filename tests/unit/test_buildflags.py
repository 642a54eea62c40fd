"""``python3 -m service.buildflags``: native minus AMX, never an instruction the CPU lacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service.buildflags import cmake_args, cpu_flags
from service.config import PROJECT_ROOT

SAPPHIRE_RAPIDS = ("fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi "
                   "avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16 hypervisor")
ZEN4 = "fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni"
HASWELL = "fpu sse4_2 avx avx2 fma f16c bmi2"
SANDY_BRIDGE = "fpu sse4_2 avx"


def args_of(flags: str) -> dict[str, str]:
    return dict(a.removeprefix("-D").split("=") for a in cmake_args(set(flags.split())).split())


def test_amx_cpu_gets_avx512_and_never_amx_or_native():
    args = args_of(SAPPHIRE_RAPIDS)
    assert args["GGML_NATIVE"] == "OFF"  # -march=native would compile the AMX kernels
    assert args["GGML_AMX_TILE"] == args["GGML_AMX_INT8"] == "OFF"
    assert args["GGML_AVX512"] == args["GGML_AVX512_VBMI"] == args["GGML_AVX512_VNNI"] == "ON"


def test_avx512_only_with_every_subset_ggml_compiles_for():
    assert args_of(ZEN4)["GGML_AVX512"] == "ON"
    assert args_of(ZEN4.replace(" avx512cd", ""))["GGML_AVX512"] == "OFF"  # -mavx512cd would SIGILL
    assert args_of(ZEN4.replace(" avx512cd", ""))["GGML_AVX512_VNNI"] == "OFF"


def test_older_cpus_get_only_what_they_have():
    haswell = args_of(HASWELL)
    assert haswell["GGML_AVX2"] == haswell["GGML_FMA"] == "ON" and haswell["GGML_AVX512"] == "OFF"
    sandy = args_of(SANDY_BRIDGE)
    assert sandy["GGML_AVX"] == "ON"
    assert sandy["GGML_AVX2"] == sandy["GGML_FMA"] == sandy["GGML_F16C"] == sandy["GGML_BMI2"] == "OFF"


def test_not_x86_leaves_llama_cpp_defaults():
    assert cmake_args({"asimd", "sve"}, machine="aarch64") == ""


def test_cpuinfo_parsing_and_the_command_on_this_machine():
    text = Path("/proc/cpuinfo").read_text()
    # runs with nothing installed: the README calls it before `pip install`
    out = subprocess.run([sys.executable, "-S", "-m", "service.buildflags"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == cmake_args(cpu_flags(text))
    assert "-DGGML_AMX_INT8=OFF" in out and "-DGGML_NATIVE=OFF" in out
