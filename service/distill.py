"""``reportsum distill DIR -o labeller.json``: teach the learned labeller a user's genre.

A capable model reads every article under DIR through the ``context`` strategy (one call per
chunk, every unit labelled), and those readings become training documents exactly like the
shipped silver (``fixtures/silver``): the article text plus the model's items in the gold
format (``../shared/eval/GOLD_FORMAT.md``), each with its ``span``. The labeller is then
retrained by ``service.train`` - the code path of ``reportsum train-labeller`` - on the
shipped gold and silver plus these readings, and written as a labeller file that
``--labeller`` / ``REPORTSUM_LABELLER`` loads.

The reading runs through ``service.batch`` (digest cache, resume, progress, failures listed),
with the work folder (``<out>.distill/`` unless ``--work``) as the batch's output:

    <work>/index.jsonl, <work>/<rel>.json   the batch's digests and index (a rerun skips them)
    <work>/training/articles/<name>.txt     each article's text as read (UTF-8)
    <work>/training/gold/<name>.json        the model's reading in the gold format

An article the batch failed, or whose digest has chunks the model did not answer (the
labeller filled them in: training on them would teach the labeller its own guesses), is
listed and left out; a rerun retries it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from service.config import Settings
from service.errors import ConfigError, InputError, ReportsumError
from service.models import CATEGORIES

WORK_SUFFIX = ".distill"
TRAINING = "training"
ALL_FOLDS = None  # every gold source group is a fold
NO_FOLDS: tuple[str, ...] = ()  # no selection, no validation: the shipped labeller's choices


# ------------------------------------------------------------------------- pure logic


def endpoint_settings(settings: Settings) -> Settings:
    """The settings of the reading: the context strategy against the configured endpoint
    (``replay`` answers from recordings); raises ``ConfigError`` when there is none. The
    shipped labeller stands in for units the model leaves unanswered, whatever ``--labeller``
    says: the digest key holds the labeller's version, and a rerun after writing the labeller
    this command reads with must not read everything again."""
    backend = settings.resolved_backend()
    if backend == "local" or (backend == "openai" and not (settings.openai_base_url or settings.openai_api_key)):
        raise ConfigError("distill needs an OpenAI-compatible endpoint to read the articles: set OPENAI_BASE_URL "
                          "(and OPENAI_API_KEY, REPORTSUM_MODEL) or pass --base-url")
    return settings.model_copy(update={"backend": backend, "strategy": "context", "labeller": None})


def parse_folds(spec: str | None) -> tuple[str, ...] | None:
    """``all`` -> None (every gold group); ``none`` or ``0`` -> () (no selection, no
    validation); else a comma list of gold source groups (names, or their file-name prefix)."""
    from service import train

    spec = (spec or "all").strip().lower()
    if spec == "all":
        return ALL_FOLDS
    if spec in ("none", "0"):
        return NO_FOLDS
    names = sorted({g for g in train.GROUPS.values() if g != "silver"} | {"seeds"})
    out = []
    for part in (p.strip() for p in spec.split(",")):
        group = train.GROUPS.get(part, part)
        if group not in names:
            raise ConfigError(f"--folds: unknown source group {part!r}; choose all, none or from: {', '.join(names)}")
        out.append(group)
    return tuple(sorted(set(out)))


def training_name(rel: str, taken: set[str]) -> str:
    """A flat, unique file stem for ``rel`` (``a/b.txt`` -> ``a__b_txt``): the training
    folder is flat like silver's, and ``a.txt`` and ``a.md`` must not collide."""
    name = rel.replace("/", "__").replace(".", "_")
    if name in taken:
        name += "_" + hashlib.sha256(rel.encode("utf-8")).hexdigest()[:8]
    taken.add(name)
    return name


def gold_document(name: str, rel: str, text: str, digest: dict[str, Any]) -> dict[str, Any]:
    """A digest as a gold-format document, like silver's: the model's items with their spans
    (only items whose evidence is ``text[span]``: the contract, checked again at the door)."""
    info = digest.get("doc") or {}
    out: dict[str, Any] = {"doc": f"{name}.txt", "source": rel,
                           **{k: info.get(k) for k in ("title", "organization", "region", "period")}}
    for cat in CATEGORIES:
        items = []
        for it in digest.get(cat) or []:
            start, end = it["span"]
            if text[start:end] == it["evidence"]:
                items.append({"summary": it["summary"], "evidence": it["evidence"],
                              "figures": list(it.get("figures") or []), "span": [start, end]})
        out[cat] = items
    out["noise"] = []  # excluded segments are simply not items (silver lists none either)
    return out


