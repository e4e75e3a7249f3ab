"""The camera's coordinate frames (pure): where it sits on the robot, and its optical frame.

REP 103: a body frame has x forward, y left, z up; an optical frame has z forward (along
the view), x right and y down. REP 105: ``base_link`` is fixed to the robot's base. The
chain published on ``/tf_static`` is ``base_link -> camera_link`` (the mount: position and
roll/pitch/yaw, parameters) and ``camera_link -> camera_optical_frame`` (a fixed rotation).
Images and CameraInfo carry ``camera_optical_frame``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

Quaternion = tuple[float, float, float, float]  # x, y, z, w

# camera_link -> camera_optical_frame: roll -90 deg, then yaw -90 deg (the optical axes
# as REP 103 names them, seen from the body frame)
OPTICAL_ROTATION: Quaternion = (-0.5, 0.5, -0.5, 0.5)


class Transform(NamedTuple):
    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation: Quaternion


def quaternion_from_rpy(roll: float, pitch: float, yaw: float) -> Quaternion:
    """The rotation of fixed-axis roll (x), then pitch (y), then yaw (z), in radians."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy)


def rotate(q: Quaternion, v: tuple[float, float, float]) -> tuple[float, float, float]:
    """``v`` rotated by the unit quaternion ``q`` (a child frame's axis in its parent)."""
    x, y, z, w = q
    # v' = v + 2w (u x v) + 2 u x (u x v), with u = (x, y, z)
    cx, cy, cz = y * v[2] - z * v[1], z * v[0] - x * v[2], x * v[1] - y * v[0]
    return (v[0] + 2 * (w * cx + y * cz - z * cy),
            v[1] + 2 * (w * cy + z * cx - x * cz),
            v[2] + 2 * (w * cz + x * cy - y * cx))


def camera_transforms(base_frame: str, camera_frame: str, optical_frame: str,
                      xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> list[Transform]:
    """The static chain base -> camera (the mount) -> optical frame."""
    return [Transform(base_frame, camera_frame, xyz, quaternion_from_rpy(*rpy)),
            Transform(camera_frame, optical_frame, (0.0, 0.0, 0.0), OPTICAL_ROTATION)]
