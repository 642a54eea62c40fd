"""``reportsum batch DIR -o OUT``: digest every report under a folder.

Inputs and outputs
    Every ``*.txt``, ``*.md``, ``*.html`` (and ``*.htm``) under DIR, recursively, in sorted
    order; hidden files and folders (``.name``) and OUT itself (when it lies inside DIR) are
    skipped. Each article ``DIR/<rel>`` gets ``OUT/<rel>.json`` (the full suffix is kept,
    so ``a.txt`` and ``a.md`` never collide) and, with ``--format md``, ``OUT/<rel>.md``.
    The JSON is the public digest plus one extra top-level key, ``"reportsum"``, recording
    the source file, content sha256 and the digest key (content, backend, model, prompt
    version, options) for resuming. JSON is always written: it is the record resume and
    ``items.csv`` are built from. Every file is written atomically (temp file in the same
    folder, fsync, rename), so a crash or Ctrl-C never leaves half a file.

Index
    ``OUT/index.jsonl``: one line per article, sorted by ``file``: ``file``, ``status``
    (``done``: digested in this run, possibly served by the digest cache, see ``cached``;
    ``skipped``: its output already existed for the same key; ``failed``: see ``error``),
    ``achievements``/``problems``/``plans``/``excluded`` counts, ``seconds`` (wall time in
    this run), ``llm_calls``, ``prompt_tokens``, ``completion_tokens``, ``tokens`` (spent in
    this run: 0 for skipped and cached articles), ``cached``, ``output``, ``error``.
    ``--format csv`` adds ``OUT/items.csv`` (UTF-8 with BOM for Excel): one row per item,
    ``file, category, summary, figures, evidence, start, end``.

Concurrency
    One ``asyncio.Semaphore(settings.concurrency)`` bounds in-flight model calls across all
    articles and all their chunks; ``2 x concurrency`` articles are in flight at once so a
    slow endpoint keeps every slot busy. Articles are pulled lazily from a directory walk
    (nothing is read up front) and each digest is dropped once written, so memory stays
    flat as the folder grows. The CPU-bound half of each article (cleaning, segmentation,
    features, labeller: ``pipeline.prepare``) runs in a process pool with one worker per
    core (``service.cpupool``), so it never holds up the model calls of the others (only
    while the workers start, a second or two, does a thread of the batch process prepare
    articles itself); the pool is shut down when the batch ends, however it ends.

Resume and failures
    A rerun decodes each file, computes its key and skips it (zero model calls) when
    ``OUT/<rel>.json`` already holds that key; missing ``.md`` files are re-rendered from
    the JSON. Failed and missing articles are retried. A failed article (input error, or an
    endpoint error after the SDK's retries and the repair round) is recorded with its
    reason and the batch continues. The exit code is 0 when nothing failed, 1 otherwise,
    130 after Ctrl-C and 143 after SIGTERM (the index then holds what finished, plus the
    previous index's lines for articles not reached).

Sharding (several processes or machines, one shared OUT)
    ``--shard K/N`` (1 <= K <= N) takes the articles whose relative path hashes (sha256)
    to K-1 modulo N: deterministic, disjoint, covering, no coordination. Every article has
    its own output file, so shards never write the same file. Shard K writes its index to
    ``OUT/index-K-of-N.jsonl``, which no other shard touches; when it finishes it takes an
    exclusive lock on ``OUT/.reportsum.lock`` (fcntl; works on local disks and NFSv4) and
    rebuilds ``OUT/index.jsonl`` (and ``items.csv``) as the union of all
    ``index-*-of-N.jsonl``, so the last shard to finish leaves the complete index. The
    shard files are the authoritative record.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.fsutil import atomic_open, atomic_write
from service.cache import DigestCache, content_sha256, digest_options, key_for, open_cache, summarize_cached
from service.config import Settings
from service.cpupool import start_pool
from service.errors import ConfigError, InputError
from service.models import CATEGORIES, Digest
from service.pipeline import cpu_pool, gc_tuned_for_model_calls

INPUT_SUFFIXES = frozenset({".txt", ".md", ".html", ".htm"})
FORMATS = frozenset({"json", "md", "csv"})
INDEX_NAME = "index.jsonl"
CSV_NAME = "items.csv"
LOCK_NAME = ".reportsum.lock"
META_KEY = "reportsum"
ARTICLES_PER_SLOT = 2  # articles in flight per concurrency slot
CSV_FIELDS = ("file", "category", "summary", "figures", "evidence", "start", "end")


# --------------------------------------------------------------------------- selection


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N (raises ``ConfigError``)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if not m:
        raise ConfigError(f"--shard must look like K/N (for example 2/8), got {spec!r}")
    shard = (int(m.group(1)), int(m.group(2)))
    _check_shard(shard)
    return shard


def _check_shard(shard: tuple[int, int]) -> None:
    k, n = shard
    if not (n >= 1 and 1 <= k <= n):
        raise ConfigError(f"--shard K/N needs 1 <= K <= N, got {k}/{n}")


def shard_of(rel: str, n: int) -> int:
    """The shard (1..n) an article belongs to: sha256 of its relative POSIX path."""
    h = int.from_bytes(hashlib.sha256(rel.encode("utf-8")).digest()[:8], "big")
    return h % n + 1


def iter_articles(directory: Path, *, exclude: Path | None = None, shard: tuple[int, int] | None = None) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, relative POSIX path)`` of every input file, lazily, in sorted order."""
    directory = Path(directory)
    excluded = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(directory):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (excluded is None or (root_path / d).resolve() != excluded)
        )
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in INPUT_SUFFIXES:
                continue
            path = root_path / name
            rel = path.relative_to(directory).as_posix()
            if shard is not None and shard_of(rel, shard[1]) != shard[0]:
                continue
            if path.is_file():
                yield path, rel


