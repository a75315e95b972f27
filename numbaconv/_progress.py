"""The progress bar of the command-line tools, drawn by tqdm.

The bar counts *finished* steps: :meth:`ProgressBar.start` names the step that is running
without counting it, :meth:`ProgressBar.update` counts it once it is done, so the bar never
reads 100 % while the last step still runs.  On a terminal tqdm redraws one line in place;
elsewhere (CI logs, pipes) every finished step prints one line, so logs stay readable.
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from tqdm import tqdm


class _Lines:
    """A file for tqdm that turns its in-place redraws (``\\r`` + text) into whole lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line and line != self.last:  # closing the bar draws the last state again
            self.stream.write(line + "\n")
            self.last = line
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class ProgressBar:
    """``5/10 [00:12<00:12] label``: how many of ``total`` steps are finished.

    Use as a context manager or call :meth:`close`.  With ``enabled=False`` nothing is drawn
    (the counts are still kept).
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True,
                 unit: str = "step") -> None:
        self.total = max(int(total), 0)
        self.count = 0
        self.label = ""
        stream = sys.stderr if stream is None else stream
        self._interactive = bool(getattr(stream, "isatty", lambda: False)())
        # The terminal's size, with a fallback where it reports none (tqdm draws nothing on a
        # terminal of zero rows).
        size = shutil.get_terminal_size((100, 24))
        self._bar = tqdm(
            total=self.total, file=stream if self._interactive else _Lines(stream),
            disable=not enabled, unit=unit, leave=True,
            ncols=size.columns if self._interactive else 100, nrows=size.lines or 24,
            mininterval=0.1 if self._interactive else 0,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")

    def start(self, label: str) -> None:
        """Show that the step ``label`` runs now (it is not counted until :meth:`update`)."""
        self.label = label
        self._bar.set_postfix_str(f"running {label}", refresh=self._interactive)

    def update(self, label: str = "", step: int = 1) -> None:
        """Count ``step`` finished steps, the last of them described by ``label``."""
        self.count += step
        self.label = label
        self._bar.set_postfix_str(label, refresh=False)
        self._bar.update(step)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
