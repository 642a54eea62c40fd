"""Command line: summarize, batch, serve, eval, doctor.

Errors reportsum raises on purpose are printed as one line and exit non-zero; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from service.config import Settings
from service.errors import ReportsumError

EXIT_INPUT, EXIT_BACKEND = 2, 3


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "openai", "local", "replay"], help="model backend (default: auto)")
    p.add_argument("--model", help="model name (REPORTSUM_MODEL)")
    p.add_argument("--base-url", dest="openai_base_url", help="OpenAI-compatible endpoint (OPENAI_BASE_URL)")
    p.add_argument("--structured-mode", choices=["auto", "json_schema", "json_object", "none"])
    p.add_argument("--timeout", type=float, help="seconds per model call")
    p.add_argument("--concurrency", type=int, help="model calls in flight")
    p.add_argument("--chunk-tokens", type=int, help="token budget of one chunk")
    p.add_argument("--record", action="store_true", default=None, help="write every model exchange to --recordings")
    p.add_argument("--record-missing", action="store_true", default=None,
                   help="like --record, but answer exchanges already recorded from their recordings")
    p.add_argument("--recordings", type=Path, help="recordings directory (REPORTSUM_RECORDINGS)")
    p.add_argument("--no-cache", action="store_true", default=None, help="bypass the digest cache")
    p.add_argument("--quiet", "-q", action="store_true", default=None, help="no progress on stderr")
    p.add_argument("--strategy", choices=["auto", "learned", "context"],
                   help="context: the model reads each chunk and labels and summarizes every unit (default for "
                        "an endpoint); learned: the learned labeller decides (default for the embedded model)")
    p.add_argument("--labeller", type=Path, help="labeller parameter file (default: the shipped one; REPORTSUM_LABELLER)")
    p.add_argument("--assist-margin", type=float, dest="assist_margin",
                   help="ask the model about units whose top two label probabilities are closer than this (0: never)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reportsum", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("summarize", help="digest one article (file or - for stdin)")
    p.add_argument("file", help="article file (.txt, .md, .html) or - for stdin")
    p.add_argument("--format", choices=["json", "md"], default="json")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    _common(p)

    p = sub.add_parser("batch", help="digest every article under a folder")
    p.add_argument("directory", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--format", default="json", help="comma list of json,md,csv")
    p.add_argument("--shard", help="K/N: process a deterministic 1/N of the folder")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the pipeline on a Ray cluster (ADDRESS: auto or HOST:6379; none starts a local one)")
    p.add_argument("--track", action="store_true",
                   help="one issuer's yearly reports: track each against the next year's (years from file names)")
    _common(p)

    p = sub.add_parser("serve", help="run the HTTP API and web page")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1,
                   help="server processes on one port, sharing the job store (each gets cores/N CPU workers)")
    _common(p)

    p = sub.add_parser("doctor", help="check the backend, model, llama.cpp build and endpoint; print fixes")
    _common(p)

    p = sub.add_parser("eval", help="grade digests against gold annotations")
    p.add_argument("articles", type=Path)
    p.add_argument("--gold", type=Path, required=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--save", type=Path, help="keep the digests here")
    _common(p)

    p = sub.add_parser("train-labeller", help="retrain the labeller from the development set (deterministic)")
    p.add_argument("-o", "--out", type=Path, help="parameter file to write (default: the packaged one)")
    p.add_argument("--no-cv", action="store_true", help="skip the nested grouped validation (minutes of fits) whose scores the file keeps")

    p = sub.add_parser("distill", help="an endpoint's model reads a folder (context strategy, through batch); the "
                                      "labeller is retrained on its readings plus the shipped gold and silver")
    p.add_argument("directory", type=Path, help="the reports to learn from (*.txt, *.md, *.html, recursively)")
    p.add_argument("-o", "--out", type=Path, required=True, help="labeller file to write (load it with --labeller)")
    p.add_argument("--work", type=Path, help="work folder: digests, index and the readings in the gold format "
                                            "(default: OUT.distill next to OUT)")
    p.add_argument("--no-cv", action="store_true", help="skip the nested grouped validation (minutes of fits)")
    p.add_argument("--folds", default="all",
                   help="gold source groups held out to choose the configuration and validate: all (default), a comma "
                        "list (e.g. seeds,health news), or none (keep the shipped labeller's choices; no validation)")
    p.add_argument("--weight", type=float, help="training weight of your readings (default: silver's)")
    _common(p)

    p = sub.add_parser("track", help="an earlier report's figured commitments and what the later report says of them")
    p.add_argument("earlier", help="the earlier report (.txt, .md, .html), or its digest (.json from summarize)")
    p.add_argument("later", help="the later report, reviewing the earlier one's year (or its digest)")
    for which in ("earlier", "later"):
        p.add_argument(f"--{which}-text", help=f"the text the {which} digest was made from (a digest holds spans "
                       "into it, not the text; default: the digest's name without .json, or its stem .txt/.html/.md)")
    p.add_argument("--format", choices=["json", "md", "csv"], default="json")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    _common(p)

    p = sub.add_parser("eval-track", help="grade track against tracking gold (pair folders with links.json)")
    p.add_argument("directory", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _common(p)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    keys = ("backend", "model", "openai_base_url", "structured_mode", "timeout", "concurrency", "chunk_tokens",
            "record", "record_missing", "recordings", "no_cache", "quiet", "labeller", "assist_margin", "strategy")
    flags = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    return Settings(**flags)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        return COMMANDS[args.command](args, settings)
    except ReportsumError as err:
        from service.errors import BackendError, InputError

        print(f"reportsum: error: {err}", file=sys.stderr)
        if isinstance(err, InputError):
            return EXIT_INPUT
        return EXIT_BACKEND if isinstance(err, BackendError) else 1
    except KeyboardInterrupt:
        print("reportsum: interrupted", file=sys.stderr)
        return 130


def _read_input(file: str) -> tuple[str, str]:
    from service.errors import InputError
    from service.ingest import read_bytes

    if file == "-":
        return read_bytes(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror}", file) from None
    return read_bytes(data, file), file


def summarize_text(text: str, source: str, settings: Settings) -> "Digest":  # noqa: F821
    """One article through the shared digest cache, with a progress bar on stderr."""
    from service.backends import make_backend
    from service.cache import open_cache, summarize_cached
    from service.progress import ProgressBar

    async def run():
        backend = make_backend(settings)
        bar = ProgressBar(f"{source}", enabled=not settings.quiet)
        try:
            with open_cache(settings) or _nullcache() as cache:
                digest, _ = await summarize_cached(text, backend, settings, cache=cache, source=source,
                                                   progress=bar.update)
                return digest
        finally:
            bar.close()
            await backend.aclose()

    return asyncio.run(run())


class _nullcache:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from service.render import to_json, to_markdown

    text, source = _read_input(args.file)
    digest = summarize_text(text, source, settings)
    out = to_markdown(digest) if args.format == "md" else to_json(digest) + "\n"
    if args.output:
        from service.batch import atomic_write

        atomic_write(args.output, out)
    else:
        sys.stdout.write(out)
    return 0


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from service.batch import parse_shard, run_batch

    formats = {f.strip() for f in args.format.split(",") if f.strip()}
    if args.track:
        return _batch_track(args.directory, args.out, formats, settings)
    shard = parse_shard(args.shard) if args.shard else None
    if args.ray is not None:
        from service.batch_ray import run_batch_ray

        return run_batch_ray(args.directory, args.out, settings, formats=formats, shard=shard,
                             show_progress=not settings.quiet, address=args.ray or None)
    return run_batch(args.directory, args.out, settings, formats=formats, shard=shard,
                     show_progress=not settings.quiet)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from service.api import serve

    serve(args.host, args.port, settings, workers=args.workers)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from service.evaluate import run_eval
    from service.ingest import read_bytes

    def summarize_file(path: Path):
        return summarize_text(read_bytes(path.read_bytes(), path.name), path.name, settings.model_copy(
            update={"quiet": True}))

    return run_eval(args.articles, args.gold, settings, as_json=args.json, save=args.save,
                    summarize_file=summarize_file, read_text=lambda p: read_bytes(p.read_bytes(), p.name))


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from service.doctor import run

    return run(settings)


def cmd_train_labeller(args: argparse.Namespace, settings: Settings) -> int:
    from service import train

    out = args.out or Path(__file__).resolve().parent / "data" / "labeller.json"
    model = train.train_and_write(out, with_cv=not args.no_cv)
    _print_labeller(model, out)
    return 0


def _print_labeller(model, out: Path) -> None:
    """What train-labeller and distill print: the file, the selection, the grouped validation."""
    cv = model.meta.get("cv_leave_one_group_out", {})
    print(f"wrote {out} ({model.vectorizer.n_features} features, {len(model.meta['documents'])} documents, "
          f"chosen {model.meta['config']})")
    if model.meta.get("selection_from"):
        print(f"configuration chosen by {model.meta['selection_from']}, its leave-one-gold-group-out figures:")
    for name, row in model.meta["selection"].items():
        print(f"  leave-one-gold-group-out, {name:9s} {row['recall']} / {row['precision']}  {row['config']}")
    if cv:
        print("leave-one-source-group-out over the gold (silver trained on only), micro recall / precision:")
        for who in ("labeller", "baseline"):
            m = cv[who]["micro"]
            print(f"  {who:9s} {m['recall']} / {m['precision']}  " + "  ".join(
                f"{g}: {v['recall']}/{v['precision']}" for g, v in cv[who]["groups"].items()))


def cmd_distill(args: argparse.Namespace, settings: Settings) -> int:
    from service import distill

    code, model, readings = distill.run(args.directory, args.out, settings, work=args.work, with_cv=not args.no_cv,
                                        folds=distill.parse_folds(args.folds), weight=args.weight)
    if model is None:
        return code
    print(f"read {len(readings.names) + len(readings.failed)} articles: {len(readings.names)} readings in "
          f"{distill.work_folder(args.out, args.work) / distill.TRAINING}, {len(readings.failed)} left out, "
          f"{readings.calls} model calls this run")
    for rel, why in readings.failed:
        print(f"  left out {rel}: {why}")
    _print_labeller(model, args.out)
    print(f"use it: reportsum summarize REPORT --labeller {args.out}   (or REPORTSUM_LABELLER={args.out})")
    return 0


def _track_labeller(settings: Settings):
    from service import labeller

    return labeller.load(settings.labeller)


def track_texts(earlier: str, later: str, sources: tuple[str | None, str | None], settings: Settings,
                earlier_plans=None):
    """With an endpoint (or ``--backend replay``) a model reads the candidates; without one,
    retrieval and figure comparison decide (the embedded 1.5B model is not asked).
    ``earlier_plans``: the plans of the earlier report's digest, instead of labelling it."""
    from service import track as tracking

    labeller = _track_labeller(settings)
    if settings.resolved_backend() == "local":
        return tracking.track(earlier, later, labeller=labeller, sources=sources, earlier_plans=earlier_plans)
    from service.backends import make_backend

    async def run():
        backend = make_backend(settings)
        try:
            return await tracking.track_with_model(earlier, later, backend, labeller=labeller, sources=sources,
                                                   concurrency=settings.concurrency, earlier_plans=earlier_plans)
        finally:
            await backend.aclose()

    return asyncio.run(run())


