"""The session supervisor: the only owner of the sessions, driven step by step.

A switch to local (or local and back to server) is injected at every point of a session's
start; afterwards nothing may be left running: first with fake parts on a fake clock, then
with the real parts (ffmpeg against a real MediaMTX), counting ffmpeg processes.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

import numpy as np
import psutil
import pytest

from havatar_streaming.mediamtx_api import ApiError, PathState
from havatar_streaming.mode import ModeMachine
from havatar_streaming.rtsp_session import PublishSettings
from havatar_streaming.session_parts import ServerTarget, SessionParts
from havatar_streaming.supervisor import WATCH_PERIOD, SessionSupervisor
from havatar_testing import wait_until
from havatar_testing.streaming import ROBOT, USERS

LOG = logging.getLogger('test_session_supervisor')
TARGET = ServerTarget('rtsp://127.0.0.1:8554', 'robot1', 'robot1', 'pw', 'http://127.0.0.1:9997')


class Hooks:
    """Calls ``action`` the first time the supervisor reaches ``stage`` (or its n-th time)."""

    def __init__(self, stage: str = '', action: Callable[[], None] = lambda: None, nth: int = 1) -> None:
        self.stage, self.action, self.nth = stage, action, nth
        self.counts: dict[str, int] = {}
        self.fired = False

    def __call__(self, stage: str) -> None:
        self.counts[stage] = self.counts.get(stage, 0) + 1
        if stage == self.stage and self.counts[stage] == self.nth and not self.fired:
            self.fired = True
            self.action()


class FakeSession:
    def __init__(self, target: ServerTarget, hooks: Hooks, clock: Callable[[], float]) -> None:
        self.settings = PublishSettings(target.server_url, target.stream_key, target.user,
                                        target.password)
        self.hooks, self.clock = hooks, clock
        self.started = self.stopped = False
        self.last_progress, self.frames_written, self.fps, self.bitrate_kbps = 0.0, 0, 0.0, 0.0
        self.exit_reason = ''

    def start(self) -> None:
        self.started = True
        self.last_progress, self.frames_written = self.clock(), 1
        self.hooks('session.start')

    def stop(self) -> None:
        self.stopped = True

    def alive(self) -> bool:
        self.last_progress = self.clock()
        return self.started and not self.stopped

    @property
    def running(self) -> bool:
        return self.started and not self.stopped


class FakeApi:
    def __init__(self, parts: 'FakeParts') -> None:
        self.parts = parts

    def check(self) -> None:
        self.parts.hooks('api.check')
        if self.parts.server_down:
            raise ApiError('MediaMTX API unreachable')

    def path(self, name: str) -> PathState:
        self.parts.path_calls += 1
        ready = self.parts.path_calls >= self.parts.ready_from_call
        self.parts.hooks('api.path.ready' if ready else 'api.path.starting')
        return PathState(ready, self.parts.path_calls * 1000, 0)


class FakeTalkback:
    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True
        self.hooks('talkback.start')

    def stop(self) -> None:
        self.stopped = True

    @property
    def running(self) -> bool:
        return self.started and not self.stopped


class FakeParts(SessionParts):
    def __init__(self, hooks: Hooks, clock: Callable[[], float]) -> None:
        self.hooks, self.clock = hooks, clock
        self.server_down = False
        self.ready_from_call = 2  # the first look finds the session starting, the second ready
        self.path_calls = 0
        self.sessions: list[FakeSession] = []
        self.talkbacks: list[FakeTalkback] = []

    def api(self, target: ServerTarget) -> FakeApi:
        self.path_calls = 0
        return FakeApi(self)

    def session(self, target: ServerTarget) -> FakeSession:
        self.hooks('session.create')
        self.sessions.append(FakeSession(target, self.hooks, self.clock))
        return self.sessions[-1]

    def talkback(self, target: ServerTarget) -> FakeTalkback:
        self.hooks('talkback.create')
        self.talkbacks.append(FakeTalkback(self.hooks))
        return self.talkbacks[-1]

    def running(self) -> list[object]:
        return [p for p in [*self.sessions, *self.talkbacks] if p.running]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_supervisor(hooks: Hooks) -> tuple[SessionSupervisor, FakeParts, FakeClock]:
    clock = FakeClock()
    parts = FakeParts(hooks, clock)
    supervisor = SessionSupervisor(ModeMachine(), parts, TARGET, start_timeout=6.0,
                                   stall_timeout=1.5, log=LOG, clock=clock)
    return supervisor, parts, clock


def steps(supervisor: SessionSupervisor, clock: FakeClock, count: int) -> None:
    for _ in range(count):
        clock.now += WATCH_PERIOD
        supervisor.step()


# every point of a start, and a running session; (stage, n-th time it is reached)
STAGES = [('api.check', 1), ('session.create', 1), ('session.start', 1),
          ('api.path.starting', 1), ('api.path.ready', 1), ('talkback.create', 1),
          ('talkback.start', 1), ('api.path.ready', 3)]


@pytest.mark.parametrize('stage, nth', STAGES)
def test_a_switch_to_local_at_any_point_leaves_nothing_running(stage, nth):
    hooks = Hooks(stage, nth=nth)
    supervisor, parts, clock = fake_supervisor(hooks)
    hooks.action = lambda: supervisor.request('local')
    supervisor.request('server')
    while not hooks.fired:
        steps(supervisor, clock, 1)
        assert clock.now < 200, f'{stage} never reached'
    steps(supervisor, clock, 1)  # the step after the switch

    assert parts.running() == []
    assert supervisor.session is None
    assert supervisor.status()[:3] == ('local', 'local', False)
    steps(supervisor, clock, 20)
    assert parts.running() == [], 'nothing starts again'


@pytest.mark.parametrize('stage, nth', STAGES)
def test_local_and_back_at_any_point_leaves_one_new_session(stage, nth):
    hooks = Hooks(stage, nth=nth)
    supervisor, parts, clock = fake_supervisor(hooks)
    hooks.action = lambda: (supervisor.request('local'), supervisor.request('server'))
    supervisor.request('server')
    while not hooks.fired:
        steps(supervisor, clock, 1)
    steps(supervisor, clock, 4)

    assert supervisor.status().active == 'server'
    assert len([s for s in parts.sessions if s.running]) == 1
    assert parts.sessions[-1].running and parts.talkbacks[-1].running
    assert len(parts.running()) == 2  # the new session and its talkback, nothing older


def test_new_settings_restart_the_session_with_them():
    hooks = Hooks()
    supervisor, parts, clock = fake_supervisor(hooks)
    supervisor.request('server')
    steps(supervisor, clock, 3)
    assert supervisor.status().active == 'server'
    other = ServerTarget('rtsp://10.0.0.2:8554', 'robot1', 'robot1', 'new-pw')
    assert supervisor.retarget(other) and not supervisor.retarget(other)
    steps(supervisor, clock, 3)
    assert [s.running for s in parts.sessions] == [False, True]
    assert parts.sessions[-1].settings.url() == 'rtsp://robot1:new-pw@10.0.0.2:8554/robot1'
    assert supervisor.status().active == 'server'


def test_a_failed_check_falls_back_and_retries():
    hooks = Hooks()
    supervisor, parts, clock = fake_supervisor(hooks)
    parts.server_down = True
    supervisor.request('server')
    steps(supervisor, clock, 1)
    status = supervisor.status()
    assert (status.active, status.fallback, status.server_reachable) == ('local', True, False)
    assert parts.sessions == []
    parts.server_down = False
    steps(supervisor, clock, 8)  # the retry comes after retry_min (1 s)
    assert supervisor.status().active == 'server' and supervisor.status().server_reachable


def test_the_thread_closes_its_session_when_stopped():
    hooks = Hooks()
    clock = FakeClock()
    parts = FakeParts(hooks, clock)
    ready = threading.Event()
    supervisor = SessionSupervisor(ModeMachine(), parts, TARGET, 6.0, 1.5, LOG,
                                   on_change=lambda: supervisor.session and ready.set(),
                                   clock=clock)
    supervisor.start()
    supervisor.request('server')
    assert ready.wait(10)
    supervisor.stop()
    assert parts.sessions and parts.running() == []


# -- the same with real processes: ffmpeg publishing to a real MediaMTX

class HookedParts(SessionParts):
    """The real parts, calling ``hooks`` at the same points as the fakes above."""

    def __init__(self, hooks: Hooks) -> None:
        super().__init__(PublishSettings('', '', '', '', width=160, height=120, fps=15.0),
                         talkback=True, on_talk=lambda pcm: None)
        self.hooks = hooks

    def api(self, target: ServerTarget):  # type: ignore[no-untyped-def]
        api, hooks = super().api(target), self.hooks
        assert api is not None

        class Hooked:
            def check(self) -> None:
                hooks('api.check')
                api.check()

            def path(self, name: str) -> PathState:
                state = api.path(name)
                hooks('api.path')  # a look at the session, before it is judged
                hooks('api.path.ready' if state.ready else 'api.path.starting')
                return state
        return Hooked()

    def session(self, target: ServerTarget):  # type: ignore[no-untyped-def]
        session, hooks = super().session(target), self.hooks
        start = session.start

        def hooked_start() -> None:
            start()
            hooks('session.start')
        session.start = hooked_start  # type: ignore[method-assign]
        return session

    def talkback(self, target: ServerTarget):  # type: ignore[no-untyped-def]
        self.hooks('talkback.create')
        return super().talkback(target)


def ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == 'ffmpeg']


def feed_frames(supervisor: SessionSupervisor, stop: threading.Event) -> None:
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    while not stop.wait(1 / 15):
        session: Optional[object] = supervisor.session
        if session is not None:
            session.put_frame(frame)  # type: ignore[attr-defined]


def test_real_sessions_leave_no_ffmpeg_after_a_switch_at_any_point(mediamtx_factory):
    server = mediamtx_factory(users=USERS)
    target = ServerTarget(f'rtsp://127.0.0.1:{server.ports.rtsp}', ROBOT.path, ROBOT.user,
                          ROBOT.password, f'http://127.0.0.1:{server.ports.api}')
    # ffmpeg may be ready at the first look already: 'api.path' 1 is that look, whatever it saw
    for stage, nth in [('api.check', 1), ('session.start', 1), ('api.path', 1),
                       ('talkback.create', 1), ('api.path.ready', 3)]:
        hooks = Hooks(stage, nth=nth)
        supervisor = SessionSupervisor(ModeMachine(), HookedParts(hooks), target,
                                       start_timeout=10.0, stall_timeout=3.0, log=LOG)
        hooks.action = lambda: supervisor.request('local')
        stop = threading.Event()
        feeder = threading.Thread(target=feed_frames, args=(supervisor, stop), daemon=True)
        feeder.start()
        try:
            supervisor.request('server')
            wait_until(lambda: supervisor.step() or hooks.fired, 30, f'stage {stage}',
                       interval=WATCH_PERIOD)
            supervisor.step()  # the step after the switch
            assert ffmpeg_children() == [], f'ffmpeg left running after a switch at {stage}'
            assert supervisor.session is None
        finally:
            stop.set()
            feeder.join()
            supervisor.close()
        wait_until(lambda: not server.path_ready(ROBOT.path), 10, 'the path unpublished')


def test_idle_without_readers_and_back_on_demand():
    """Once active, a session nobody wants stops (talkback stays); wanted again, a new one starts."""
    supervisor, parts, clock = fake_supervisor(Hooks())
    wanted = [True]
    supervisor.demand = lambda: wanted[0]
    supervisor.request('server')
    steps(supervisor, clock, 3)
    assert supervisor.status().active == 'server' and len(parts.sessions) == 1
    wanted[0] = False
    steps(supervisor, clock, 2)
    assert supervisor.idle and supervisor.session is None
    assert parts.running() == [parts.talkbacks[0]]  # no encoder; talkback and server mode go on
    assert supervisor.status().active == 'server'
    steps(supervisor, clock, 5)
    assert len(parts.sessions) == 1
    wanted[0] = True
    steps(supervisor, clock, 3)
    assert len(parts.sessions) == 2 and parts.sessions[1].running and not supervisor.idle
    assert len(parts.talkbacks) == 1 and parts.talkbacks[0].running
    supervisor.request('local')
    steps(supervisor, clock, 1)
    assert parts.running() == []


def test_idle_then_local_stops_the_talkback():
    supervisor, parts, clock = fake_supervisor(Hooks())
    wanted = [True]
    supervisor.demand = lambda: wanted[0]
    supervisor.request('server')
    steps(supervisor, clock, 3)
    wanted[0] = False
    steps(supervisor, clock, 1)
    assert supervisor.idle
    supervisor.request('local')
    steps(supervisor, clock, 1)
    assert parts.running() == [] and not supervisor.idle
