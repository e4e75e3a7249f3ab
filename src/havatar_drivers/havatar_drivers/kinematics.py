"""Differential-drive kinematics (pure: no ROS, no serial, no state).

``twist_to_wheels`` maps a body velocity (REP 103: m/s forward, rad/s counter-clockwise)
to the firmware's -255..255 wheel commands, within the robot's limits (``DriveConfig``).
The drive's state over time (ramps, the deadman) is ``drive_controller.DriveController``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .esp32.protocol import PWM_LIMIT, clamp_pwm


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


def limit_velocity(linear: float, angular: float, cfg: DriveConfig) -> tuple[float, float]:
    """The body velocity within ``max_linear`` and ``max_angular``."""
    return (max(-cfg.max_linear, min(cfg.max_linear, linear)),
            max(-cfg.max_angular, min(cfg.max_angular, angular)))


def twist_to_wheels(linear: float, angular: float, cfg: DriveConfig) -> tuple[int, int]:
    """Wheel commands for a body velocity, within the configured limits.

    When a track would exceed PWM 255 both are scaled down together, so the robot keeps
    the commanded curvature instead of turning tighter or wider than asked.
    """
    if not (math.isfinite(linear) and math.isfinite(angular)):
        return 0, 0
    linear, angular = limit_velocity(linear, angular, cfg)
    half_track = cfg.track_width / 2.0
    scale = PWM_LIMIT / cfg.max_wheel_speed
    left = (linear - angular * half_track) * scale * cfg.trim_left
    right = (linear + angular * half_track) * scale * cfg.trim_right
    peak = max(abs(left), abs(right))
    if peak > PWM_LIMIT:
        left, right = left * PWM_LIMIT / peak, right * PWM_LIMIT / peak
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
    return clamp_pwm(pwm)
