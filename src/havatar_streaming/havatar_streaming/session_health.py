"""When a server session counts as started, healthy or failed (pure: time is passed in).

The supervisor observes the session (ffmpeg alive, its last progress, frames written, and
the MediaMTX API's view of the path when the API is reachable) and asks ``judge``:

- with the API: ready once the server reports the path ready, within ``start_timeout``;
  then failed when the server stops reporting it ready, when the bytes it received stop
  growing for ``stall_timeout``, or when ffmpeg stops making progress for longer than that
  (plus ``ENCODER_GRACE``: the server's byte count is the first sign);
- without the API (``api_url: none``): ready once ffmpeg has made progress for
  ``NO_API_SETTLE`` seconds with frames written, failed when its progress stops.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Optional

from .mediamtx_api import PathState

ENCODER_GRACE = 1.0  # s the encoder may lag past stall_timeout when the server still gets data
NO_API_SETTLE = 1.0  # s of encoder output that count as a started session without the API


class Health(str, Enum):
    STARTING = 'starting'  # not ready yet, still in time
    READY = 'ready'        # became ready with this observation (reported once)
    OK = 'ok'
    FAILED = 'failed'


class Verdict(NamedTuple):
    health: Health
    reason: str = ''  # why it failed


@dataclass(frozen=True)
class Observation:
    """What the supervisor saw of one session at ``now``."""

    now: float
    alive: bool                      # ffmpeg still runs
    exit_reason: str = ''            # why it ended, when it did
    encoder_progress_at: float = 0.0  # when ffmpeg last reported output
    frames_written: int = 0
    server: Optional[PathState] = None  # the API's view of the path (None: no API or error)
    server_error: str = ''           # the API could not be asked


class SessionHealth:
    """The health rules for one session started at ``started_at``."""

    def __init__(self, started_at: float, with_api: bool, start_timeout: float,
                 stall_timeout: float) -> None:
        self.started_at = started_at
        self.with_api = with_api
        self.start_timeout = start_timeout
        self.stall_timeout = stall_timeout
        self.ready = False
        self._bytes_seen = (started_at, -1)  # (when, bytes received) last seen growing

    def judge(self, o: Observation) -> Verdict:
        if not o.alive:
            return Verdict(Health.FAILED, o.exit_reason)
        verdict = self._with_api(o) if self.with_api else self._without_api(o)
        if verdict.health is Health.READY:
            self.ready = True
        return verdict

    def _with_api(self, o: Observation) -> Verdict:
        if o.server_error or o.server is None:
            return Verdict(Health.FAILED, o.server_error or 'the MediaMTX API did not answer')
        if not self.ready:
            if o.server.ready:
                return Verdict(Health.READY)
            if o.now - self.started_at > self.start_timeout:
                return Verdict(Health.FAILED, 'the server did not receive the stream in time')
            return Verdict(Health.STARTING)
        if not o.server.ready:
            return Verdict(Health.FAILED, 'the server reports the stream as not ready')
        seen_at, seen_bytes = self._bytes_seen
        if o.server.bytes_received != seen_bytes:
            self._bytes_seen = (o.now, o.server.bytes_received)
        elif o.now - seen_at > self.stall_timeout:
            return Verdict(Health.FAILED, 'the stream stalled (no data reached the server)')
        elif o.now - o.encoder_progress_at > self.stall_timeout + ENCODER_GRACE:
            return Verdict(Health.FAILED, 'the encoder stalled')
        return Verdict(Health.OK)

    def _without_api(self, o: Observation) -> Verdict:
        flowing = o.now - o.encoder_progress_at < self.stall_timeout
        if not self.ready:
            if flowing and o.frames_written > 0 and o.now - self.started_at > NO_API_SETTLE:
                return Verdict(Health.READY)
            if o.now - self.started_at > self.start_timeout:
                return Verdict(Health.FAILED, 'the encoder produced nothing in time')
            return Verdict(Health.STARTING)
        return Verdict(Health.OK) if flowing else Verdict(Health.FAILED, 'the encoder stalled')
