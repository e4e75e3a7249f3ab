"""Whether server mode's encoder is wanted: someone reads the robot's path (pure: time is passed in).

The cloud relay sees MediaMTX's readers (and recordings) and tells the robot how many there
are, again and again (``report``); the robot's relay node passes that on. Encoding stops only
while fresh reports say nobody reads, ``linger`` seconds after the last reader left. Any doubt
fails towards encoding: no report yet (an older relay never sends one), a report older than
``lease`` (the relay link dropped), or an unknown count (negative).
"""
from __future__ import annotations

from typing import Optional


class Demand:
    def __init__(self, linger: float, lease: float, enabled: bool = True) -> None:
        self.linger = linger
        self.lease = lease
        self.enabled = enabled
        self.readers = -1  # the latest report; negative = unknown
        self._reported_at: Optional[float] = None
        self._wanted_at = 0.0  # the last time a report (or the lack of one) wanted the encoder

    def report(self, readers: int, now: float) -> None:
        """The relay's count of readers (a recording counts as one; negative: unknown)."""
        if self._lapsed(now) or self.readers != 0 or readers != 0:
            self._wanted_at = now  # the linger starts from the last time it was wanted
        self.readers = readers
        self._reported_at = now

    def forget(self, now: float) -> None:
        """The relay link is gone: no word is as good as a reader."""
        self.report(-1, now)

    def wanted(self, now: float) -> bool:
        if not self.enabled or self._lapsed(now) or self.readers != 0:
            return True
        return now - self._wanted_at < self.linger

    def _lapsed(self, now: float) -> bool:
        return self._reported_at is None or now - self._reported_at > self.lease
