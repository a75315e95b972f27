"""A dependency-free progress bar for the command-line tools."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Draw ``[#####-----] 5/10 label`` on one terminal line.

    On a terminal the line is redrawn in place; elsewhere (CI logs, pipes) one line is
    printed per step so logs stay readable. Use as a context manager or call ``close``.
    """

    def __init__(self, total: int, *, width: int = 28, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.total = max(int(total), 0)
        self.width = width
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.count = 0
        self._start = time.perf_counter()
        self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, label: str = "", step: int = 1) -> None:
        self.count = min(self.count + step, self.total) if self.total else self.count + step
        if not self.enabled:
            return
        done = self.count / self.total if self.total else 1.0
        filled = int(round(done * self.width))
        elapsed = time.perf_counter() - self._start
        line = (f"[{'#' * filled}{'-' * (self.width - filled)}] {self.count}/{self.total} "
                f"{elapsed:6.1f}s {label}")
        if self._interactive:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._interactive:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
