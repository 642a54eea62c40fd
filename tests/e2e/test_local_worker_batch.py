"""``reportsum batch`` survives the embedded model's worker dying mid-article.

Everything is real but the engine: ``reportsum batch`` runs as a subprocess with the
local backend, its worker is a real process running the test-double engine
(``tests/doubles/local_engine.py``), and the test sends that worker a real SIGSEGV while
it is inside a call, as a crash in ``llama_decode`` would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from service.backends.local_worker import REBUILD_COMMAND
from service.batch import INDEX_NAME, read_index
from service.config import PROJECT_ROOT
from tests.api.serving import clean_env
from tests.doubles.local_engine import events, texts_calling_the_model, wait_for_call_in_flight


def test_worker_crash_fails_one_article_and_the_batch_goes_on(tmp_path: Path) -> None:
    src, out, log = tmp_path / "reports", tmp_path / "out", tmp_path / "engine.log"
    src.mkdir()
    names = ["a.txt", "b.txt", "c.txt"]
    for name, text in zip(names, texts_calling_the_model(3)):  # each article needs the model
        (src / name).write_text(text, encoding="utf-8")
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF fake")
    env = clean_env(
        REPORTSUM_LOCAL_FAKE=f"echo;delay=1;log={log}",  # 1 s a call: time to kill it mid-call
        REPORTSUM_LOCAL_MODEL=str(model),
        REPORTSUM_CACHE=str(tmp_path / "cache.sqlite3"),
        # every unit goes to the model, as tests.api.conftest.model_calls chose the texts
        REPORTSUM_ASSIST_MARGIN="1.0",
        REPORTSUM_STRATEGY="learned",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "batch", str(src), "-o", str(out), "--backend", "local",
         "--concurrency", "1", "--no-cache", "-q"],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        call = wait_for_call_in_flight(log, timeout=60, proc=proc)
        os.kill(call["pid"], signal.SIGSEGV)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr.decode()  # 1: something failed, and the batch finished

    index = read_index(out / INDEX_NAME)
    assert sorted(index) == names
    killed = next(n for n in names if f"article {n} " in call["context"])
    failed = index[killed]
    assert failed["status"] == "failed" and failed["output"] is None
    for words in ("SIGSEGV", f"pid {call['pid']}", REBUILD_COMMAND, "reportsum doctor"):
        assert words in failed["error"]
    for name in set(names) - {killed}:
        assert index[name]["status"] == "done", index[name]
        assert (out / f"{name}.json").is_file()
    # the crash cost one worker; a fresh one (one more model load) served the rest
    starts = [e["pid"] for e in events(log) if e["event"] == "start"]
    assert len(starts) == 2 and starts[0] == call["pid"]
