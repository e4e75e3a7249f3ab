"""The drive's ramps, the deadman and stopping (pure code)."""
from __future__ import annotations

from havatar_drivers.drive_controller import DriveController
from havatar_drivers.kinematics import DriveConfig


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
    c.command(0.0, 0.0, 11.1)  # the driver stops, then goes: the deadman stops nothing
    assert c.update(11.7) == (0, 0)
    assert c.deadman_stops == 1 and not c.active


def test_stop_forgets_the_command():
    c = DriveController(DriveConfig(max_linear_accel=0.0), cmd_timeout=5.0)
    c.command(0.25, 0.0, 0.0)
    c.stop()
    assert c.update(0.1) == (0, 0)
