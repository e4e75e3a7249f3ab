"""The relay node's command routing without ROS: each message to its output, stops first."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from havatar_relay import protocol as p
from havatar_relay.command_gate import STOPPED, CommandGate
from havatar_relay.command_router import HOLD_PERIOD_S, CommandRouter

NOW_MS = 1_700_000_000_000.0


class Robot:
    """The router's outputs, recorded; a clock the test moves; a mode switch it controls."""

    def __init__(self) -> None:
        self.twists: list[tuple[float, float]] = []
        self.replies: list[p.Message] = []
        self.said: list[p.Say] = []
        self.stops_speaking = 0
        self.modes: list[str] = []
        self.mode_answer: tuple[bool, str] = (True, 'switched')
        self.mode_release = asyncio.Event()
        self.mode_release.set()
        self.ms, self.s = NOW_MS, 100.0
        self.router = CommandRouter(
            CommandGate(max_linear=0.5, max_angular=2.0, max_age_ms=300, lease_s=0.6),
            self.twists.append, self._reply, self.said.append, self._set_mode, self._status,
            stop_speaking=self._stop_speaking, now_ms=lambda: self.ms, now_s=lambda: self.s)

    def _stop_speaking(self) -> None:
        self.stops_speaking += 1

    async def _reply(self, message: p.Message) -> None:
        self.replies.append(message)

    async def _set_mode(self, mode: str) -> tuple[bool, str]:
        self.modes.append(mode)
        await self.mode_release.wait()
        return self.mode_answer

    def _status(self) -> p.Status:
        return p.Status(robot_id='robot1', ts=self.ms)

    def kinds(self) -> list[str]:
        return [m.type for m in self.replies]  # type: ignore[attr-defined]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


async def settle() -> None:
    for _ in range(5):  # let background tasks take their turns
        await asyncio.sleep(0)


def test_drive_is_published_clamped_and_acked():
    async def scenario() -> Robot:
        robot = Robot()
        await robot.router.route(p.Drive(ts=NOW_MS - 50, seq=3, linear=2.0, angular=-0.5, id='alice'))
        return robot
    robot = run(scenario())
    assert robot.twists == [(0.5, -0.5)]
    (ack,) = robot.replies
    assert isinstance(ack, p.Ack) and ack.executed and ack.seq == 3 and ack.id == 'alice'


def test_a_stale_drive_is_acked_not_executed():
    async def scenario() -> Robot:
        robot = Robot()
        await robot.router.route(p.Drive(ts=NOW_MS - 2000, seq=1, linear=0.3, angular=0, id='a'))
        return robot
    robot = run(scenario())
    assert robot.twists == []
    assert robot.replies[0].reason is p.ErrorCode.STALE_COMMAND  # type: ignore[attr-defined]


@pytest.mark.parametrize('message,said,stops', [
    (p.Say(text='hello'), [p.Say(text='hello')], 0),
    (p.Say(text='bună', lang='ro', voice='ro'), [p.Say(text='bună', lang='ro', voice='ro')], 0),
    (p.StopSpeaking(), [], 1),
    (p.Lease(driver='x', ttl_ms=600), [], 0),
])
def test_say_stop_speaking_and_lease_publish_no_twist(message, said, stops):
    async def scenario() -> Robot:
        robot = Robot()
        await robot.router.route(message)
        return robot
    robot = run(scenario())
    assert robot.said == said and robot.stops_speaking == stops
    assert robot.twists == [] and robot.replies == []


def test_get_status_answers_with_the_status():
    async def scenario() -> Robot:
        robot = Robot()
        await robot.router.route(p.GetStatus())
        return robot
    assert run(scenario()).kinds() == ['status']


def test_a_stop_is_not_held_up_by_a_slow_mode_switch():
    async def scenario() -> Robot:
        robot = Robot()
        robot.mode_release.clear()  # the streaming node takes its time
        await robot.router.route(p.MotorControl(direction='forward', speed=255, id='alice'))
        await asyncio.wait_for(robot.router.route(p.SetMode(mode='local', id='alice')), 0.1)
        await settle()
        assert robot.modes == ['local']  # the switch is under way...
        await asyncio.wait_for(robot.router.route(p.Stop(id='bob')), 0.1)
        assert robot.twists == [(0.5, 0.0), STOPPED]  # ...and the stop went out anyway
        assert robot.kinds() == ['ack']
        robot.mode_release.set()
        await settle()
        assert robot.kinds() == ['ack', 'status']  # after the switch: the new status
        return robot
    run(scenario())


def test_a_failed_mode_switch_is_reported_to_its_sender():
    async def scenario() -> Robot:
        robot = Robot()
        robot.mode_answer = (False, 'stream/set_mode is not available')
        await robot.router.route(p.SetMode(mode='server', id='alice'))
        await settle()
        return robot
    robot = run(scenario())
    error, status = robot.replies
    assert isinstance(error, p.Error) and error.id == 'alice' and error.code is p.ErrorCode.INTERNAL
    assert 'not available' in error.message and isinstance(status, p.Status)


def test_a_held_command_repeats_until_its_lease_lapses():
    async def scenario() -> Robot:
        robot = Robot()
        robot.router.start()
        await robot.router.route(p.MotorControl(direction='left', speed=255, id='alice'))
        for _ in range(3):  # the driver's leases keep it held
            robot.s += 0.3
            await robot.router.route(p.Lease(driver='alice', ttl_ms=600))
            await asyncio.sleep(HOLD_PERIOD_S * 1.5)
        held = len(robot.twists)
        robot.s += 1.0  # no lease: the hold ends with one stop
        await asyncio.sleep(HOLD_PERIOD_S * 2.5)
        assert held >= 4 and robot.twists[:held] == [(0.0, 2.0)] * held
        assert robot.twists[held:] == [STOPPED]
        return robot
    run(scenario())


def test_stop_on_a_lost_link_publishes_a_stop():
    async def scenario() -> Robot:
        robot = Robot()
        await robot.router.route(p.MotorControl(direction='forward', id='alice'))
        robot.router.stop()
        return robot
    robot = run(scenario())
    assert robot.twists[-1] == STOPPED and robot.router.gate.hold(robot.s) is None
