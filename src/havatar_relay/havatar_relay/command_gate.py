"""What the robot does with a driving command (pure: no ROS, no network, no clock of its own).

The caller passes the time: ``now_ms`` (the protocol's clock, ms since the Unix epoch) to
judge a command's age, and ``now_s`` (monotonic seconds) for how long a command is held.
One owner drives a gate: the relay node calls it from one event loop only.

- ``drive`` commands stream from the UI (20-50 Hz) and are followed as they come; the motor
  node's deadman stops the robot when they stop coming. A command whose ``ts`` (already in
  this robot's clock, see the relay protocol) is older than ``max_age_ms``, or further in the
  future than ``max_age_ms`` (a clock that cannot be trusted), is dropped, not executed.
- ``motor_control`` (the original UI: a direction on press, ``stop`` on release) is held --
  ``hold`` repeats it -- until ``stop``, another command, ``motor_control_hold_s``, or the
  driver's lease runs out: the relay sends a ``lease`` for the live driver a few times a
  second, so a held command never outlives its driver, its relay or the link to them.
- ``stop`` stops at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import protocol as p

Twist = tuple[float, float]  # (linear m/s, angular rad/s)
STOPPED: Twist = (0.0, 0.0)
LEASE_S = 0.6  # a held command without any word of its driver lasts this long at most


@dataclass
class CommandGate:
    max_linear: float = 0.5
    max_angular: float = 2.5
    max_age_ms: float = 300.0
    motor_control_hold_s: float = 10.0
    lease_s: float = LEASE_S

    held: Optional[Twist] = None
    held_until: float = 0.0
    holder: Optional[str] = None   # the session whose command is held
    lease_until: float = 0.0
    dropped_stale: int = 0

    def _stale(self, ts: Optional[float], now_ms: float) -> bool:
        if ts is None:
            return False
        if abs(now_ms - ts) > self.max_age_ms:
            self.dropped_stale += 1
            return True
        return False

    @staticmethod
    def _ack(message: p.Drive | p.MotorControl, now_ms: float, stale: bool) -> p.Ack:
        return p.Ack(seq=message.seq, sent_ts=message.origin_ts or message.ts, robot_ts=now_ms,
                     id=message.id, executed=not stale,
                     reason=p.ErrorCode.STALE_COMMAND if stale else None)

    def drive(self, message: p.Drive, now_ms: float) -> tuple[Optional[Twist], p.Ack]:
        """The twist to publish for ``message`` (None when stale) and the ack to send."""
        if self._stale(message.ts, now_ms):
            return None, self._ack(message, now_ms, stale=True)
        self.held = None
        twist = (max(-self.max_linear, min(self.max_linear, message.linear)),
                 max(-self.max_angular, min(self.max_angular, message.angular)))
        return twist, self._ack(message, now_ms, stale=False)

    def motor_control(self, message: p.MotorControl, now_ms: float,
                      now_s: float) -> tuple[Optional[Twist], p.Ack]:
        """The twist to publish now (None when stale), held until stopped or expired."""
        if self._stale(message.ts, now_ms):
            return None, self._ack(message, now_ms, stale=True)
        scale = message.speed / 255.0
        twist = {
            p.Direction.FORWARD: (self.max_linear * scale, 0.0),
            p.Direction.BACKWARD: (-self.max_linear * scale, 0.0),
            p.Direction.LEFT: (0.0, self.max_angular * scale),
            p.Direction.RIGHT: (0.0, -self.max_angular * scale),
            p.Direction.STOP: STOPPED,
        }[message.direction]
        self.held = None if twist == STOPPED else twist
        self.holder = message.id
        self.held_until = now_s + self.motor_control_hold_s
        self.lease_until = now_s + self.lease_s
        return twist, self._ack(message, now_ms, stale=False)

    def lease(self, message: p.Lease, now_s: float) -> None:
        """The relay vouches for ``message.driver``: its held command may go on a little."""
        if self.held is not None and message.driver == self.holder:
            self.lease_until = max(self.lease_until,
                                   now_s + min(self.lease_s, message.ttl_ms / 1000.0))

    def stop(self) -> Twist:
        self.held = None
        return STOPPED

    def hold(self, now_s: float) -> Optional[Twist]:
        """The held twist to repeat now, or None; STOPPED once when the hold ends."""
        if self.held is None:
            return None
        if now_s > min(self.held_until, self.lease_until):
            self.held = None
            return STOPPED
        return self.held
