"""The progress line of the predict stage (stderr: a live line on a terminal, a line every 30 s in a log)."""

from __future__ import annotations

import math
import sys
import time


class Progress:
    """A one-line progress display on stderr with rate and ETA (silent when disabled)."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total, self.label, self.done, self.cached, self.failed = total, label, 0, 0, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last = self.start if not self.tty else 0.0
        self.log_every = 30.0

    def update(self, n: int, cached: int = 0, failed: int = 0) -> None:
        self.done += n
        self.cached += cached
        self.failed += failed
        now = time.perf_counter()
        if self.tty and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()
        elif self.enabled and not self.tty and now - self._last >= self.log_every and self.done < self.total:
            self._last = now  # a log file (CI, nohup) gets a line every half minute
            self.stream.write(self.line(now).rstrip() + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.perf_counter()) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "--:--" if math.isinf(remaining) else _clock(remaining)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        extra = f", {self.cached} cached" if self.cached else ""
        extra += f", {self.failed} failed" if self.failed else ""
        return (f"{self.label:>5} {self.done}/{self.total} [{pct:5.1f}%] {rate:8.1f} samples/s "
                f"elapsed {_clock(elapsed)} ETA {eta}{extra}   ")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
        elif self.enabled:
            self.stream.write(self.line().rstrip() + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
