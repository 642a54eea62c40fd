"""Progress on stderr: a tqdm bar on a terminal, plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class ProgressBar:
    def __init__(self, label: str, *, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.label = label
        self.bar: tqdm | None = None
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        """Model calls done out of total (ETA comes from tqdm's rate)."""
        if not self.enabled or total == 0:
            return
        if self.tty:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=self.label, unit="call", file=self.stream, leave=False)
            self.bar.n = done
            self.bar.refresh()
        elif done == total or time.monotonic() - self._last > 5:
            self._last = time.monotonic()
            print(f"{self.label}: {done}/{total} model calls", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
