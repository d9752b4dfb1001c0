"""Progress of a long run: one redrawn line with a bar on a terminal, log lines otherwise.

Written here rather than taken from tqdm: it is twenty lines, and a run's figures (values
per second, backlog) are not what tqdm's iteration counter shows.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("simulators")


class Progress:
    def __init__(
        self, *, total_s: float | None, stream: TextIO | None = None, every_s: float | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total_s = total_s
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 10.0)
        self._last = time.monotonic()
        self._last_values = 0

    def due(self) -> bool:
        """Whether ``update`` would show something now (to skip gathering figures)."""
        return time.monotonic() - self._last >= self.every_s

    def update(
        self, done_s: float, figures: tuple[int, int, int, int], *, force: bool = False
    ) -> None:
        """``done_s`` of simulated time so far; ``figures``: messages, readings, values,
        backlog."""
        messages, readings, values, backlog = figures
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        rate = (values - self._last_values) / max(now - self._last, 1e-9)
        self._last, self._last_values = now, values
        text = (
            f"{rate:,.0f} values/s, {messages:,} messages, {readings:,} readings, "
            f"{values:,} values, backlog {backlog:,}"
        )
        if self.tty:
            bar = ""
            if self.total_s:
                share = min(1.0, done_s / self.total_s)
                filled = int(share * 24)
                bar = f"[{'#' * filled}{'.' * (24 - filled)}] {share:4.0%} "
            self.stream.write(f"\r\x1b[K{bar}{text}")
            self.stream.flush()
        else:
            part = f"{done_s / self.total_s:.0%} of the range; " if self.total_s else ""
            log.info("simulated %s%s", part, text)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
