"""The one owner of server mode's sessions: a thread that starts, watches and stops them.

Other threads (ROS callbacks) only change the mode machine and the target, under a lock,
and wake the supervisor (``request``, ``retarget``); the supervisor alone opens and closes
the RTSP session and the talkback reader. Each step it compares the attempt the machine
wants with the one it runs and closes a session nobody wants any more, so a switch at any
point of a start leaves nothing running. ROS-free: the streaming node wires it.

Encoding on demand: once server mode is active, a session nobody wants (``demand()`` false:
nobody reads the robot's path, see ``demand.py``) is stopped and the mode stays active
(talkback goes on); when it is wanted again a new session starts, which begins with a key
frame, and becomes the running one when the server reports it ready.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, NamedTuple, Optional, Protocol

from .mediamtx_api import ApiError
from .mode import Action, ModeMachine
from .session_health import Health, Observation, SessionHealth
from .session_parts import Api, ServerTarget, Session, SessionParts, Talkback

WATCH_PERIOD = 0.25  # s between looks at a running session
JOIN_TIMEOUT = 5.0  # s to wait for the supervisor to close its session at shutdown


class Log(Protocol):
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...


class Status(NamedTuple):
    requested: str
    active: str
    fallback: bool
    last_error: str
    server_reachable: bool
    fps: float
    bitrate_kbps: float


class SessionSupervisor:
    def __init__(self, machine: ModeMachine, parts: SessionParts, target: ServerTarget,
                 start_timeout: float, stall_timeout: float, log: Log,
                 on_change: Callable[[], None] = lambda: None,
                 on_failure: Callable[[str], None] = lambda reason: None,
                 clock: Callable[[], float] = time.monotonic,
                 demand: Callable[[], bool] = lambda: True) -> None:
        self.machine = machine  # changed only under _lock
        self.parts = parts
        self.start_timeout = start_timeout
        self.stall_timeout = stall_timeout
        self.log = log
        self.on_change = on_change
        self.on_failure = on_failure
        self.clock = clock
        self.demand = demand
        self._lock = threading.Lock()
        self._target = target
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.server_reachable = False
        # owned by the supervisor thread
        self._session: Optional[Session] = None
        self._talkback: Optional[Talkback] = None
        self._attempt: Optional[int] = None
        self._opened: Optional[ServerTarget] = None
        self._api: Optional[Api] = None
        self._health: Optional[SessionHealth] = None

    # -- any thread
    def request(self, mode: str) -> list[Action]:
        """Ask for ``mode`` (ValueError when unknown); the supervisor carries it out."""
        with self._lock:
            actions = self.machine.request(mode, self.clock())
        self._wake.set()
        return actions

    def retarget(self, target: ServerTarget) -> bool:
        """New server settings; a session that runs or starts is restarted with them."""
        with self._lock:
            if target == self._target:
                return False
            self._target = target
            self.machine.restart(self.clock())
        self._wake.set()
        return True

    def set_fallback_to_local(self, value: bool) -> None:
        """Fall back and retry after a failure (True), or stop at the first one (False)."""
        with self._lock:
            self.machine.set_fallback_to_local(value, self.clock())
        self._wake.set()

    def wake(self) -> None:
        """Look at the demand now rather than at the next watch period."""
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Server mode is active with no session: nobody reads the stream."""
        return self._attempt is not None and self._session is None

    @property
    def target(self) -> ServerTarget:
        return self._target

    @property
    def session(self) -> Optional[Session]:
        """The current session, for its inputs (frames, audio) and statistics."""
        return self._session

    def status(self) -> Status:
        session = self._session
        with self._lock:
            m = self.machine
            return Status(m.requested, m.active, m.fallback, m.last_error, self.server_reachable,
                          float(session.fps) if session else 0.0,
                          float(session.bitrate_kbps) if session else 0.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name='stream-supervisor', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT)

    # -- the supervisor thread
    def run(self) -> None:
        """Step until stopped, then close the session: ffmpeg is SIGKILLed when the thread
        that started it ends (see ``RtspSession.start``), so this thread starts and stops it.
        """
        try:
            while not self._stop.is_set():
                self._wake.wait(WATCH_PERIOD)
                self._wake.clear()
                if self._stop.is_set():
                    break
                self.step()
        finally:
            self.close()

    def step(self) -> None:
        """Retry when due, close an unwanted session, open a wanted one or watch it."""
        with self._lock:
            retry = self.machine.tick(self.clock())
            wanted = self.machine.wanted_attempt
            target = self._target
        if retry:
            self.on_change()
        if self._attempt is not None and self._attempt != wanted:
            self._close()  # switched to local, or restarted with new settings
        if wanted is None:
            return
        if self._session is None:
            if self.idle and not self.demand():
                return  # server mode active, nobody reads: no encoder
            self._open(wanted, target)
        elif self._health is not None and self._health.ready and not self.demand():
            self._pause()
        else:
            self._watch(wanted)

    def _pause(self) -> None:
        """Stop encoding, staying in server mode (the talkback goes on)."""
        session, self._session, self._health = self._session, None, None
        if session is not None:
            session.stop()
        self.log.info('nobody reads the stream: encoder stopped')
        self.on_change()

    def _wanted(self, attempt: int) -> bool:
        with self._lock:
            return self.machine.wanted_attempt == attempt

    def _open(self, attempt: int, target: ServerTarget) -> None:
        api = self.parts.api(target)
        if api is not None:
            try:
                api.check()
            except ApiError as exc:
                self.server_reachable = False
                self._fail(attempt, str(exc))
                return
            self.server_reachable = True
        if not self._wanted(attempt):
            return  # switched while the server was asked
        session = self.parts.session(target)
        self._session, self._attempt, self._opened, self._api = session, attempt, target, api
        try:
            session.start()
        except OSError as exc:
            self._fail(attempt, f'ffmpeg did not start: {exc}')
            return
        self._health = SessionHealth(self.clock(), api is not None, self.start_timeout,
                                     self.stall_timeout)
        self.log.info(f'publishing to {session.settings.url(with_password=False)}')

    def _watch(self, attempt: int) -> None:
        session, health, target = self._session, self._health, self._opened
        assert session is not None and health is not None and target is not None
        now = self.clock()
        alive = session.alive()
        server, error = None, ''
        if alive and self._api is not None:
            try:
                server = self._api.path(target.stream_key)
                self.server_reachable = True
            except ApiError as exc:
                self.server_reachable, error = False, str(exc)
        verdict = health.judge(Observation(
            now, alive, '' if alive else session.exit_reason, session.last_progress,
            session.frames_written, server, error))
        if verdict.health is Health.FAILED:
            self._fail(attempt, verdict.reason)
        elif verdict.health is Health.READY:
            with self._lock:
                self.machine.started(now, attempt)
            if not self._wanted(attempt):
                return  # switched meanwhile: the next step closes the session
            if self._api is None:
                self.server_reachable = True
            if self._talkback is None:  # a session after an idle time keeps its talkback
                self._talkback = self.parts.talkback(target)
                if self._talkback is not None:
                    self._talkback.start()
            self.log.info('server mode active')
            self.on_change()

    def _fail(self, attempt: int, reason: str) -> None:
        now = self.clock()
        with self._lock:
            actions = self.machine.failed(reason, now, attempt)
            fallback, retry_at = self.machine.fallback, self.machine.retry_at
        self._close()
        if not actions:
            return  # a session nobody wanted any more
        self.on_failure(reason)
        self.log.warning(f'server mode failed: {reason}; '
                         f'{"running local" if fallback else "stopped"}'
                         + (f', retrying in {retry_at - now:.1f} s' if retry_at else ''))
        self.on_change()

    def close(self) -> None:
        """Stop the session and its talkback; only on the thread that runs ``step``."""
        self._close()

    def _close(self) -> None:
        session, self._session = self._session, None
        talkback, self._talkback = self._talkback, None
        self._attempt = self._opened = self._api = self._health = None
        if talkback is not None:
            talkback.stop()
        if session is not None:
            session.stop()