def unusable(entry: dict[str, Any], digest: dict[str, Any] | None) -> str | None:
    """Why a batch entry is no reading to train on (None: it is one)."""
    if entry.get("status") == "failed":
        return entry.get("error") or "failed"
    if digest is None:
        return "its digest is missing; rerun"
    meta = digest.get("meta") or {}
    if meta.get("strategy") != "context":
        return f"read by the {meta.get('strategy')!r} strategy, not the model"
    if meta.get("failed_chunks"):
        return f"{meta['failed_chunks']} of {meta.get('chunks')} chunk calls failed (the labeller filled them in)"
    return None


# ------------------------------------------------------------------------------ the run


@dataclass
class Readings:
    """The training documents written from one batch, and the articles left out."""

    names: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (rel, why)
    calls: int = 0  # model calls this run (0 on a rerun that found every reading done)
    reader: dict[str, Any] = field(default_factory=dict)  # backend, model, prompt version


def work_folder(out: Path, work: Path | None) -> Path:
    return Path(work) if work is not None else out.with_name(out.name + WORK_SUFFIX)


def read(directory: Path, work: Path, settings: Settings, show_progress: bool) -> tuple[int, Readings]:
    """The batch over ``directory`` into ``work``, then its digests as training documents."""
    from service.batch import INDEX_NAME, read_index, run_batch

    code = run_batch(directory, work, settings, formats={"json"}, shard=None, show_progress=show_progress)
    if code not in (0, 1):  # interrupted: what finished is kept, a rerun resumes
        return code, Readings()
    return code, write_training(directory, work, read_index(work / INDEX_NAME))


def write_training(directory: Path, work: Path, entries: dict[str, dict[str, Any]]) -> Readings:
    from service.batch import META_KEY, _load_output, output_path
    from service.cache import content_sha256
    from service.fsutil import atomic_write
    from service.ingest import read_bytes

    out, taken = Readings(), set()
    articles, gold = work / TRAINING / "articles", work / TRAINING / "gold"
    for rel in sorted(entries):
        entry = entries[rel]
        out.calls += int(entry.get("llm_calls") or 0)
        digest = _load_output(output_path(work, rel, "json")) if entry.get("status") != "failed" else None
        why = unusable(entry, digest)
        text = None
        if why is None:
            try:
                text = read_bytes((directory / rel).read_bytes(), rel)
            except (OSError, InputError) as exc:
                why = f"cannot read it again: {exc}"
            else:
                if content_sha256(text) != (digest.get(META_KEY) or {}).get("content_sha256"):
                    why = "changed since it was read; rerun"
        if why is not None:
            out.failed.append((rel, why))
            continue
        if not out.reader:
            out.reader = {k: (digest.get(META_KEY) or {}).get(k) for k in ("backend", "model", "prompt_version")}
        name = training_name(rel, taken)
        atomic_write(articles / f"{name}.txt", text)
        atomic_write(gold / f"{name}.json",
                     json.dumps(gold_document(name, rel, text, digest), ensure_ascii=False, indent=2) + "\n")
        out.names.append(name)
    _drop_stale(articles, gold, set(out.names))
    return out


def _drop_stale(articles: Path, gold: Path, keep: set[str]) -> None:
    """Training files of articles no longer read (removed, or failed this time)."""
    for folder, suffix in ((articles, ".txt"), (gold, ".json")):
        for p in folder.glob(f"*{suffix}") if folder.is_dir() else ():
            if p.stem not in keep:
                p.unlink()


