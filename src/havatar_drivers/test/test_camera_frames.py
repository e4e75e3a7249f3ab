"""The camera's frames (pure): REP 103 optical axes and the mount rotation."""
from __future__ import annotations

import math

import pytest

from havatar_drivers.camera.frames import OPTICAL_ROTATION, camera_transforms, quaternion_from_rpy, rotate


def close(a, b) -> bool:
    return all(math.isclose(x, y, abs_tol=1e-9) for x, y in zip(a, b))


@pytest.mark.parametrize('axis, in_camera_link', [
    ((0, 0, 1), (1, 0, 0)),   # the optical z looks forward
    ((1, 0, 0), (0, -1, 0)),  # the optical x points right
    ((0, 1, 0), (0, 0, -1)),  # the optical y points down
])
def test_optical_frame_looks_along_x_with_x_right_and_y_down(axis, in_camera_link):
    assert close(rotate(OPTICAL_ROTATION, axis), in_camera_link)


def test_optical_rotation_is_roll_then_yaw_of_minus_90_degrees():
    assert close(quaternion_from_rpy(-math.pi / 2, 0, -math.pi / 2), OPTICAL_ROTATION)


@pytest.mark.parametrize('rpy, forward', [
    ((0, 0, 0), (1, 0, 0)),
    ((0, 0, math.pi / 2), (0, 1, 0)),      # yaw left
    ((0, math.pi / 6, 0), (math.cos(math.pi / 6), 0, -0.5)),  # pitched down 30 deg (REP 103: +pitch looks down)
    ((math.pi / 2, 0, 0), (1, 0, 0)),      # roll keeps the view axis
])
def test_mount_rotation_turns_the_view_axis(rpy, forward):
    assert close(rotate(quaternion_from_rpy(*rpy), (1, 0, 0)), forward)


def test_chain_goes_base_to_camera_to_optical():
    mount, optical = camera_transforms('base_link', 'camera_link', 'camera_optical_frame',
                                       (0.1, 0.0, 1.2), (0.0, 0.2, 0.0))
    assert (mount.parent, mount.child, mount.translation) == ('base_link', 'camera_link', (0.1, 0.0, 1.2))
    assert close(mount.rotation, quaternion_from_rpy(0.0, 0.2, 0.0))
    assert (optical.parent, optical.child, optical.translation) == ('camera_link', 'camera_optical_frame',
                                                                    (0.0, 0.0, 0.0))
    assert math.isclose(sum(c * c for c in mount.rotation), 1.0)
