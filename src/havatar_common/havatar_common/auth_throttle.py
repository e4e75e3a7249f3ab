"""Failed authentication costs time: per-client back-off of wrong tokens (pure, ROS-free).

Policy (the robot's user may type a token by eye gaze; never lock the rightful user out):

- Only wrong tokens wait. A request whose token is right is answered at once, whatever
  its address did before; so a user behind the same NAT as a guesser still gets in, and
  a right token need not reset anything.
- Per client address, the first ``free`` failures within ``window_s`` are answered at
  once (typos); after that each failure waits ``base_s * 2**k``, at most ``max_s``.
- The waits of one address queue behind each other (``next_at``): parallel guesses from
  one address get their verdicts one delay apart, so the verdict rate of a busy guesser
  is about ``concurrency / max_s`` (concurrency is bounded by the per-client connection
  cap, ``conn_limits``). A wrong token is never answered fast with a different status
  (a fast 429 would be a verdict too).
- An address without a failure for ``window_s`` starts afresh; at most ``max_clients``
  addresses are remembered (least recently failed forgotten first).

The caller checks the token (constant time), then on failure awaits ``failed(...)``'s wait
before answering 401.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


@dataclass
class _Client:
    failures: int = 0
    last: float = 0.0
    next_at: float = 0.0


class AuthThrottle:
    """Back-off of failed authentications per client address; ``now`` is in seconds."""

    def __init__(self, free: int = 5, base_s: float = 0.25, max_s: float = 8.0,
                 window_s: float = 600.0, max_clients: int = 4096) -> None:
        self.free, self.base_s, self.max_s = free, base_s, max_s
        self.window_s, self.max_clients = window_s, max_clients
        self.throttled = 0  # failures answered with a wait (a metric)
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def failed(self, client: str, now: float) -> float:
        """Record a failed attempt of ``client``; the seconds to wait before answering it."""
        entry = self._clients.pop(client, None)
        if entry is None or now - entry.last > self.window_s:
            entry = _Client()
        self._clients[client] = entry  # most recent last
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        entry.failures += 1
        entry.last = now
        excess = entry.failures - self.free
        delay = 0.0 if excess <= 0 else min(self.max_s, self.base_s * 2 ** min(excess - 1, 32))
        entry.next_at = min(max(now, entry.next_at) + delay, now + self.max_s)
        wait = entry.next_at - now
        if wait > 0:
            self.throttled += 1
        return wait

    def failures(self, client: str) -> int:
        entry = self._clients.get(client)
        return entry.failures if entry is not None else 0

    async def refuse(self, client: str, token: str, clock: Callable[[], float] = time.monotonic) -> float:
        """Record a failure of ``token`` and wait out its delay (call before answering 401);
        returns the wait. No token at all is no guess: it is neither counted nor delayed.
        """
        if not token:
            return 0.0
        wait = self.failed(client, clock())
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
