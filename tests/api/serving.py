"""Running the API for tests: in a thread (uvicorn on loopback) or as a ``reportsum serve``
subprocess that a test may SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from service.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**settings: str) -> dict[str, str]:
    """The environment minus every OPENAI_*/REPORTSUM_* (and proxy) variable, plus ``settings``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "REPORTSUM_")) and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["REPORTSUM_STRATEGY"] = "learned"
    env["REPORTSUM_ASSIST_MARGIN"] = "1.0"  # every unit goes to the model (see conftest.make_settings)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(settings)
    return env


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering /healthz")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{base_url}/healthz did not answer within {timeout}s")


@contextlib.contextmanager
def thread_server(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn on loopback, in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", backlog=2048, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


class ServerProcess:
    """``python -m service serve`` (the ``reportsum serve`` entry point) in a subprocess, in a
    session of its own: its CPU pool and ``--workers`` processes are killed with it."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None, args: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = log
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        try:
            wait_healthy(self.base_url, self.proc, timeout)
        except Exception as exc:
            self.stop()
            log = self.log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"server did not start; its log:\n{log}") from exc
        return self

    def kill(self) -> None:
        """SIGKILL to every process of the server at once: no shutdown hook runs, as in a
        crash, an OOM kill or a container being killed."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, grace: float = 5.0) -> list[int]:
        """SIGTERM, then SIGKILL to whatever of the server is left after ``grace`` seconds
        (nothing may outlive the test); returns the pids that were left."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        deadline = time.monotonic() + grace
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return left

    def processes(self) -> list[int]:
        """The pids of the server's session still running (Linux /proc), zombies aside."""
        assert self.proc is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[3]) == self.proc.pid:  # state, ..., session id
                    pids.append(int(stat.parent.name))
        return pids
