"""Streaming test tools: camera and microphone on simulated sources, the streaming node
against a real MediaMTX, its users, and an ffmpeg test-pattern publisher.
"""
from __future__ import annotations

from typing import Callable

import pytest

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import ManagedProcess, ProcessManager, find_program
from .mediamtx import MediaMtxServer, MediaMtxUser
from .ros import ros_executable

ROBOT = MediaMtxUser('robot1', 'robot-secret', actions=('publish', 'read'), path='robot1')
ROBOT_TALK = MediaMtxUser('robot1', 'robot-secret', actions=('read',), path='robot1/talk')
VIEWER = MediaMtxUser('viewer', 'viewer-secret', actions=('read',), path='robot1')
BROWSER_TALK = MediaMtxUser('viewer', 'viewer-secret', actions=('publish',), path='robot1/talk')
USERS = [ROBOT, ROBOT_TALK, VIEWER, BROWSER_TALK]
MJPEG_TOKEN = 'mjpeg-test-token'  # the access token of the streaming_node fixture's node


@pytest.fixture
def sources(processes) -> Callable[..., None]:
    """Start the camera (test pattern) and the microphone (tone)."""
    def start(width: int = 320, height: int = 240, fps: float = 15.0) -> None:
        camera = processes.start('camera_node', [
            ros_executable('havatar_drivers', 'camera_node'), '--ros-args', *parameter_arguments(
                {'source': 'test_pattern', 'width': width, 'height': height, 'fps': fps})])
        mic = processes.start('microphone_node', [
            ros_executable('havatar_drivers', 'microphone_node'), '--ros-args',
            *parameter_arguments({'source': 'tone'})])
        camera.wait_for_output('publishing', timeout=20)
        mic.wait_for_output('capturing', timeout=20)
    return start


@pytest.fixture
def streaming_node(processes, free_tcp_port, tmp_path) -> Callable[..., tuple[ManagedProcess, int]]:
    def start(server: MediaMtxServer | None = None, password: str = ROBOT.password,
              **params: object) -> tuple[ManagedProcess, int]:
        port = free_tcp_port()
        parameters: dict[str, object] = {'mjpeg_port': port, 'mjpeg_host': '127.0.0.1',
                                         'width': 320, 'height': 240, 'fps': 15.0,
                                         'settings_file': str(tmp_path / 'server_mode.json')}
        if server is not None:
            parameters.update(server_url=f'rtsp://127.0.0.1:{server.ports.rtsp}',
                              api_url=f'http://127.0.0.1:{server.ports.api}',
                              stream_key=ROBOT.path, stream_user=ROBOT.user)
        node = processes.start('streaming_node', [
            ros_executable('havatar_streaming', 'streaming_node'), '--ros-args',
            *parameter_arguments({**parameters, **params})],
            env={'HAVATAR_STREAM_PASSWORD': password, 'HAVATAR_ACCESS_TOKEN': MJPEG_TOKEN})
        node.wait_for_output('MJPEG on', timeout=20)
        return node, port
    return start


def start_mjpeg_camera(processes: ProcessManager, port: int, token: str, fps: float) -> None:
    """A 320x240 test-pattern camera and a streaming node serving its MJPEG on 127.0.0.1:``port``
    with ``token``; returns once both are up.
    """
    camera = processes.start('camera_node', [
        ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p', 'source:=test_pattern',
        '-p', 'width:=320', '-p', 'height:=240', '-p', f'fps:={fps}'])
    streaming = processes.start('streaming_node', [
        ros_executable('havatar_streaming', 'streaming_node'), '--ros-args',
        '-p', f'mjpeg_port:={port}', '-p', 'mjpeg_host:=127.0.0.1'],
        env={'HAVATAR_ACCESS_TOKEN': token})
    camera.wait_for_output('publishing', timeout=20)
    streaming.wait_for_output('MJPEG on', timeout=20)


def push_test_pattern(processes: ProcessManager, url: str, name: str = 'ffmpeg-publish') -> ManagedProcess:
    """Ffmpeg publishing a live H.264 test pattern to ``url`` until stopped."""
    return processes.start(name, [
        find_program('ffmpeg'), '-hide_banner', '-nostdin', '-re',
        '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15',
        '-pix_fmt', 'yuv420p', '-f', 'rtsp', '-rtsp_transport', 'tcp', url])
