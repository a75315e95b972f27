"""The one-line notice that the command-line tools print while Numba compiles kernels.

With an empty (or stale) Numba cache, the first calls of numbaconv compile its kernels, which
takes seconds; later runs load them from the cache in milliseconds.  :func:`compiling_notice`
listens to Numba's ``numba:compile`` event, which Numba sends only when it really compiles
(not when it loads a kernel from its cache): the notice appears at the first compilation and
never on a warm-cache run, at the cost of one event listener.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from numba.core import event

MESSAGE = "compiling kernels (first run only)…"


class _FirstCompilation(event.Listener):
    """Writes :data:`MESSAGE` when the first compilation starts; remembers when that was."""

    def __init__(self, stream: TextIO, end: str) -> None:
        self.stream, self.end = stream, end
        self.started: float | None = None

    def on_start(self, ev: event.Event) -> None:
        if self.started is None:
            self.started = time.perf_counter()
            _write(self.stream, MESSAGE + self.end)

    def on_end(self, ev: event.Event) -> None:
        pass


def _write(stream: TextIO, text: str) -> None:
    """Write ``text`` above a running tqdm progress bar (or plainly without one)."""
    if text.endswith("\n"):
        from tqdm import tqdm

        tqdm.write(text[:-1], file=stream)
    else:
        stream.write(text)
        stream.flush()


@contextmanager
def compiling_notice(stream: TextIO | None = None, *, report_done: bool = True
                     ) -> Iterator[None]:
    """Print ``compiling kernels (first run only)…`` to ``stream`` (default: stderr) if Numba
    compiles a kernel while the block runs.

    Parameters
    ----------
    stream : file, optional
        Where the notice goes (default ``sys.stderr``).
    report_done : bool
        Finish the line with `` done in X s`` when the block ends (for a block that prints
        nothing else, such as a warm-up).  Otherwise the notice is a line of its own, written
        above a progress bar if one is running, and nothing follows it.

    Nothing is printed when every kernel the block needs comes from Numba's cache.
    """
    stream = sys.stderr if stream is None else stream
    listener = _FirstCompilation(stream, "" if report_done else "\n")
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)
        if report_done and listener.started is not None:
            _write(stream, f" done in {time.perf_counter() - listener.started:.1f} s\n")
