"""The one injectable clock: everything that depends on time asks ``clock.now()``."""
from __future__ import annotations

import time


class Clock:
    """Wall clock, optionally shifted (tests move time instead of sleeping)."""

    def __init__(self, offset: float = 0.0):
        self.offset = offset

    def now(self) -> float:
        """Epoch seconds."""
        return time.time() + self.offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)


class FixedClock(Clock):
    def __init__(self, t: float):
        super().__init__()
        self.t = t

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
