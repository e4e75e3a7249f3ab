"""The stream mode state machine (pure: time is passed in).

The user *requests* a mode; the *active* mode is what runs. Server mode is entered only
after the server checked out, and any failure while in it falls back to local (if
``fallback_to_local``), then retries with exponential back-off until the server is back.

Every start of a server session is a numbered *attempt*: whoever runs the session acts on
it only while ``wanted_attempt`` still names it, so a switch to local (or a restart with new
settings) in the middle of a start leaves nothing running.
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
    attempt: int = 0  # numbers the server sessions started
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
        return self._start()

    def restart(self, now: float) -> list[Action]:
        """The server settings changed: a session that runs or is due starts anew with them."""
        if self.requested != SERVER:
            return []
        actions = [Action.STOP_SERVER] if self.active == SERVER or self._starting else []
        self.active = LOCAL
        self._backoff = 0.0
        return actions + self._start()

    def set_fallback_to_local(self, value: bool, now: float) -> None:
        """Change ``fallback_to_local`` while running: a server that failed is retried from
        now on (soon, when it was given up), or no more.
        """
        self.fallback_to_local = value
        if self.requested != SERVER or not self.fallback:
            return
        if not value:
            self.retry_at = None
        elif self.retry_at is None:
            self.retry_at = now + self.backoff_min

    def _start(self) -> list[Action]:
        self._starting = True
        self.retry_at = None
        self.attempt += 1
        return [Action.START_SERVER]

    def started(self, now: float, attempt: Optional[int] = None) -> None:
        """Publishing to the server works (ignored when ``attempt`` is no longer wanted)."""
        if self.requested == SERVER and self._starting and attempt in (None, self.attempt):
            self.active = SERVER
            self.fallback = False
            self._starting = False
            self._backoff = 0.0
            self.retry_at = None

    def failed(self, reason: str, now: float, attempt: Optional[int] = None) -> list[Action]:
        """The server check or the publish session failed (ignored when ``attempt`` is no
        longer wanted: a newer start or a switch to local made it moot).
        """
        if attempt is not None and attempt != self.wanted_attempt:
            return []
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
            return self._start()
        return []

    @property
    def starting(self) -> bool:
        return self._starting

    @property
    def wanted_attempt(self) -> Optional[int]:
        """The attempt whose session should run now; None when none should."""
        return self.attempt if self._starting or self.active == SERVER else None
