"""Server mode as deployed, for encoding on demand: MediaMTX authenticating through the
relay server's hook, the relay server asking MediaMTX's API (admin token), and the robot's
camera (test pattern), microphone, relay node (a cloud client, protocol v2) and streaming
node (server mode, no API access: ``api_url: none``). Used by tests and benchmarks.
"""
from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.mediamtx import MediaMtxPorts, local_config, relay_auth
from havatar_bringup.processes import ManagedProcess, ProcessManager, find_program, free_port
from .relay import ACCOUNTS
from .ros import ros_executable

ADMIN = 'admin-token-of-the-test'
ROBOT_ID, ROBOT_TOKEN = 'robot1', 'robot1-token'
USER = 'alice-token'  # may watch and record robot1


@dataclass
class OnDemandStack:
    mediamtx: MediaMtxPorts
    relay: int
    streaming: ManagedProcess
    camera: ManagedProcess
    relay_node: ManagedProcess

    def encoders(self) -> list[psutil.Process]:
        """The streaming node's publishing ffmpeg processes (raw video on its stdin)."""
        found = []
        for child in psutil.Process(self.streaming.pid).children(recursive=True):
            try:
                if child.name() == 'ffmpeg' and 'pipe:0' in child.cmdline():
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    def whep_url(self) -> str:
        return f'http://127.0.0.1:{self.mediamtx.webrtc}/{ROBOT_ID}/whep'

    def rtsp_url(self) -> str:
        return f'rtsp://alice:{USER}@127.0.0.1:{self.mediamtx.rtsp}/{ROBOT_ID}'

    def path(self) -> dict[str, Any]:
        """MediaMTX's view of the robot's path ({} while it has no publisher)."""
        request = urllib.request.Request(f'http://127.0.0.1:{self.mediamtx.api}/v3/paths/list',
                                         headers={'Authorization': f'Bearer {ADMIN}'})
        with urllib.request.urlopen(request, timeout=5) as response:
            items = json.load(response).get('items', [])
        return next((item for item in items if item.get('name') == ROBOT_ID), {})

    def set_recording(self, on: bool) -> None:
        request = urllib.request.Request(
            f'http://127.0.0.1:{self.relay}/api/robots/{ROBOT_ID}/recording', method='POST',
            data=json.dumps({'record': on}).encode(),
            headers={'Authorization': f'Bearer {USER}', 'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)['recording'] is on


def start_on_demand_stack(pm: ProcessManager, work: Path, idle_linger: float = 2.0,
                          width: int = 320, height: int = 240, fps: float = 15.0,
                          **streaming_params: object) -> OnDemandStack:
    """Start it all and return once the robot's server mode is active."""
    ports = MediaMtxPorts()
    relay = free_port()
    accounts = work / 'relay.yaml'
    accounts.write_text(yaml.safe_dump(ACCOUNTS))
    server = pm.start('relay', [ros_executable('havatar_relay', 'relay_server'), '--config', accounts,
                                '--host', '127.0.0.1', '--port', str(relay)],
                      env={'HAVATAR_RELAY_ADMIN_TOKEN': ADMIN,
                           'HAVATAR_RELAY_MEDIAMTX_API_URL': f'http://127.0.0.1:{ports.api}',
                           'HAVATAR_RELAY_MEDIAMTX_PLAYBACK_URL': f'http://127.0.0.1:{ports.playback}'})
    server.wait_for_http(f'http://127.0.0.1:{relay}/health', timeout=15, ok=lambda s: s == 200)
    config = work / 'mediamtx.yml'
    config.write_text(yaml.safe_dump(local_config(ports, relay_auth(f'http://127.0.0.1:{relay}/mediamtx/auth'))))
    mediamtx = pm.start('mediamtx', [find_program('mediamtx'), config], cwd=work)  # recordings: ./recordings
    mediamtx.wait_for_port(ports.api, timeout=15)
    camera = pm.start('camera_node', [
        ros_executable('havatar_drivers', 'camera_node'), '--ros-args', *parameter_arguments(
            {'source': 'test_pattern', 'width': width, 'height': height, 'fps': fps})])
    mic = pm.start('microphone_node', [ros_executable('havatar_drivers', 'microphone_node'), '--ros-args',
                                       *parameter_arguments({'source': 'tone'})])
    relay_node = pm.start('relay_node', [
        ros_executable('havatar_relay', 'relay_node'), '--ros-args', *parameter_arguments(
            {'robot_id': ROBOT_ID, 'http_port': free_port(), 'http_host': '127.0.0.1',
             'relay_url': f'ws://127.0.0.1:{relay}/ws', 'settings_file': str(work / 'relay-settings.json')})],
        env={'HAVATAR_ACCESS_TOKEN': 'local-secret', 'HAVATAR_ROBOT_TOKEN': ROBOT_TOKEN})
    streaming = pm.start('streaming_node', [
        ros_executable('havatar_streaming', 'streaming_node'), '--ros-args', *parameter_arguments({
            'mode': 'server', 'server_url': f'rtsp://127.0.0.1:{ports.rtsp}', 'api_url': 'none',
            'stream_key': ROBOT_ID, 'stream_user': ROBOT_ID, 'mjpeg_port': free_port(),
            'mjpeg_host': '127.0.0.1', 'width': width, 'height': height, 'fps': fps,
            'idle_linger': idle_linger, 'settings_file': str(work / 'server_mode.json'),
            **streaming_params})],
        env={'HAVATAR_STREAM_PASSWORD': ROBOT_TOKEN, 'HAVATAR_ACCESS_TOKEN': 'local-secret'})
    camera.wait_for_output('publishing', timeout=30)
    mic.wait_for_output('capturing', timeout=30)
    relay_node.wait_for_output('connected to the cloud relay', timeout=30)
    streaming.wait_for_output('server mode active', timeout=30)
    return OnDemandStack(ports, relay, streaming, camera, relay_node)
