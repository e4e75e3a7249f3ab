"""Differential-drive mapping, limits and the deadman (pure code)."""
from __future__ import annotations

import math

import pytest

from havatar_drivers.kinematics import DriveConfig, DriveController, twist_to_wheels

BASE = DriveConfig(track_width=0.2, max_wheel_speed=0.5, max_linear=0.5, max_angular=2.5)


@pytest.mark.parametrize('linear,angular,cfg,expected', [
    (0.0, 0.0, BASE, (0, 0)),
    (0.25, 0.0, BASE, (128, 128)),
    (-0.25, 0.0, BASE, (-128, -128)),
    (0.0, 2.0, BASE, (-102, 102)),          # counter-clockwise: left track backwards
    (0.0, -2.0, BASE, (102, -102)),
    (5.0, 0.0, BASE, (255, 255)),           # limited to max_linear
    (0.5, 2.5, BASE, (85, 255)),            # scaled together: keeps the curvature
    (math.nan, 0.0, BASE, (0, 0)),
    (0.25, 0.0, DriveConfig(invert_left=True), (-128, 128)),
    (0.25, 0.0, DriveConfig(trim_right=0.9), (128, 115)),
    (0.01, 0.0, DriveConfig(min_pwm=40), (40, 40)),
])
def test_twist_to_wheels(linear, angular, cfg, expected):
    assert twist_to_wheels(linear, angular, cfg) == expected


def test_speeding_up_is_ramped_but_stopping_is_immediate():
    c = DriveController(DriveConfig(max_linear_accel=1.0, max_angular_accel=0.0), cmd_timeout=1.0)
    c.update(0.0)
    c.command(0.5, 0.0, 0.0)
    assert c.update(0.1) == (51, 51)     # 0.1 m/s after 0.1 s at 1 m/s^2
    assert c.update(0.2) == (102, 102)
    c.command(0.0, 0.0, 0.25)
    assert c.update(0.25) == (0, 0)


def test_deadman_stops_after_cmd_timeout():
    c = DriveController(DriveConfig(max_linear_accel=0.0), cmd_timeout=0.5)
    c.command(0.25, 0.0, 10.0)
    assert c.update(10.4) == (128, 128)
    assert c.update(10.51) == (0, 0)
    assert c.deadman_stops == 1 and not c.active
    c.command(0.25, 0.0, 11.0)
    assert c.update(11.0) == (128, 128)


def test_stop_forgets_the_command():
    c = DriveController(DriveConfig(max_linear_accel=0.0), cmd_timeout=5.0)
    c.command(0.25, 0.0, 0.0)
    c.stop()
    assert c.update(0.1) == (0, 0)
