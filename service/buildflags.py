"""The fastest safe llama.cpp build flags for the CPU this runs on.

    CMAKE_ARGS="$(python3 -m service.buildflags)" pip install -e '.[local]'

Why not llama.cpp's default (``GGML_NATIVE=ON``, i.e. ``-march=native``): on Xeons with
AMX it compiles the AMX kernels, which segfault in decode on virtualized AMX hardware
(llama.cpp issue 20824). So: native minus AMX, spelled out from ``/proc/cpuinfo``.

Measured on this project's machines (2 cores, Qwen2.5-Coder-1.5B Q4_K_M,
llama-cpp-python 0.3.36, n_threads=2, best of 3 runs, see README): adding AVX-512
(+VBMI, +VNNI) to the AVX2 build reads prompts about 40% faster (about 108 against 76
tokens/s) and generates at the same speed (memory-bound, about 27 tokens/s); it ran the
seed digests without a fault. AVX-512 is switched on only when the CPU has every
AVX-512 subset ggml compiles for (F, CD, VL, DQ, BW): a build with it would die with
SIGILL elsewhere. AVX512_BF16 and AVX_VNNI stay off (not measured; no gain expected for
Q4_K weights).

Standard library only: it runs before anything is installed. On a CPU that is not
x86-64 it prints nothing: llama.cpp's own defaults are fine there (there is no AMX).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# The AVX-512 subsets ggml's -DGGML_AVX512=ON compiles for (ggml-cpu/CMakeLists.txt).
AVX512_BASE = ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cmake_args(flags: set[str], machine: str = "x86_64") -> str:
    """CMAKE_ARGS for llama-cpp-python on a CPU with these /proc/cpuinfo ``flags``."""
    if machine.lower() not in ("x86_64", "amd64"):
        return ""  # ARM etc.: llama.cpp's own defaults; AMX does not exist there

    def on(flag: bool) -> str:
        return "ON" if flag else "OFF"

    avx512 = all(f in flags for f in AVX512_BASE)
    args = {
        "GGML_NATIVE": "OFF",  # never -march=native: it would switch the AMX kernels on
        "GGML_AVX": on("avx" in flags),
        "GGML_AVX2": on("avx2" in flags),
        "GGML_FMA": on("fma" in flags),
        "GGML_F16C": on("f16c" in flags),
        "GGML_BMI2": on("bmi2" in flags),
        "GGML_AVX512": on(avx512),
        "GGML_AVX512_VBMI": on(avx512 and "avx512vbmi" in flags),
        "GGML_AVX512_VNNI": on(avx512 and "avx512_vnni" in flags),
        "GGML_AMX_TILE": "OFF",  # crashes on virtualized AMX (llama.cpp issue 20824)
        "GGML_AMX_INT8": "OFF",
    }
    return " ".join(f"-D{k}={v}" for k, v in args.items())


def main() -> None:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    flags = cpu_flags(text)
    if not flags and platform.machine().lower() in ("x86_64", "amd64"):
        # No /proc/cpuinfo (not Linux): the portable AVX2 build, which every x86-64 CPU
        # since 2015 runs.
        flags = {"avx", "avx2", "fma", "f16c", "bmi2"}
    sys.stdout.write(cmake_args(flags, platform.machine()) + "\n")


if __name__ == "__main__":
    main()
