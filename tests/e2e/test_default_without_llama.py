"""The default digest needs nothing compiled (issue 24): with llama-cpp-python absent, the
learned labeller digests a seed; asking for the model (``--assist-margin 0.3``, ``--strategy
context`` with no endpoint) ends with one line naming the install command, exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.backends.local_worker import INSTALL_LOCAL
from tests.api.serving import clean_env

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures/articles/000_e74761c77b6d2746.txt"

# Makes `llama_cpp` unfindable in the child, as on a base install (`pip install -e .`).
BLOCKER = '''
import sys
class _NoLlama:
    def find_spec(self, name, path=None, target=None):
        if name == "llama_cpp" or name.startswith("llama_cpp."):
            raise ModuleNotFoundError("No module named 'llama_cpp'")
        return None
sys.meta_path.insert(0, _NoLlama())
'''


def without_llama(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), REPORTSUM_CACHE=str(tmp_path / "d.sqlite3"))
    env.pop("REPORTSUM_ASSIST_MARGIN")  # the defaults, as a new user has them
    env.pop("REPORTSUM_STRATEGY")
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    return env


def reportsum(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_blocker_blocks(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp"], env=without_llama(tmp_path),
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'llama_cpp'" in probe.stderr


def test_the_default_digest_runs_without_llama_cpp(tmp_path):
    result = reportsum(without_llama(tmp_path), "summarize", str(SEED), "--no-cache", "-q")
    assert result.returncode == 0, result.stderr
    digest = json.loads(result.stdout)
    assert digest["meta"]["llm_calls"] == 0 and digest["meta"]["strategy"] == "learned"
    items = digest["achievements"] + digest["problems"] + digest["plans"]
    assert len(items) >= 10
    text = SEED.read_text(encoding="utf-8")
    assert all(text[a:b] == it["evidence"] for it in items for a, b in [it["span"]])
    md = reportsum(without_llama(tmp_path), "summarize", str(SEED), "--format", "md", "-q")
    assert md.returncode == 0 and items[0]["evidence"][:10] in md.stdout


@pytest.mark.parametrize("flags", [["--assist-margin", "0.3"], ["--strategy", "context"]])
def test_asking_the_model_without_llama_cpp_names_the_install(tmp_path, flags):
    result = reportsum(without_llama(tmp_path), "summarize", str(SEED), "--no-cache", "-q", *flags)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and INSTALL_LOCAL in lines[0], result.stderr


def test_doctor_calls_the_missing_model_optional_for_the_default(tmp_path):
    env = without_llama(tmp_path)
    result = reportsum(env, "doctor")
    assert result.returncode == 0, result.stdout
    assert "optional llama-cpp-python cannot be imported" in result.stdout
    assert f"to install: {INSTALL_LOCAL}" in result.stdout
    needed = reportsum({**env, "REPORTSUM_ASSIST_MARGIN": "0.3"}, "doctor")
    assert needed.returncode == 1 and f"fix: {INSTALL_LOCAL}" in needed.stdout
