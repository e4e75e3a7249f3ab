"""Differential-drive mapping and limits (pure code)."""
from __future__ import annotations

import math

import pytest

from havatar_drivers.kinematics import DriveConfig, twist_to_wheels

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