def training_key(work: Path, options: dict[str, Any]) -> str:
    """What the labeller is fitted from: the bytes of every training file (the shipped gold and
    silver, the readings), the options, reportsum's version and the shipped labeller's. The
    same key, the same fit: a rerun that read nothing new does not refit (minutes with
    validation)."""
    from service import __version__, labeller, train

    # the shipped file: --folds none takes its configuration, and it moves with the code
    versions = {"reportsum": __version__, "shipped labeller": labeller.shipped().version}
    h = hashlib.sha256(json.dumps({**options, **versions}, sort_keys=True).encode())
    for d in (*train.GOLD_SETS, *train.SILVER_SETS, work / TRAINING / "articles"):
        for path in sorted(Path(d).glob("*.txt")):
            gold = Path(d).parent / "gold" / f"{path.stem}.json"
            for f in (path, gold):
                h.update(f"{f.name}\0".encode())
                h.update(f.read_bytes() if f.exists() else b"")
    return h.hexdigest()


def up_to_date(out: Path, key: str) -> Any:
    """The labeller in ``out`` when it was distilled from exactly this key, else None."""
    from service import labeller

    try:
        model = labeller.load(out)
    except (OSError, ValueError, KeyError):
        return None
    return model if (model.meta.get("distilled") or {}).get("key") == key else None


def retrain(work: Path, readings: Readings, *, source: str, with_cv: bool, folds: tuple[str, ...] | None,
            weight: float | None, reader: dict[str, Any], log: Callable[[str], None], key: str = "") -> Any:
    """The labeller refitted by ``service.train`` on gold + silver + the readings."""
    from service import labeller, train

    user = train.load_docs([work / TRAINING / "articles"], group=train.DISTILLED)
    if weight is not None:
        user = [replace(d, weight=weight) for d in user]
    chosen = None
    if folds == NO_FOLDS:  # nothing to choose with: the shipped labeller's choices and table
        shipped = labeller.shipped()
        chosen = (train.Config.from_json(shipped.meta["config"]), shipped.meta.get("selection_f1", 0.0),
                  shipped.meta.get("selection", {}))
        with_cv = False
    model, _ = train.build(train.Fits(train.load_all() + user, log), with_cv, folds=folds, chosen=chosen)
    meta = dict(model.meta)
    meta["distilled"] = {
        "source": source, "documents": len(user), "names": [d.name for d in user],
        "corpus_sha256": train.corpus_hash(user),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "weight": weight if weight is not None else "silver_weight of config",
        "folds": "all" if folds is None else list(folds), "validated": with_cv,
        "left_out": [rel for rel, _ in readings.failed], "reader": reader, "key": key,
    }
    if chosen is not None:
        meta["selection_from"] = f"the shipped labeller {labeller.shipped().version} (--folds none: not rerun)"
    return replace(model, meta=meta)


def run(directory: Path, out: Path, settings: Settings, *, work: Path | None = None, with_cv: bool = True,
        folds: Sequence[str] | None = ALL_FOLDS, weight: float | None = None,
        log: Callable[[str], None] | None = None) -> tuple[int, Any, Readings]:
    """Read, write the training documents, retrain, write ``out``. Returns (exit code, the
    labeller or None, the readings)."""
    from service import train

    settings = endpoint_settings(settings)
    if weight is not None and not weight > 0:
        raise ConfigError(f"--weight must be above 0, got {weight}")
    directory, out = Path(directory), Path(out)
    work = work_folder(out, work)
    say = log or (lambda s: None if settings.quiet else print(s, file=sys.stderr, flush=True))
    code, readings = read(directory, work, settings, show_progress=not settings.quiet)
    if code not in (0, 1):
        return code, None, readings
    if not readings.names:
        raise ReportsumError(f"no article under {directory} was read by the model ({len(readings.failed)} failed): "
                             "nothing to learn from")
    folds = None if folds is None else tuple(folds)
    key = training_key(work, {"folds": folds, "cv": with_cv and folds != NO_FOLDS, "weight": weight})
    model = up_to_date(out, key)
    if model is not None:
        say(f"{out} is up to date: distilled from these readings with these options; not refitted")
        return 0, model, readings
    say(f"training on the shipped gold and silver + {len(readings.names)} readings in {work / TRAINING}")
    model = retrain(work, readings, source=directory.resolve().name, with_cv=with_cv, folds=folds, weight=weight,
                    reader=readings.reader, log=say, key=key)
    train.write(model, out)
    return 0, model, readings
