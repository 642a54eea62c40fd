"""`reportsum track` and `reportsum eval-track` on the two tracking development pairs
(fixtures/tracking, copied from ../shared/eval/tracking), without an endpoint: eval-track
through the real CLI in a subprocess, track through ``service.cli.main`` in process (each
run reads two 50,000-character reports). The thresholds are issue 28's "Done when" for the
no-endpoint path.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from service.cli import main
from service.evaluate import numbers_in
from tests.conftest import ROOT

TRACKING = ROOT / "fixtures" / "tracking"
PAIRS = ("p2014_2015", "p2009_2010")


def reportsum(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service", *args], capture_output=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def scores() -> dict:
    proc = reportsum("eval-track", str(TRACKING), "--json")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:] + proc.stdout.decode()[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("pair", PAIRS)
def test_done_when_without_an_endpoint(scores, pair):
    s = next(p for p in scores["pairs"] if p["pair"] == pair)
    assert not s["failed"], s["error"]
    assert s["gold"] and s["gold_unlocated"] == 0
    assert s["recall"] >= 0.85, s
    assert s["precision"] >= 0.70, s
    assert s["status_accuracy"] >= 0.60, s
    assert s["contract_errors"] == []


@pytest.mark.parametrize("pair", PAIRS)
def test_track_outputs_keep_the_contract(pair, tmp_path, capsys):
    earlier, later = TRACKING / pair / "earlier.txt", TRACKING / pair / "later.txt"
    e_text, l_text = earlier.read_text(encoding="utf-8"), later.read_text(encoding="utf-8")
    out = tmp_path / "track.json"
    assert main(["track", str(earlier), str(later), "-o", str(out)]) == 0
    track = json.loads(out.read_text(encoding="utf-8"))
    assert track["items"]
    for it in track["items"]:
        c = it["commitment"]
        assert e_text[c["span"][0]:c["span"][1]] == c["evidence"]
        assert c["figures"] and all(f in c["evidence"] for f in c["figures"])
        cited = [st["evidence"] for st in it["later"]]
        for st in it["later"]:
            assert l_text[st["span"][0]:st["span"][1]] == st["evidence"]
        if it["target"]:
            assert it["target"] in c["evidence"]
        # no figure in a track output that its evidence does not print
        printed = {n for e in cited for n in numbers_in(e)}
        assert set(numbers_in(it["reported"] or "")) <= printed
        assert not numbers_in(it["basis"])
        assert (it["status"] == "not_reported") == (not it["later"])

    if pair != PAIRS[0]:
        return  # the renderers once are enough
    capsys.readouterr()
    assert main(["track", str(earlier), str(later), "--format", "md"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[0] == "| commitment | target | reported | status | where |"
    assert len(table) == 1 + len(track["items"])  # the head and one row per commitment
    assert main(["track", str(earlier), str(later), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["status"] for r in rows] == [it["status"] for it in track["items"]]


def test_post_v1_tracks(tmp_path):
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.config import Settings

    # on the replay backend the API reads the recorded replies as `reportsum track` does
    settings = Settings(backend="replay", model="reader", recordings=ROOT / "fixtures" / "recordings" / "track",
                        cache=tmp_path / "c.sqlite3", db=tmp_path / "jobs.sqlite3", quiet=True, max_chars=70_000)
    earlier = (TRACKING / PAIRS[0] / "earlier.txt").read_text(encoding="utf-8")
    later = (TRACKING / PAIRS[0] / "later.txt").read_text(encoding="utf-8")
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/tracks", json={"earlier": earlier, "later": later})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert r.json()["meta"]["backend"] == "replay" and all(it["basis"].startswith("the model") for it in items)
        assert len(items) >= 30 and {it["status"] for it in items} >= {"met", "not_reported"}
        for it in items:
            s, e = it["commitment"]["span"]
            assert earlier[s:e] == it["commitment"]["evidence"]
            assert all(later[st["span"][0]:st["span"][1]] == st["evidence"] for st in it["later"])
        assert client.post("/v1/tracks", json={"earlier": earlier}).status_code == 422
        too_long = client.post("/v1/tracks", json={"earlier": "年" * 70_001, "later": later})
        assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "too_large"


def test_track_reads_digests_already_made(tmp_path, capsys):
    """A digest from ``summarize --format json`` stands for its report: its plans are the
    commitments' source (no labelling again); the text comes from beside it or a flag,
    since a digest holds spans into its report, not the report."""
    from service.cli import EXIT_INPUT

    pair = TRACKING / PAIRS[0]
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("earlier.txt", "later.txt"):
        (reports / name).write_bytes((pair / name).read_bytes())
        # named as `batch` names a digest: a/b.txt -> a/b.txt.json; the labeller alone (no
        # embedded model in CI), as the track's own labelling
        assert main(["summarize", str(reports / name), "--format", "json", "-o", str(reports / f"{name}.json"),
                     "-q", "--no-cache", "--assist-margin", "0"]) == 0
    assert main(["track", str(pair / "earlier.txt"), str(pair / "later.txt"), "-q"]) == 0
    from_texts = json.loads(capsys.readouterr().out)
    assert main(["track", str(reports / "earlier.txt.json"), str(reports / "later.txt.json"), "-q"]) == 0
    from_digests = json.loads(capsys.readouterr().out)
    # the same labeller made the digest: the same commitments, statuses and spans
    assert [it["commitment"] for it in from_digests["items"]] == [it["commitment"] for it in from_texts["items"]]
    assert [it["status"] for it in from_digests["items"]] == [it["status"] for it in from_texts["items"]]
    assert from_digests["earlier"]["source"] == str(reports / "earlier.txt")
    assert any("read from its digest" in w for w in from_digests["meta"]["warnings"])

    # a digest whose plans differ from the labeller's: its plans decide what is a commitment
    digest = json.loads((reports / "earlier.txt.json").read_text(encoding="utf-8"))
    first = from_texts["items"][0]["commitment"]["span"]
    digest["plans"] = [p for p in digest["plans"] if p["span"] != first]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "d.json").write_text(json.dumps(digest, ensure_ascii=False), encoding="utf-8")
    assert main(["track", str(alone / "d.json"), str(pair / "later.txt"), "-q",
                 "--earlier-text", str(reports / "earlier.txt")]) == 0
    fewer = json.loads(capsys.readouterr().out)
    assert [it["commitment"] for it in fewer["items"]] == [it["commitment"] for it in from_texts["items"][1:]]

    # no text beside the digest, or the wrong text: a clear input error
    assert main(["track", str(alone / "d.json"), str(pair / "later.txt"), "-q"]) == EXIT_INPUT
    assert "--earlier-text" in capsys.readouterr().err
    assert main(["track", str(alone / "d.json"), str(pair / "later.txt"), "-q",
                 "--earlier-text", str(pair / "later.txt")]) == EXIT_INPUT
    assert "not made from this text" in capsys.readouterr().err
    (alone / "x.json").write_text('{"items": []}', encoding="utf-8")
    assert main(["track", str(alone / "x.json"), str(pair / "later.txt"), "-q"]) == EXIT_INPUT
    assert "not a digest" in capsys.readouterr().err


def test_batch_track_pairs_yearly_reports(tmp_path, capsys):
    reports = tmp_path / "reports"
    reports.mkdir()
    for year, name in ((2014, "earlier.txt"), (2015, "later.txt")):
        (reports / f"gov_{year}.txt").write_bytes((TRACKING / PAIRS[0] / name).read_bytes())
    (reports / "gov_2009.txt").write_bytes((TRACKING / PAIRS[1] / "earlier.txt").read_bytes())  # no 2010: no pair
    out = tmp_path / "out"
    assert main(["batch", str(reports), "-o", str(out), "--track", "--format", "json,csv", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["gov_2014__gov_2015.csv", "gov_2014__gov_2015.json"]
    track = json.loads((out / "gov_2014__gov_2015.json").read_text(encoding="utf-8"))
    assert track["earlier"]["source"].endswith("gov_2014.txt") and len(track["items"]) >= 30
    # with an endpoint (here the recorded reader) the model reads the candidates, as in `track`
    out = tmp_path / "out-model"
    assert main(["batch", str(reports), "-o", str(out), "--track", "--format", "json", "-q", "--backend", "replay",
                 "--model", "reader", "--recordings", str(ROOT / "fixtures" / "recordings" / "track")]) == 0
    track = json.loads((out / "gov_2014__gov_2015.json").read_text(encoding="utf-8"))
    assert track["meta"]["strategy"] == "model" and track["meta"]["llm_calls"] > 0


class Scripted:
    """An in-process backend answering each track request with ``respond(n_commitments)``."""

    name, model = "scripted", "scripted-model"

    def __init__(self, respond):
        self.respond, self.requests = respond, []

    async def complete(self, request):
        from service.backends.base import LLMResponse

        self.requests.append(request)
        n = request.messages[1]["content"].count("【承诺 ")
        return LLMResponse(content=self.respond(n))

    async def aclose(self):
        pass


def test_track_with_model_keeps_the_contract_and_corrects_figures():
    import asyncio

    from service.evaluate import track_contract_errors
    from service.track import BATCH, track, track_with_model

    earlier = (TRACKING / PAIRS[0] / "earlier.txt").read_text(encoding="utf-8")
    later = (TRACKING / PAIRS[0] / "later.txt").read_text(encoding="utf-8")
    # a careless model: everything not_met, citing its first candidate
    careless = Scripted(lambda n: json.dumps({"items": [{"n": k, "status": "not_met", "statements": [1]}
                                                        for k in range(1, n + 1)]}))
    t = asyncio.run(track_with_model(earlier, later, careless))
    assert t.meta.strategy == "model" and t.meta.llm_calls == len(careless.requests) == -(-len(t.items) // BATCH)
    assert track_contract_errors(earlier, later, t) == []
    assert t.meta.corrected >= 10  # "7.4%" against "7.5%左右", "1322万人" against "1000万人以上", ...
    gdp = next(it for it in t.items if it.commitment.evidence.startswith("国内生产总值增长7.5%左右"))
    assert (gdp.status, gdp.reported) == ("met", "7.4%")

    # a reply that never validates: every commitment decided without the model, and said so
    broken = Scripted(lambda n: "not json")
    t2 = asyncio.run(track_with_model(earlier, later, broken))
    assert [it.status for it in t2.items] == [it.status for it in track(earlier, later).items]
    assert any("decided without the model" in w for w in t2.meta.warnings)
