"""Talking to the robot in local mode: the browser's microphone as PCM over ``/talk/ws`` (pure).

The wire (``doc/TALK_WS.md``): the browser's first frame is a JSON text hello
``{"type": "talk", "token": ..., "session_id": ...}`` naming its live ``/ws`` session; the
robot answers ``talk_ready`` with the format it takes (``havatar_common.audio``: 48 kHz mono
S16LE) or an ``error`` and closes. Then every binary frame is a run of samples of that format,
at most ``MAX_FRAME_MS`` long and no faster than real time beyond a ``BURST_S`` head start;
a frame that breaks a rule is dropped with an ``error`` reply, and a sender that keeps breaking
them is disconnected. A text frame ``{"type": "stop"}`` (or closing) ends the talk.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from havatar_common.audio import PCM_CHANNELS, PCM_RATE, PCM_SAMPLE_BYTES

FRAME_MS = 20          # what the web UI sends
MAX_FRAME_MS = 100     # longest frame taken
BURST_S = 0.5          # how far ahead of real time a sender may get (network bunching)
MAX_REFUSALS = 50      # refused frames before the connection is closed
MAX_HELLO_BYTES = 1024
HELLO_TIMEOUT_S = 5.0


class TalkError(Exception):
    """A refusal to send back: ``code`` is one of the relay protocol's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self) -> dict[str, Any]:
        return {'type': 'error', 'code': self.code, 'message': self.message}


@dataclass(frozen=True)
class TalkFormat:
    """The PCM the robot takes: ``havatar_common.audio``'s format."""

    sample_rate: int = PCM_RATE
    channels: int = PCM_CHANNELS
    sample_bytes: int = PCM_SAMPLE_BYTES

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample frame (all channels)."""
        return self.channels * self.sample_bytes

    @property
    def max_frame_bytes(self) -> int:
        return self.sample_rate * MAX_FRAME_MS // 1000 * self.frame_bytes

    def seconds(self, size: int) -> float:
        return size / self.frame_bytes / self.sample_rate

    def ready(self) -> dict[str, Any]:
        """The ``talk_ready`` answer: what the browser must send."""
        return {'type': 'talk_ready', 'sample_rate': self.sample_rate, 'channels': self.channels,
                'sample_format': 'S16LE', 'frame_samples': self.sample_rate * FRAME_MS // 1000,
                'max_frame_bytes': self.max_frame_bytes}


@dataclass(frozen=True)
class TalkHello:
    token: str
    session_id: str


def _json_object(text: str) -> dict[str, Any]:
    if len(text) > MAX_HELLO_BYTES:
        raise TalkError('too_large', f'a text frame is at most {MAX_HELLO_BYTES} bytes')
    try:
        message = json.loads(text)
    except ValueError:
        raise TalkError('bad_json', 'text frames are JSON objects') from None
    if not isinstance(message, dict):
        raise TalkError('bad_json', 'text frames are JSON objects')
    return message


def parse_hello(text: str) -> TalkHello:
    """The first frame, checked; raises ``TalkError``."""
    message = _json_object(text)
    if message.get('type') != 'talk':
        raise TalkError('hello_required', 'the first frame must be {"type": "talk", "token", "session_id"}')
    token, session = message.get('token'), message.get('session_id')
    if not isinstance(token, str) or not 0 < len(token) <= 256:
        raise TalkError('unauthorized', 'the robot access token is needed')
    if not isinstance(session, str) or not 0 < len(session) <= 64:
        raise TalkError('invalid', 'session_id (from the /ws welcome) is needed')
    return TalkHello(token, session)


def is_stop(text: str) -> bool:
    """A text frame after the hello: True for ``stop``; raises ``TalkError`` for anything else."""
    if _json_object(text).get('type') == 'stop':
        return True
    raise TalkError('invalid', 'after the hello only binary audio frames and {"type": "stop"} are taken')


class FrameGate:
    """Checks audio frames: size and pace (pure; ``now`` in seconds, any monotonic clock).

    The pace rule is a leaky bucket of audio time: what a sender sent drains at real time, and
    at most ``burst_s`` may wait in it. A sender faster than real time (or replaying a file)
    gets refused frames, never a buffer that grows; a pause earns no credit for later.
    """

    def __init__(self, fmt: TalkFormat, burst_s: float = BURST_S) -> None:
        self.fmt = fmt
        self.burst_s = burst_s
        self.accepted = 0
        self.refused = 0
        self._ahead_s = 0.0   # audio sent beyond real time
        self._stamp: Optional[float] = None

    def check(self, frame: bytes, now: float) -> None:
        """Raises ``TalkError`` (and counts a refusal) if ``frame`` is not to be played."""
        try:
            self._check(frame, now)
        except TalkError:
            self.refused += 1
            raise
        self.accepted += 1

    def _check(self, frame: bytes, now: float) -> None:
        size = len(frame)
        if size == 0 or size % self.fmt.frame_bytes:
            raise TalkError('invalid', f'an audio frame is whole {self.fmt.frame_bytes}-byte samples '
                                       f'(S16LE, {self.fmt.channels} channel); got {size} bytes')
        if size > self.fmt.max_frame_bytes:
            raise TalkError('too_large', f'an audio frame is at most {MAX_FRAME_MS} ms '
                                         f'({self.fmt.max_frame_bytes} bytes); got {size} bytes')
        if self._stamp is not None:
            self._ahead_s = max(0.0, self._ahead_s - (now - self._stamp))
        self._stamp = now
        length = self.fmt.seconds(size)
        if self._ahead_s + length > self.burst_s + 1e-9:
            raise TalkError('rate_limited', 'audio arrives faster than real time; frame dropped')
        self._ahead_s += length
