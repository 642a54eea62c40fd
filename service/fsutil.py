"""Atomic file writes: a temp file in the target folder, fsync, rename.

Readers (a resumed batch, a replay, another shard) never see half a file, and a crash
leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
                ) -> Iterator[IO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    with atomic_open(path, "wb") as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)