def _track_input(file: str, text_file: str | None, which: str):
    """(text, source, the digest's plan spans or None): a report, or a digest JSON made by
    ``summarize --format json`` with the text it was made from (a digest does not carry it)."""
    from pydantic import ValidationError

    from service import track as tracking
    from service.errors import InputError
    from service.models import Digest

    if not file.lower().endswith(".json"):
        return (*_read_input(file), None)
    try:
        digest = Digest.model_validate_json(Path(file).read_bytes())
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror}", file) from None
    except ValidationError:
        raise InputError(f"not a digest (the JSON of reportsum summarize --format json) of the {which} report",
                         file) from None
    path = Path(file)
    guesses = [Path(text_file)] if text_file else [path.with_suffix("")] + [
        path.with_suffix(ext) for ext in (".txt", ".html", ".htm", ".md")]
    found = next((g for g in guesses if g.suffix.lower() != ".json" and g.is_file()), None)
    if found is None:
        raise InputError(f"a digest holds spans into its report, not the report: give the {which} report's text "
                         f"with --{which}-text (none found beside the digest)", file)
    text, source = _read_input(str(found))
    return text, source, tracking.digest_plans(digest, text, which, file)


def cmd_track(args: argparse.Namespace, settings: Settings) -> int:
    from service import track as tracking

    earlier, e_src, plans = _track_input(args.earlier, args.earlier_text, "earlier")
    later, l_src, _ = _track_input(args.later, args.later_text, "later")  # the later report is read whole
    result = track_texts(earlier, later, (e_src, l_src), settings, earlier_plans=plans)
    render = {"json": lambda t: tracking.to_json(t) + "\n", "md": tracking.to_markdown, "csv": tracking.to_csv}
    out = render[args.format](result)
    if args.output:
        from service.batch import atomic_write

        atomic_write(args.output, out)
    else:
        sys.stdout.write(out)
    return 0


