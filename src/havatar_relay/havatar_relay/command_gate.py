"""What the robot does with a driving command (pure: no ROS, no network).

``drive`` commands stream from the UI (20-50 Hz) and are followed as they come; one older
than ``max_age_ms`` (its ``ts`` is already in this robot's clock, see the relay protocol)
is dropped, not executed. ``motor_control`` (the original UI: a direction on press, ``stop``
on release) is held until ``stop``, a new command, or ``motor_control_hold_s``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import protocol as p

Twist = tuple[float, float]  # (linear m/s, angular rad/s)
STOPPED: Twist = (0.0, 0.0)


@dataclass
class CommandGate:
    max_linear: float = 0.5
    max_angular: float = 2.5
    max_age_ms: float = 300.0
    motor_control_hold_s: float = 10.0

    held: Optional[Twist] = None
    held_until: float = 0.0
    dropped_stale: int = 0

    def drive(self, message: p.Drive, now_ms: float) -> tuple[Optional[Twist], p.Ack]:
        """The twist to publish for ``message`` (None when stale) and the ack to send."""
        ack = p.Ack(seq=message.seq, sent_ts=message.ts, robot_ts=now_ms, id=message.id)
        age = now_ms - message.ts
        if age > self.max_age_ms:
            self.dropped_stale += 1
            return None, ack.model_copy(update={'executed': False, 'reason': p.ErrorCode.STALE_COMMAND})
        self.held = None
        twist = (max(-self.max_linear, min(self.max_linear, message.linear)),
                 max(-self.max_angular, min(self.max_angular, message.angular)))
        return twist, ack

    def motor_control(self, message: p.MotorControl, now_s: float) -> Twist:
        scale = message.speed / 255.0
        twist = {
            p.Direction.FORWARD: (self.max_linear * scale, 0.0),
            p.Direction.BACKWARD: (-self.max_linear * scale, 0.0),
            p.Direction.LEFT: (0.0, self.max_angular * scale),
            p.Direction.RIGHT: (0.0, -self.max_angular * scale),
            p.Direction.STOP: STOPPED,
        }[message.direction]
        self.held = None if twist == STOPPED else twist
        self.held_until = now_s + self.motor_control_hold_s
        return twist

    def stop(self) -> Twist:
        self.held = None
        return STOPPED

    def hold(self, now_s: float) -> Optional[Twist]:
        """The held motor_control twist to repeat now, or None (STOPPED once it expires)."""
        if self.held is None:
            return None
        if now_s > self.held_until:
            self.held = None
            return STOPPED
        return self.held
