"""The stream mode state machine (pure: time is passed in).

The user *requests* a mode; the *active* mode is what runs. Server mode is entered only
after the server checked out, and any failure while in it falls back to local (if
``fallback_to_local``), then retries with exponential back-off until the server is back.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

LOCAL = 'local'
SERVER = 'server'


class Action(str, Enum):
    START_SERVER = 'start_server'  # check the server, then start publishing
    STOP_SERVER = 'stop_server'


@dataclass
class ModeMachine:
    fallback_to_local: bool = True
    backoff_min: float = 1.0
    backoff_max: float = 30.0

    requested: str = LOCAL
    active: str = LOCAL
    fallback: bool = False  # server requested, running local because it failed
    last_error: str = ''
    retry_at: Optional[float] = None
    _backoff: float = 0.0
    _starting: bool = False

    def request(self, mode: str, now: float) -> list[Action]:
        if mode not in (LOCAL, SERVER):
            raise ValueError(f'unknown mode {mode!r} (local or server)')
        self.requested = mode
        if mode == LOCAL:
            self.fallback = False
            self.retry_at = None
            actions = [Action.STOP_SERVER] if self.active == SERVER or self._starting else []
            self.active = LOCAL
            self._starting = False
            return actions
        if self.active == SERVER or self._starting:
            return []
        self._backoff = 0.0
        self._starting = True
        self.retry_at = None
        return [Action.START_SERVER]

    def started(self, now: float) -> None:
        """Publishing to the server works."""
        if self.requested == SERVER and self._starting:
            self.active = SERVER
            self.fallback = False
            self._starting = False
            self._backoff = 0.0
            self.retry_at = None

    def failed(self, reason: str, now: float) -> list[Action]:
        """The server check or the publish session failed."""
        self.last_error = reason
        if self.requested != SERVER:
            return []
        self._starting = False
        self.active = LOCAL
        self.fallback = True
        self._backoff = min(self.backoff_max, max(self.backoff_min, self._backoff * 2))
        self.retry_at = now + self._backoff if self.fallback_to_local else None
        return [Action.STOP_SERVER]

    def tick(self, now: float) -> list[Action]:
        if self.requested == SERVER and self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self._starting = True
            return [Action.START_SERVER]
        return []

    @property
    def starting(self) -> bool:
        return self._starting
