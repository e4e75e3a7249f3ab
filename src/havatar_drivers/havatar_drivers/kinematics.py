"""Differential-drive kinematics and the drive state (pure: no ROS, no serial).

``twist_to_wheels`` maps a body velocity (REP 103: m/s forward, rad/s counter-clockwise)
to the firmware's -255..255 wheel commands. ``DriveController`` keeps the operator's latest
command, ramps speeding up within the acceleration limits, and drops to zero at once when
commands stop arriving (the deadman) or when told to stop.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

PWM_MAX = 255


@dataclass(frozen=True)
class DriveConfig:
    """Geometry and limits of the robot; see the motor node's parameters for meanings."""

    track_width: float = 0.20        # m between the tracks' centre lines
    max_wheel_speed: float = 0.50    # m/s of a track at PWM 255
    max_linear: float = 0.50         # m/s
    max_angular: float = 2.5         # rad/s
    max_linear_accel: float = 1.0    # m/s^2 while speeding up; 0 = unlimited
    max_angular_accel: float = 6.0   # rad/s^2 while speeding up; 0 = unlimited
    invert_left: bool = False
    invert_right: bool = False
    trim_left: float = 1.0           # scale of the left track's command (straightens drift)
    trim_right: float = 1.0
    min_pwm: int = 0                 # smallest PWM that moves the motors; 0 = no deadband


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


def twist_to_wheels(linear: float, angular: float, cfg: DriveConfig) -> tuple[int, int]:
    """Wheel commands for a body velocity, within the configured limits.

    When a track would exceed PWM 255 both are scaled down together, so the robot keeps
    the commanded curvature instead of turning tighter or wider than asked.
    """
    if not (math.isfinite(linear) and math.isfinite(angular)):
        return 0, 0
    linear = _clamp(linear, cfg.max_linear)
    angular = _clamp(angular, cfg.max_angular)
    half_track = cfg.track_width / 2.0
    scale = PWM_MAX / cfg.max_wheel_speed
    left = (linear - angular * half_track) * scale * cfg.trim_left
    right = (linear + angular * half_track) * scale * cfg.trim_right
    peak = max(abs(left), abs(right))
    if peak > PWM_MAX:
        left, right = left * PWM_MAX / peak, right * PWM_MAX / peak
    wheels = [_to_pwm(left, cfg.min_pwm), _to_pwm(right, cfg.min_pwm)]
    if cfg.invert_left:
        wheels[0] = -wheels[0]
    if cfg.invert_right:
        wheels[1] = -wheels[1]
    return wheels[0], wheels[1]


def _to_pwm(value: float, min_pwm: int) -> int:
    pwm = int(round(value))
    if pwm != 0 and abs(pwm) < min_pwm:
        pwm = min_pwm if pwm > 0 else -min_pwm
    return max(-PWM_MAX, min(PWM_MAX, pwm))


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
        self.deadman_stops = 0

    def command(self, linear: float, angular: float, now: float) -> None:
        if not (math.isfinite(linear) and math.isfinite(angular)):
            linear = angular = 0.0
        with self._lock:
            self._target = (_clamp(linear, self.cfg.max_linear),
                            _clamp(angular, self.cfg.max_angular))
            self._last_command = now

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
                self._target = self._current = (0.0, 0.0)
                self._last_command = None
                self.deadman_stops += 1
            dt = 0.0 if self._last_update is None else now - self._last_update
            self._last_update = now
            self._current = (
                _ramp(self._current[0], self._target[0], self.cfg.max_linear_accel, dt),
                _ramp(self._current[1], self._target[1], self.cfg.max_angular_accel, dt))
            return twist_to_wheels(self._current[0], self._current[1], self.cfg)
