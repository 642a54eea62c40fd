"""``reportsum distill DIR -o labeller.json`` end to end, offline.

The context strategy's calls go over HTTP to the loopback double (FakeOpenAIServer), whose
model answers every numbered unit (tests.doubles.context_replies): the plumbing is checked -
batch, the readings in the gold format, the refit through service/train.py, the labeller
file - not the quality of the double's labels. Small articles are cut from the seeds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service import distill, labeller, train
from service.cli import main
from service.config import Settings
from service.evaluate import load_gold
from tests.conftest import GOLD, SEEDS
from tests.doubles import context_replies
from tests.doubles.fake_openai import FakeOpenAIServer, status
from tests.e2e.test_batch import piece


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    src = tmp_path / "reports"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text(piece(SEEDS[0], 2), encoding="utf-8")
    (src / "sub" / "b.md").write_text(piece(SEEDS[1], 3), encoding="utf-8")
    (src / "c.txt").write_text(piece(SEEDS[2], 2), encoding="utf-8")
    return src


class Server(FakeOpenAIServer):
    """The context double; requests holding ``broken`` (a passage of one article) get a 500."""

    broken: str | None = None

    def decide(self, received):
        if self.broken and self.broken in json.dumps(received.body, ensure_ascii=False):
            with self._lock:
                self.requests.append(received)
            return status(500)
        return super().decide(received)


@pytest.fixture
def server(monkeypatch):
    with Server(responder=context_replies.reply) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("REPORTSUM_MODEL", "fake-model")
        monkeypatch.setenv("REPORTSUM_MAX_RETRIES", "0")  # a 500 fails at once, no SDK backoff
        monkeypatch.setenv("REPORTSUM_TIMEOUT", "10")
        yield srv


def training_files(work: Path) -> dict[str, tuple[str, dict]]:
    out = {}
    for g in sorted((work / distill.TRAINING / "gold").glob("*.json")):
        text = (work / distill.TRAINING / "articles" / f"{g.stem}.txt").read_text(encoding="utf-8")
        out[g.stem] = (text, json.loads(g.read_text(encoding="utf-8")))
    return out


def test_distill_reads_a_folder_and_writes_a_labeller_the_settings_load(reports, server, tmp_path, monkeypatch, capsys):
    """The shipped gold and silver + three readings; the configuration of the shipped labeller
    (``--folds none``: no selection to rerun), so one fit of the 60 documents and the three."""
    out = tmp_path / "out" / "labeller.json"
    assert main(["distill", str(reports), "-o", str(out), "--folds", "none", "-q"]) == 0
    calls = len(server.requests)
    assert calls >= 6  # a chunk and an overview per article at least

    work = out.parent / "labeller.json.distill"
    docs = training_files(work)
    assert set(docs) == {"a_txt", "sub__b_md", "c_txt"}
    for name, (text, gold) in docs.items():
        load_gold(work / distill.TRAINING / "gold" / f"{name}.json")  # the gold format parses
        items = [it for c in ("achievements", "problems", "plans") for it in gold[c]]
        assert items and gold["doc"] == f"{name}.txt"
        assert all(text[it["span"][0]:it["span"][1]] == it["evidence"] for it in items)
    assert docs["sub__b_md"][0] == (reports / "sub" / "b.md").read_text(encoding="utf-8")

    # the settings path loads it, and a digest with it runs (the embedded model is not asked)
    monkeypatch.setenv("REPORTSUM_LABELLER", str(out))
    model = labeller.load(Settings().labeller)
    meta = model.meta["distilled"]
    assert meta["source"] == "reports" and meta["documents"] == 3 and sorted(meta["names"]) == sorted(docs)
    assert set(meta["names"]) < set(model.meta["documents"]) and len(model.meta["documents"]) == 63
    assert meta["reader"]["model"] == "fake-model" and meta["date"] and len(meta["corpus_sha256"]) == 64
    digest_path = tmp_path / "digest.json"
    assert main(["summarize", str(reports / "a.txt"), "--backend", "local", "--assist-margin", "0", "-q",
                 "-o", str(digest_path)]) == 0
    digest = json.loads(digest_path.read_text(encoding="utf-8"))
    assert digest["meta"]["labeller"] == model.version != labeller.shipped().version
    assert len(server.requests) == calls

    # the file passes the shipped file's own format test
    from tests.unit import test_labeller

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(labeller, "shipped", lambda: model)
        test_labeller.test_shipped_file_names_its_labels_features_and_selection_scores()

    # a rerun (REPORTSUM_LABELLER naming the file it rewrites) reads nothing again and, its
    # training data unchanged, refits nothing
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["distill", str(reports), "-o", str(out), "--folds", "none", "-q"]) == 0
    assert len(server.requests) == calls
    assert "0 model calls this run" in capsys.readouterr().out
    assert out.read_bytes() == before


@pytest.fixture
def small_base(tmp_path, monkeypatch):
    """Two seeds as the gold and two short silver pages: the same code path, fits in a second."""
    gold_dir, silver_dir = tmp_path / "base" / "gold_set", tmp_path / "base" / "silver_set"
    silver = train.ROOT / "fixtures" / "silver"
    for d, pairs in ((gold_dir, [(a, GOLD / f"{a.stem}.json") for a in SEEDS[3:5]]),
                     (silver_dir, [(silver / "articles" / f"{n}.txt", silver / "gold" / f"{n}.json")
                                   for n in ("s28_tcm_policy_item5_html", "s29_tcm_policy_item6_html")])):
        (d / "articles").mkdir(parents=True)
        (d / "gold").mkdir()
        for article, gold in pairs:
            shutil.copy(article, d / "articles" / article.name)
            shutil.copy(gold, d / "gold" / gold.name)
    monkeypatch.setattr(train, "GOLD_SETS", (gold_dir / "articles",))
    monkeypatch.setattr(train, "SILVER_SETS", (silver_dir / "articles",))


def test_a_failing_article_is_listed_and_the_rest_still_train(reports, server, small_base, tmp_path, capsys):
    server.broken = (reports / "c.txt").read_text(encoding="utf-8").split("\n\n")[1][:12]
    out, work = tmp_path / "lab.json", tmp_path / "work"
    args = ["distill", str(reports), "-o", str(out), "--work", str(work), "--folds", "seeds", "--weight", "0.5", "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "left out c.txt" in printed and "1 left out" in printed
    # the grouped validation over the one fold asked for, the plain baseline beside it
    assert "leave-one-source-group-out" in printed and "baseline" in printed and "seeds:" in printed
    assert set(training_files(work)) == {"a_txt", "sub__b_md"}
    model = labeller.load(out)
    meta = model.meta["distilled"]
    assert meta["left_out"] == ["c.txt"] and meta["weight"] == 0.5 and meta["folds"] == ["seeds"]
    assert model.meta["cv_leave_one_group_out"]["labeller"]["groups"].keys() == {"seeds"}
    assert len(model.meta["documents"]) == 2 + 2 + 2

    # healed: the rerun reads the failed article only, and it joins the training
    server.broken = None
    calls = len(server.requests)
    assert main(args) == 0
    assert "0 left out" in capsys.readouterr().out
    assert len(server.requests) > calls
    assert set(training_files(work)) == {"a_txt", "sub__b_md", "c_txt"}
    assert labeller.load(out).meta["distilled"]["documents"] == 3

    # nothing to read, but another weight: no call, and a refit
    calls = len(server.requests)
    assert main([*args[:-2], "1.5", "-q"]) == 0
    assert len(server.requests) == calls and labeller.load(out).meta["distilled"]["weight"] == 1.5


def test_without_an_endpoint_distill_says_so_in_one_line(reports, tmp_path, capsys):
    assert main(["distill", str(reports), "-o", str(tmp_path / "l.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "OPENAI_BASE_URL" in err
    assert not (tmp_path / "l.json.distill").exists()


def test_folds_name_gold_source_groups():
    assert distill.parse_folds("all") is None and distill.parse_folds("none") == ()
    assert distill.parse_folds("seeds, c0") == ("national reports", "seeds")
    with pytest.raises(Exception, match="unknown source group"):
        distill.parse_folds("silver")


def test_training_names_are_flat_and_unique():
    taken: set[str] = set()
    assert distill.training_name("a/b.txt", taken) == "a__b_txt"
    assert distill.training_name("a.md", taken) == "a_md"
    assert distill.training_name("a__b.txt", taken).startswith("a__b_txt_")