def output_path(out: Path, rel: str, ext: str) -> Path:
    """``OUT/<rel>.<ext>`` (the input's suffix is kept: ``a/b.txt`` -> ``a/b.txt.json``)."""
    return out / f"{rel}.{ext}"


def index_name(shard: tuple[int, int] | None) -> str:
    return INDEX_NAME if shard is None else f"index-{shard[0]}-of-{shard[1]}.jsonl"


# --------------------------------------------------------------------------- files


def read_index(path: Path) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                    entries[entry["file"]] = entry
    except FileNotFoundError:
        pass
    return entries


def _write_index(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    lines = [json.dumps(entries[f], ensure_ascii=False) + "\n" for f in sorted(entries)]
    atomic_write(path, "".join(lines))


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    with (out / LOCK_NAME).open("a") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)


def _load_output(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _write_csv(out: Path, entries: dict[str, dict[str, Any]]) -> None:
    """``items.csv`` from the outputs of done/skipped entries, one digest in memory at a time."""
    with atomic_open(out / CSV_NAME, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for rel in sorted(entries):
            if entries[rel].get("status") not in ("done", "skipped"):
                continue
            obj = _load_output(output_path(out, rel, "json"))
            if obj is None:
                continue
            for cat in CATEGORIES:
                for it in obj.get(cat) or []:
                    span = it.get("span") or [None, None]
                    w.writerow(
                        [rel, cat, it.get("summary", ""), "; ".join(it.get("figures") or []),
                         it.get("evidence", ""), span[0], span[1]]
                    )




# --------------------------------------------------------------------------- progress


@dataclass
class Stats:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    cached: int = 0
    llm_calls: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed


class Progress:
    """tqdm bar on a terminal, one plain line per article otherwise, nothing when quiet."""

    def __init__(self, stats: Stats, *, enabled: bool, stream: Any = None):
        self.stats = stats
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.bar = None
        if enabled and _isatty(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=stats.total, unit="art", file=self.stream, dynamic_ncols=True, smoothing=0.1)

    def update(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        s = self.stats
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"done={s.done} skipped={s.skipped} failed={s.failed} tokens={s.tokens:,}", refresh=False
            )
            self.bar.update(1)
            if entry["status"] == "failed":
                self.bar.write(f"failed {entry['file']}: {entry['error']}", file=self.stream)
            return
        width = len(str(s.total))
        extra = (
            f": {entry['error']}"
            if entry["status"] == "failed"
            else f" ({entry['seconds']:.1f}s, {entry['tokens']} tokens{', cached' if entry['cached'] else ''})"
        )
        elapsed = time.monotonic() - s.started
        eta = ""
        if s.done and s.finished < s.total:
            eta = f" eta {elapsed / s.finished * (s.total - s.finished):.0f}s"
        print(
            f"[{s.finished:>{width}}/{s.total}] {entry['status']:<7} {entry['file']}{extra}"
            f" | failed {s.failed}, tokens {s.tokens:,}{eta}",
            file=self.stream,
            flush=True,
        )

    async def tick(self, every: float = 1.0) -> None:
        """Redraw the bar now and then, so elapsed time moves while long articles run."""
        while self.bar is not None:
            await asyncio.sleep(every)
            self.bar.refresh()

    def close(self, message: str) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            print(message, file=self.stream, flush=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- the run


def _entry(rel: str, status: str, *, digest: dict[str, Any] | None = None, seconds: float = 0.0,
           spent: Any = None, cached: bool = False, error: str | None = None) -> dict[str, Any]:
    counts = {c: len(digest.get(c) or []) for c in (*CATEGORIES, "excluded")} if digest else dict.fromkeys((*CATEGORIES, "excluded"), 0)
    calls = getattr(spent, "llm_calls", 0) if spent is not None else 0
    p_tok = getattr(spent, "prompt_tokens", 0) if spent is not None else 0
    c_tok = getattr(spent, "completion_tokens", 0) if spent is not None else 0
    return {
        "file": rel,
        "status": status,
        **counts,
        "seconds": round(seconds, 3),
        "llm_calls": calls,
        "prompt_tokens": p_tok,
        "completion_tokens": c_tok,
        "tokens": p_tok + c_tok,
        "cached": cached,
        "output": f"{rel}.json" if status != "failed" else None,
        "error": error,
    }


def _error_text(exc: BaseException) -> str:
    described = getattr(exc, "described", None)  # formatted where it happened (a Ray worker)
    if isinstance(described, str):
        return described
    msg = str(exc).strip() or repr(exc)
    return msg if isinstance(exc, InputError) else f"{type(exc).__name__}: {msg}"


class _Batch:
    def __init__(self, directory: Path, out: Path, settings: Settings, formats: set[str],
                 shard: tuple[int, int] | None, show_progress: bool):
        self.directory = directory
        self.out = out
        self.settings = settings
        self.formats = formats
        self.shard = shard
        self.show_progress = show_progress and not settings.quiet
        self.entries: dict[str, dict[str, Any]] = {}
        self.stats = Stats()
        self.to_markdown = None
        self.interrupted: str | None = None

    # One article, start to finish; never raises (except cancellation).
    async def article(self, path: Path, rel: str) -> dict[str, Any]:
        t0 = time.monotonic()
        try:
            text = await asyncio.to_thread(_read_text, path, rel)
            key = key_for(text, self.backend, self.settings)
            json_path = output_path(self.out, rel, "json")
            existing = await asyncio.to_thread(_load_output, json_path) if json_path.exists() else None
            # a digest with chunks that fell back after failed calls is redone on a rerun
            if (existing is not None and (existing.get(META_KEY) or {}).get("key") == key
                    and not (existing.get("meta") or {}).get("failed_chunks")):
                if self.to_markdown is not None and not output_path(self.out, rel, "md").exists():
                    await asyncio.to_thread(self._write_md, rel, existing)
                return _entry(rel, "skipped", digest=existing, seconds=time.monotonic() - t0)
            digest, cached = await self.digest(text, rel, key)
            obj = digest.model_dump(mode="json")
            obj[META_KEY] = {
                "file": rel,
                "content_sha256": content_sha256(text),
                "key": key,
                "backend": self.backend.name,
                "model": self.backend.model,
                "prompt_version": digest.meta.prompt_version,
                "options": digest_options(self.settings, self.backend.name),
            }
            del text
            await asyncio.to_thread(self._write_outputs, rel, obj)
            return _entry(rel, "done", digest=obj, seconds=time.monotonic() - t0,
                          spent=None if cached else digest.meta, cached=cached)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad article must not stop the batch
            # BackendError carries .usage (calls and tokens spent before it gave up)
            return _entry(rel, "failed", seconds=time.monotonic() - t0, spent=getattr(exc, "usage", None),
                          error=_error_text(exc))

    async def digest(self, text: str, rel: str, key: str) -> tuple[Digest, bool]:
        """The digest of one article and whether the cache served it (the Ray driver
        overrides this to run the pipeline on a cluster; everything around it is shared)."""
        with cpu_pool(self.pool):
            return await summarize_cached(
                text, self.backend, self.settings, cache=self.cache, source=rel, limiter=self.limiter, key=key
            )

    async def open(self) -> None:
        """Backend, digest cache, CPU pool and the global model-call limiter for this run."""
        from service.backends import make_backend

        self.backend = make_backend(self.settings)
        self.cache: DigestCache | None = open_cache(self.settings)
        self.limiter = asyncio.Semaphore(max(1, int(self.settings.concurrency)))
        # workers start with the first article to prepare: a rerun that skips them all starts none;
        # while they start, this process prepares articles itself, so the first calls go out at once
        self.pool = start_pool(labeller=self.settings.labeller, inline_while_starting=True)

    async def close(self) -> None:
        # cancel_futures: after Ctrl-C or SIGTERM no queued article is prepared for nothing
        await asyncio.to_thread(self.pool.shutdown, wait=True, cancel_futures=True)
        if self.cache is not None:
            self.cache.close()
        with contextlib.suppress(Exception):
            await self.backend.aclose()

    def _write_outputs(self, rel: str, obj: dict[str, Any]) -> None:
        atomic_write(output_path(self.out, rel, "json"), json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
        if self.to_markdown is not None:
            self._write_md(rel, obj)

    def _write_md(self, rel: str, obj: dict[str, Any]) -> None:
        data = {k: v for k, v in obj.items() if k != META_KEY}
        atomic_write(output_path(self.out, rel, "md"), self.to_markdown(Digest.model_validate(data)))

    def record(self, entry: dict[str, Any]) -> None:
        s = self.stats
        self.entries[entry["file"]] = entry
        setattr(s, entry["status"], getattr(s, entry["status"]) + 1)
        s.cached += entry["cached"]
        s.llm_calls += entry["llm_calls"]
        s.tokens += entry["tokens"]
        self.progress.update(entry)

    async def worker(self, articles: Iterator[tuple[Path, str]]) -> None:
        for path, rel in articles:  # shared iterator: each article is taken by one worker
            self.record(await self.article(path, rel))

    async def run(self) -> None:
        if "md" in self.formats:
            try:
                from service.render import to_markdown
            except ImportError as exc:  # pragma: no cover - render ships with the package
                raise ConfigError(f"--format md is unavailable: {exc}") from exc
            self.to_markdown = to_markdown
        self.out.mkdir(parents=True, exist_ok=True)
        exclude = self.out if _inside(self.out, self.directory) else None
        self.stats.total = sum(1 for _ in iter_articles(self.directory, exclude=exclude, shard=self.shard))
        self.progress = Progress(self.stats, enabled=self.show_progress)
        await self.open()
        concurrency = max(1, int(self.settings.concurrency))
        articles = iter_articles(self.directory, exclude=exclude, shard=self.shard)
        n_workers = max(1, min(self.stats.total, concurrency * ARTICLES_PER_SLOT))
        tasks = [asyncio.create_task(self.worker(articles)) for _ in range(n_workers)]
        ticker = asyncio.create_task(self.progress.tick())
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        sigterm = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            def on_term() -> None:
                self.interrupted = "SIGTERM"
                if main is not None:
                    main.cancel()
            loop.add_signal_handler(signal.SIGTERM, on_term)
            sigterm = True
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            self.interrupted = self.interrupted or "interrupt"
            raise
        finally:
            for t in (*tasks, ticker):
                t.cancel()
            await asyncio.gather(*tasks, ticker, return_exceptions=True)
            if sigterm:
                loop.remove_signal_handler(signal.SIGTERM)
            try:
                self.finalize()
            finally:
                await self.close()

    def finalize(self) -> None:
        s = self.stats
        index_path = self.out / index_name(self.shard)
        entries = self.entries
        with _locked(self.out):
            if self.interrupted:
                # Keep the previous index's lines for articles this run did not reach.
                previous = read_index(index_path)
                previous.update(entries)
                entries = previous
            _write_index(index_path, entries)
            if self.shard is not None:
                merged: dict[str, dict[str, Any]] = {}
                for p in sorted(self.out.glob(f"index-*-of-{self.shard[1]}.jsonl")):
                    merged.update(read_index(p))
                _write_index(self.out / INDEX_NAME, merged)
                entries = merged
            if "csv" in self.formats:
                _write_csv(self.out, entries)
        elapsed = time.monotonic() - s.started
        head = f"interrupted ({self.interrupted})" if self.interrupted else "finished"
        self.progress.close(
            f"{head}: {s.done} done ({s.cached} from cache), {s.skipped} skipped, {s.failed} failed"
            f" of {s.total} in {elapsed:.1f}s; {s.llm_calls} model calls, {s.tokens:,} tokens;"
            f" index {index_path}"
        )


def _read_text(path: Path, rel: str) -> str:
    from service.ingest import read_bytes

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", rel) from exc
    return read_bytes(data, rel)


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def run_batch(directory: Path, out: Path, settings: Settings, *, formats: set[str],
              shard: tuple[int, int] | None, show_progress: bool) -> int:
    """Digest every article under ``directory`` into ``out``; returns the exit code.

    0: nothing failed; 1: at least one article failed (see ``OUT/index.jsonl``);
    130: interrupted by Ctrl-C, 143: by SIGTERM (finished articles are kept; rerun to
    resume).
    """
    directory, out, formats = check_args(directory, out, formats, shard)
    return execute(_Batch(directory, out, settings, formats, shard, show_progress))


def check_args(directory: Path, out: Path, formats: set[str], shard: tuple[int, int] | None
               ) -> tuple[Path, Path, set[str]]:
    """Validated ``(directory, out, formats)``; raises ``InputError``/``ConfigError``."""
    directory, out = Path(directory), Path(out)
    if not directory.is_dir():
        raise InputError("not a directory", str(directory))
    formats = {f.strip().lower() for f in formats if f.strip()} or {"json"}
    unknown = formats - FORMATS
    if unknown:
        raise ConfigError(f"unknown --format {', '.join(sorted(unknown))}; choose from json, md, csv")
    if shard is not None:
        _check_shard(shard)
    return directory, out, formats


def execute(batch: _Batch) -> int:
    """Run a prepared batch to the end; returns the exit code (see ``run_batch``)."""
    try:
        with gc_tuned_for_model_calls():
            asyncio.run(batch.run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 143 if batch.interrupted == "SIGTERM" else 130
    return 1 if batch.stats.failed else 0


__all__ = ["run_batch", "parse_shard", "shard_of", "iter_articles", "output_path", "atomic_write", "read_index"]
