"""One access token for everything the robot serves: nodes started with none configured
share the one the first of them generates.
"""
from __future__ import annotations

import os
import stat
import urllib.error
import urllib.request

from havatar_bringup.graph import parameter_arguments
from havatar_testing import free_port, ros_executable


def status_of(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={'Authorization': f'Bearer {token}'})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_nodes_without_a_configured_token_share_the_generated_one(processes, tmp_path):
    # no token anywhere: an empty HAVATAR_ACCESS_TOKEN, the default file under a fresh
    # XDG_CONFIG_HOME; both nodes start at once, so either may generate it
    env = {'HAVATAR_ACCESS_TOKEN': '', 'XDG_CONFIG_HOME': str(tmp_path)}
    http, mjpeg = free_port(), free_port()
    relay = processes.start('relay_node', [
        ros_executable('havatar_relay', 'relay_node'), '--ros-args', *parameter_arguments(
            {'http_port': http, 'http_host': '127.0.0.1', 'mjpeg_port': mjpeg,
             'settings_file': tmp_path / 'server_mode.json'})], env=env)
    streaming = processes.start('streaming_node', [
        ros_executable('havatar_streaming', 'streaming_node'), '--ros-args', *parameter_arguments(
            {'mjpeg_port': mjpeg, 'mjpeg_host': '127.0.0.1'})], env=env)
    relay.wait_for_output('web UI on', timeout=20)
    streaming.wait_for_output('MJPEG on', timeout=20)

    path = tmp_path / 'havatar' / 'access_token'
    token = path.read_text().strip()
    assert len(token) >= 24 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ['access_token']
    for url in (f'http://127.0.0.1:{http}/system_status', f'http://127.0.0.1:{mjpeg}/stats'):
        assert status_of(url, token) == 200, url
        assert status_of(url, token[:-1]) == 401, url
    for node in (relay, streaming):
        assert token not in node.output(), f'{node.name} logs the token'
        assert str(path) in node.output(), f'{node.name} logs where the token is'
