"""A progress line for one long run: simulated time, requests per second, memory held.

``simulator run`` passes a :class:`RunProgress` to :func:`simulator.engine.simulate` when its
standard error is a terminal. The line appears only once a run has taken a second of wall time
(most runs finish before), and says once when a table-mode run holds enough rows that streaming
metrics would be the better choice.
"""

from __future__ import annotations

import math
import time
from typing import IO

#: a table-mode run holding more than this many bytes of rows is told about streaming
HINT_BYTES = 500 * 2**20


class RunProgress:
    """``progress(now, end, (created, held))`` for :func:`simulator.engine.simulate`.

    Parameters
    ----------
    streaming
        Whether the run streams its request metrics (no rows kept per request).
    file
        Where the line goes (a terminal's standard error); it is rewritten in place (``\\r``)
        at most every ``every`` wall seconds and cleared when the run ends.
    delay
        Wall seconds before the line first appears.
    every
        Wall seconds between two updates of the line.
    """

    def __init__(self, streaming: bool, file: IO[str], delay: float = 1.0,
                 every: float = 0.2) -> None:
        self.streaming = streaming
        self.file = file
        self.delay = delay
        self.every = every
        self._wall0 = time.perf_counter()
        self._shown = -math.inf
        self._width = 0
        self._hinted = False

    def line(self, now: float, end: float, footprint: tuple[int, int]) -> str:
        """The progress line at simulated time ``now`` (seconds) of ``end``."""
        created, held = footprint
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        memory = "streaming metrics" if self.streaming else f"rows held {held / 2**20:,.0f} MiB"
        return (f"simulated {now:,.1f}s of {end:,.1f}s ({now / end:.0%}): {created:,} requests, "
                f"{created / wall:,.0f}/s of wall time, {memory}")

    def __call__(self, now: float, end: float, footprint: tuple[int, int]) -> None:
        wall = time.perf_counter()
        if not self.streaming and footprint[1] > HINT_BYTES and not self._hinted:
            self._hinted = True
            self._clear()
            print(f"note: this run keeps one row per request and span ({footprint[1] / 2**20:,.0f}"
                  " MiB so far); `--set metrics.requests=streaming` keeps memory flat (summary "
                  "tables only)", file=self.file)
        if now >= end:
            self._clear()
            return
        if wall - self._wall0 >= self.delay and wall - self._shown >= self.every:
            self._shown = wall
            text = self.line(now, end, footprint)
            self.file.write("\r" + text.ljust(self._width))
            self.file.flush()
            self._width = len(text)

    def _clear(self) -> None:
        if self._width:
            self.file.write("\r" + " " * self._width + "\r")
            self.file.flush()
            self._width = 0
