"""The stream password is on no process's command line and in no log line of the node,
while the node publishes to (and reads talkback from) a real MediaMTX that needs it.
"""
from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import psutil
from rclpy.qos import qos_profile_sensor_data

from havatar_common.qos import LATCHED
from havatar_msgs.msg import AudioChunk, StreamStatus
from havatar_testing import find_program, wait_until
from havatar_testing.streaming import BROWSER_TALK, ROBOT, ROBOT_TALK, VIEWER


def command_lines() -> dict[int, str]:
    """Every process's command line, as any local user reads it."""
    lines = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode(
                    errors='replace')
            except OSError:
                pass  # ended meanwhile
    return lines


def test_stream_password_is_on_no_command_line_and_in_no_log(sources, streaming_node,
                                                            mediamtx_factory, processes, ros_node):
    # a password of this test alone: the scan sees every process of the machine
    password = f'pw-{secrets.token_hex(8)}'
    robot, robot_talk = replace(ROBOT, password=password), replace(ROBOT_TALK, password=password)
    server = mediamtx_factory(users=[robot, robot_talk, VIEWER, BROWSER_TALK])
    sources()
    processes.start('browser-talk', [  # someone talks, so the talkback reader keeps running
        find_program('ffmpeg'), '-hide_banner', '-nostdin', '-re', '-f', 'lavfi',
        '-i', 'sine=frequency=440:sample_rate=48000', '-c:a', 'libopus', '-f', 'rtsp',
        '-rtsp_transport', 'tcp',
        server.rtsp_url('robot1/talk', BROWSER_TALK.user, BROWSER_TALK.password)])
    wait_until(lambda: server.path_ready('robot1/talk'), 20, 'the talk path')
    speaker = ros_node.subscribe(AudioChunk, 'audio/speaker', qos_profile_sensor_data)
    node, _ = streaming_node(server, password=password, mode='server')
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    wait_until(lambda: server.path_ready('robot1'), 20, 'the robot publishing')
    speaker.wait_for(lambda m: len(m.data) > 0, timeout=20, what='talkback audio')

    def node_ffmpegs() -> list[str]:
        return [' '.join(p.cmdline()) for p in psutil.Process(node.pid).children(recursive=True)
                if p.name() == 'ffmpeg']
    wait_until(lambda: len(node_ffmpegs()) == 2, 10, 'the publisher and the talkback reader')
    leaked = [password, quote(password, safe='')]
    for _ in range(20):  # the session runs: look a few times, at every process
        leaks = {pid: line for pid, line in command_lines().items()
                 if any(secret in line for secret in leaked)}
        assert not leaks, f'the stream password is on a command line: {leaks}'
    for line in node_ffmpegs():
        assert 'rtsp://127.0.0.1:' in line and '@' not in line, line
    assert not any(secret in node.output() for secret in leaked), 'the node logs the password'
