"""Where each message for the robot goes (pure: no ROS; the node passes its outputs in).

Every message for the robot -- from its local server or from the cloud relay -- comes to
``route`` on one event loop, which alone owns the ``CommandGate``: driving commands go
through the gate to ``publish`` and their acks to ``reply``, ``stop`` publishes a stop at
once, ``lease`` extends a held command, ``say`` goes to ``say`` (text, language, voice),
``stop_speaking`` to ``stop_speaking``, and ``set_mode`` (a
service call that may take seconds) runs beside the driving, so it never delays a stop.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Coroutine

from . import protocol as p
from .command_gate import CommandGate, Twist

HOLD_PERIOD_S = 0.1  # how often a held motor_control is repeated


class CommandRouter:
    def __init__(self, gate: CommandGate, publish: Callable[[Twist], None],
                 reply: Callable[[p.Message], Awaitable[None]], say: Callable[[p.Say], None],
                 set_mode: Callable[[str], Awaitable[tuple[bool, str]]],
                 status: Callable[[], p.Status], *, stop_speaking: Callable[[], None],
                 viewers: Callable[[p.Viewers], None] = lambda message: None,
                 now_ms: Callable[[], float] = p.now_ms, now_s: Callable[[], float] = time.monotonic) -> None:
        """``publish`` a twist, ``reply`` to the users, ``say`` a text, ``stop_speaking``, ``set_mode`` of the
        streaming node (ok, message), the robot's ``status``; ``now_ms`` is the protocol's
        clock (commands' age), ``now_s`` a monotonic one (how long a command is held).
        """
        self.gate = gate
        self.publish = publish
        self.reply = reply
        self.say = say
        self.stop_speaking = stop_speaking
        self.set_mode = set_mode
        self.status = status
        self.now_ms = now_ms
        self.now_s = now_s
        self.viewers = viewers
        self._tasks: set[asyncio.Future[None]] = set()

    async def route(self, message: p.Message) -> None:
        """Handle one message for the robot; never waits for slow work."""
        if isinstance(message, p.Drive):
            twist, ack = self.gate.drive(message, self.now_ms())
            if twist is not None:
                self.publish(twist)
            await self.reply(ack)
        elif isinstance(message, p.MotorControl):
            twist, ack = self.gate.motor_control(message, self.now_ms(), self.now_s())
            if twist is not None:
                self.publish(twist)
            await self.reply(ack)
        elif isinstance(message, p.Stop):
            self.stop()
        elif isinstance(message, p.Lease):
            self.gate.lease(message, self.now_s())
        elif isinstance(message, p.Say):
            self.say(message)
        elif isinstance(message, p.StopSpeaking):
            self.stop_speaking()
        elif isinstance(message, p.SetMode):
            self._background(self._switch_mode(message))  # a service call: beside the driving
        elif isinstance(message, p.GetStatus):
            await self.send_status()
        elif isinstance(message, p.Viewers):
            self.viewers(message)

    def stop(self) -> None:
        """Stop now (a stop message, or the link to the driver is gone)."""
        self.publish(self.gate.stop())

    async def send_status(self) -> None:
        await self.reply(self.status())

    def start(self) -> None:
        """Begin repeating held commands (on the loop that routes)."""
        self._background(self._repeat_held())

    def _background(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _switch_mode(self, message: p.SetMode) -> None:
        ok, text = await self.set_mode(message.mode)
        if not ok:
            await self.reply(p.Error(code=p.ErrorCode.INTERNAL, message=text[:500], id=message.id))
        await self.send_status()

    async def _repeat_held(self) -> None:
        while True:
            await asyncio.sleep(HOLD_PERIOD_S)
            twist = self.gate.hold(self.now_s())
            if twist is not None:
                self.publish(twist)
