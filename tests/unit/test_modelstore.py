"""Assembling the embedded model from chunk files: fake parts in a tmp dir."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service import modelstore
from service.config import Settings
from service.errors import ConfigError
from service.modelstore import ModelSpec, default_model_path, resolve_model_path


def make_parts(tmp_path: Path, chunks: list[bytes]) -> tuple[list[Path], ModelSpec]:
    paths = []
    for i, chunk in enumerate(chunks, 1):
        p = tmp_path / "site" / f"part{i}" / "data" / f"part{i:02d}.bin"
        p.parent.mkdir(parents=True)
        p.write_bytes(chunk)
        paths.append(p)
    blob = b"".join(chunks)
    spec = ModelSpec(
        name="fake",
        parts=tuple(f"reportsum-test-no-such-dist-{i}" for i in range(1, len(chunks) + 1)),
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
    )
    return paths, spec


def test_assembles_in_order_and_reuses(tmp_path):
    parts, spec = make_parts(tmp_path, [b"GGUF" + b"a" * 1000, b"b" * 10, b"c" * 3])
    cache = tmp_path / "cache"
    path = default_model_path(cache, spec=spec, parts=parts)
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == b"GGUF" + b"a" * 1000 + b"b" * 10 + b"c" * 3
    assert (cache / "fake.gguf.sha256").read_text().strip() == spec.sha256
    assert list(cache.glob("*.part")) == []  # no temp file left behind
    # Second call: reused (the parts may even be gone by now).
    for p in parts:
        p.unlink()
    assert default_model_path(cache, spec=spec, parts=parts) == path


def test_missing_parts_say_how_to_install(tmp_path):
    _, spec = make_parts(tmp_path, [b"x", b"y"])
    with pytest.raises(ConfigError) as err:
        default_model_path(tmp_path / "cache", spec=spec)  # dists not installed
    assert "pip install -e '.[local]'" in str(err.value)
    assert "reportsum-test-no-such-dist-1" in str(err.value)


def test_wrong_hash_is_refused_and_leaves_nothing(tmp_path):
    parts, spec = make_parts(tmp_path, [b"GGUF1234", b"5678"])
    bad = ModelSpec(spec.name, spec.parts, spec.size, "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError) as err:
        default_model_path(cache, spec=bad, parts=parts)
    assert "corrupt" in str(err.value) and "reinstall" in str(err.value)
    assert list(cache.iterdir()) == []


def test_wrong_size_is_refused(tmp_path):
    parts, spec = make_parts(tmp_path, [b"GGUF1234", b"5678"])
    bad = ModelSpec(spec.name, spec.parts, spec.size + 1, spec.sha256)
    with pytest.raises(ConfigError, match="reinstall"):
        default_model_path(tmp_path / "cache", spec=bad, parts=parts)


def test_damaged_cached_file_says_delete_it(tmp_path):
    parts, spec = make_parts(tmp_path, [b"GGUF1234", b"5678"])
    cache = tmp_path / "cache"
    path = default_model_path(cache, spec=spec, parts=parts)
    # Same size, different bytes, marker gone: the hash check catches it.
    path.write_bytes(b"GGUF9999" + b"5678")
    (cache / "fake.gguf.sha256").unlink()
    with pytest.raises(ConfigError, match="delete it"):
        default_model_path(cache, spec=spec, parts=parts)
    # Truncated: the size check catches it even with the marker.
    path.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="delete it"):
        default_model_path(cache, spec=spec, parts=parts)


@pytest.mark.local_model  # needs the [local] extra: opt-in with `pytest -m local_model`
def test_part_files_found_through_metadata():
    # The installed chunk packages are found without hardcoded paths.
    files = modelstore.part_files()
    assert len(files) == 22
    assert sum(f.stat().st_size for f in files) == modelstore.DEFAULT_MODEL.size


def test_local_model_override(tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model_path(Settings(local_model=gguf)) == gguf
    with pytest.raises(ConfigError, match="REPORTSUM_LOCAL_MODEL"):
        resolve_model_path(Settings(local_model=tmp_path / "nope.gguf"))
