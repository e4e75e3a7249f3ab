"""The drive's state: the operator's latest command, ramped, with the deadman (pure: the
caller supplies the time).

``DriveController`` ramps speeding up within the acceleration limits, and drops to zero
at once when commands stop arriving (the deadman) or when told to stop; the wheel
commands for each instant come from ``kinematics.twist_to_wheels``.
"""
from __future__ import annotations

import math
import threading
from typing import Callable, Optional

from .kinematics import DriveConfig, limit_velocity, twist_to_wheels


def _ramp(current: float, target: float, limit: float, dt: float) -> float:
    """Move towards ``target``; only speeding up (same sign, larger magnitude) is limited."""
    if limit <= 0 or dt <= 0:
        return target
    speeding_up = abs(target) > abs(current) and (current == 0 or (target > 0) == (current > 0))
    if not speeding_up:
        return target
    step = limit * dt
    return min(target, current + step) if target > current else max(target, current - step)


class DriveController:
    """The operator's command, rate-limited, with the deadman. Thread-safe.

    The command arrives on the ROS thread (``command``); ``update`` runs on the serial
    thread, so the deadman stops the motors even if the ROS side stalls.
    """

    def __init__(self, cfg: DriveConfig, cmd_timeout: float) -> None:
        self.cfg = cfg
        self.cmd_timeout = cmd_timeout
        self._lock = threading.Lock()
        self._target = (0.0, 0.0)
        self._current = (0.0, 0.0)
        self._last_command: float | None = None
        self._last_update: float | None = None
        self.deadman_stops = 0  # stops of a wanted motion; a driver that said zero and went is none
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every new command (on the commanding thread)."""
        self._listeners.append(callback)

    def command(self, linear: float, angular: float, now: float) -> None:
        if not (math.isfinite(linear) and math.isfinite(angular)):
            linear = angular = 0.0
        with self._lock:
            self._target = limit_velocity(linear, angular, self.cfg)
            self._last_command = now
        for callback in self._listeners:
            callback()

    def deadline(self) -> Optional[float]:
        """When the deadman stops the drive unless a command comes first (None: stopped)."""
        with self._lock:
            return None if self._last_command is None else self._last_command + self.cmd_timeout

    @property
    def ramping(self) -> bool:
        """True while the speed is still climbing towards the command (``update`` changes it)."""
        with self._lock:
            return self._current != self._target

    def stop(self) -> None:
        """Stop at once and forget the command (shutdown, serial error)."""
        with self._lock:
            self._target = self._current = (0.0, 0.0)
            self._last_command = None

    @property
    def active(self) -> bool:
        """True while a fresh command is being followed."""
        with self._lock:
            return self._last_command is not None

    def update(self, now: float) -> tuple[int, int]:
        """Wheel commands for this instant."""
        with self._lock:
            if self._last_command is not None and now - self._last_command > self.cmd_timeout:
                if self._target != (0.0, 0.0):  # a stop of motion the driver still wanted
                    self.deadman_stops += 1
                self._target = self._current = (0.0, 0.0)
                self._last_command = None
            dt = 0.0 if self._last_update is None else now - self._last_update
            self._last_update = now
            self._current = (
                _ramp(self._current[0], self._target[0], self.cfg.max_linear_accel, dt),
                _ramp(self._current[1], self._target[1], self.cfg.max_angular_accel, dt))
            return twist_to_wheels(self._current[0], self._current[1], self.cfg)
