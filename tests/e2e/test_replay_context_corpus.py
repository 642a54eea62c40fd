"""The context strategy on all 27 corpus documents, offline: the embedded model's replies as
``bench/strategy_compare.py --run`` recorded them, replayed through the real CLI.

The bench's figures (README, "The two strategies") are only worth something if they can be
made again: replaying the recordings must give, document by document, the digests the bench
saved, with no call missing and no contract error. A change to what the pipeline does with
the replies shows up here as a changed item; re-measure with ``python bench/strategy_compare.py
--run`` after removing the affected digests (only calls not yet recorded reach the model).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.evaluate import overview_faults
from tests.conftest import ROOT
from tests.e2e.test_replay_seeds import CATS, run_cli

ARTICLES = ROOT / "fixtures" / "corpus" / "articles"
GOLD = ROOT / "fixtures" / "corpus" / "gold"
SAVED = ROOT / "bench" / "results" / "context-local"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[dict, dict[str, dict]]:
    out = tmp_path_factory.mktemp("context-corpus")
    # the bench ran with the defaults (no assist margin): so does the replay
    proc = run_cli("eval", str(ARTICLES), "--gold", str(GOLD), "--backend", "replay", "--strategy", "context",
                   "--recordings", str(SAVED / "recordings"), "--no-cache", "--json", "-q", "--save", str(out),
                   env={"REPORTSUM_ASSIST_MARGIN": "0"})
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout), {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.json")}


def _content(digest: dict) -> dict:
    return {"overview": digest["overview"], **{c: digest[c] for c in CATS},
            "warnings": digest["meta"]["warnings"], "llm_calls": digest["meta"]["llm_calls"]}


def test_every_corpus_document_replays_to_the_digest_the_bench_saved(replayed):
    _, digests = replayed
    assert sorted(digests) == sorted(p.stem for p in ARTICLES.glob("*.txt"))
    for stem, digest in digests.items():
        saved = json.loads((SAVED / f"{stem}.json").read_text(encoding="utf-8"))
        assert digest["meta"]["strategy"] == "context" and digest["meta"]["failed_chunks"] == 0, stem
        assert _content(digest) == _content(saved), stem


def test_no_contract_error_and_every_overview_figure_is_printed_in_the_report(replayed):
    report, digests = replayed
    micro = report["micro"]
    assert micro["violations"] == 0 and micro["figure_faults"] == 0 and micro["noise_items"] == 0
    for stem, d in digests.items():
        assert overview_faults((ARTICLES / f"{stem}.txt").read_text(encoding="utf-8"), d["overview"]) == [], stem
        assert d["meta"]["llm_calls"] >= d["meta"]["chunks"] + 1, stem  # every chunk asked, and the overview