def _batch_track(directory: Path, out: Path, formats: set[str], settings: Settings) -> int:
    """``batch DIR --track``: OUT/<earlier>__<later>.<fmt> for each pair of consecutive years."""
    from service import track as tracking
    from service.errors import InputError
    from service.fsutil import atomic_write

    if not directory.is_dir():
        raise InputError("folder not found", str(directory))
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in {".txt", ".md", ".html", ".htm"})
    texts = {str(p): _read_input(str(p))[0] for p in files}
    pairs = tracking.yearly_pairs({name: tracking.year_of(Path(name).name, text) for name, text in texts.items()})
    if not pairs:
        print(f"reportsum: no two reports of consecutive years in {directory}", file=sys.stderr)
        return 1
    render = {"json": lambda t: tracking.to_json(t) + "\n", "md": tracking.to_markdown, "csv": tracking.to_csv}
    for earlier, later in pairs:
        # as `reportsum track`: a model reads the candidates when there is an endpoint
        result = track_texts(texts[earlier], texts[later], (earlier, later), settings)
        stem = f"{Path(earlier).stem}__{Path(later).stem}"
        for fmt in sorted(formats & set(render)):
            atomic_write(out / f"{stem}.{fmt}", render[fmt](result))
        if not settings.quiet:
            counts = ", ".join(f"{k} {v}" for k, v in result.counts().items())
            print(f"{stem}: {len(result.items)} commitments ({counts})", file=sys.stderr)
    return 0


def cmd_eval_track(args: argparse.Namespace, settings: Settings) -> int:
    from service.evaluate import run_eval_track
    from service.ingest import read_bytes

    return run_eval_track(args.directory, lambda e, l, e_src, l_src: track_texts(e, l, (e_src, l_src), settings),
                          as_json=args.json, read_text=lambda p: read_bytes(p.read_bytes(), p.name))


COMMANDS = {"summarize": cmd_summarize, "batch": cmd_batch, "serve": cmd_serve, "eval": cmd_eval, "doctor": cmd_doctor,
            "train-labeller": cmd_train_labeller, "track": cmd_track, "eval-track": cmd_eval_track,
            "distill": cmd_distill}
