"""A jitter buffer for audio chunks arriving over a network or DDS (pure)."""
from __future__ import annotations

from typing import Optional


class JitterBuffer:
    """Reorders chunks by sequence number and releases them at a steady pace.

    Playback starts once ``target`` chunks are queued (absorbing arrival jitter), a chunk
    arriving after its turn is dropped, a missing chunk is replaced by silence when later
    ones are already here, and an empty buffer pauses playback until it refills
    (an underrun). The depth is bounded by ``limit``: the oldest chunks are dropped first.

    The delay does not stay high after a burst of arrivals either (a sender that stalled and
    caught up, a network hiccup): playback goes on at the sender's pace, so without help the
    buffer would keep the burst's depth, and its delay, until the next underrun. A depth over
    twice the target for ``catch_up_after`` chunks in a row drops the oldest chunk, one at a
    time, until the depth is back.
    """

    def __init__(self, target: int = 3, limit: int = 25, catch_up_after: int = 10) -> None:
        self.target = target
        self.limit = limit
        self.catch_up_after = catch_up_after
        self.catch_up_drops = 0
        self._deep = 0  # pops in a row with the depth over twice the target
        self._chunks: dict[int, bytes] = {}
        self._next: Optional[int] = None
        self.playing = False
        self.late_drops = 0
        self.overflow_drops = 0
        self.underruns = 0
        self.concealed = 0

    @property
    def depth(self) -> int:
        return len(self._chunks)

    def push(self, sequence: int, data: bytes) -> None:
        """Queue a chunk; late only while playing: after an underrun another sender (the
        other mode's talk, its own count) starts afresh.
        """
        if self.playing and self._next is not None and sequence < self._next:
            if self._next - sequence > 1000:  # the sender restarted its count
                self.reset()
            else:
                self.late_drops += 1
                return
        self._chunks[sequence] = data
        while len(self._chunks) > self.limit:
            oldest = min(self._chunks)
            del self._chunks[oldest]
            self.overflow_drops += 1
            self._next = min(self._chunks)

    def pop(self, silence: bytes) -> Optional[bytes]:
        """The next chunk to play, ``silence`` for a lost one, or None when not playing."""
        if not self.playing:
            if len(self._chunks) < self.target:
                return None
            self.playing = True
            self._next = min(self._chunks)
        if not self._chunks:
            self.playing = False
            self.underruns += 1
            return None
        assert self._next is not None
        self._deep = self._deep + 1 if len(self._chunks) - 1 > 2 * self.target else 0  # left after this
        if self._deep >= self.catch_up_after:
            self._deep = 0
            self.catch_up_drops += 1
            self._chunks.pop(self._next, None)
            self._next += 1
        data = self._chunks.pop(self._next, None)
        self._next += 1
        if data is None:
            self.concealed += 1
            return silence
        return data

    def reset(self) -> None:
        self._chunks.clear()
        self._next = None
        self.playing = False
