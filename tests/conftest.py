"""Shared test setup: no real endpoint, no user cache, no network.

Every test starts with OPENAI_* and REPORTSUM_* cleared and the digest cache and job
database pointed into a temporary directory, so a developer's environment can never leak
into a test (or a test into their cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "fixtures" / "articles"
GOLD = ROOT / "fixtures" / "gold"
SEEDS = sorted(ARTICLES.glob("*.txt"))


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path_factory):
    for name in list(os.environ):
        # settings come from the test; loopback must never go through a proxy
        if name.startswith(("OPENAI_", "REPORTSUM_")) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("reportsum-home")
    monkeypatch.setenv("REPORTSUM_CACHE", str(home / "digests.sqlite3"))
    monkeypatch.setenv("REPORTSUM_DB", str(home / "jobs.sqlite3"))
    # The embedded model is not asked by default (it does not earn its calls); the tests of
    # the model path (replay, retries, crashes, batch, API jobs) need it asked, as
    # `--assist-margin 0.2` asks it: about the units the labeller is least sure of.
    monkeypatch.setenv("REPORTSUM_ASSIST_MARGIN", "0.2")
    # The plumbing tests (API, batch, retries) count the learned strategy's calls, whatever
    # the backend; tests of the context strategy (an endpoint's default) ask for it by name.
    monkeypatch.setenv("REPORTSUM_STRATEGY", "learned")
    yield
