"""Settings saved through the robot's HTTP API take effect at once and survive a restart;
the original client's requests get the original answers; the connection test reaches a
real MediaMTX. Real relay node, streaming node, camera/microphone and MediaMTX.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python

from havatar_bringup.graph import parameter_arguments
from havatar_testing import free_port, ros_executable, wait_until
from havatar_testing.relay import LOCAL_TOKEN
from havatar_testing.streaming import ROBOT, USERS

AUTH = {'Authorization': f'Bearer {LOCAL_TOKEN}'}


def call(base: str, path: str, body: Optional[Any] = None, method: Optional[str] = None,
         headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) of one request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={**AUTH, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def parameters(ros_node, names: list[str]) -> dict[str, Any]:
    client = ros_node.node.create_client(GetParameters, '/streaming_node/get_parameters')
    values = ros_node.call(client, GetParameters.Request(names=names)).values
    return {name: parameter_value_to_python(value) for name, value in zip(names, values)}


def save_when_applied(base: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /server/config until the relay node has discovered the streaming node."""
    deadline = time.monotonic() + 20
    while True:
        status, reply = call(base, '/server/config', body, headers={'Content-Type': 'application/json'})
        assert status == 200, reply
        if reply['applied'] or time.monotonic() > deadline:
            return reply
        time.sleep(0.5)


def start_relay_node(processes, settings: Path) -> str:
    """The relay node as ``relay_robot`` starts it (its motor node still running); its URL."""
    port = free_port()
    node = processes.start('relay_node', [
        ros_executable('havatar_relay', 'relay_node'), '--ros-args', *parameter_arguments(
            {'robot_id': 'robot1', 'http_port': port, 'http_host': '127.0.0.1', 'settings_file': settings})],
        env={'HAVATAR_ACCESS_TOKEN': LOCAL_TOKEN})
    node.wait_for_output('web UI on', timeout=20)
    return f'http://127.0.0.1:{port}'


def test_saved_settings_apply_at_once_and_come_back_after_a_restart(
        relay_robot, sources, streaming_node, mediamtx_factory, ros_node, processes):
    server = mediamtx_factory(users=USERS)
    sources()
    # started as robot.yaml starts it: local mode, another server, fallback on
    streaming, _ = streaming_node(api_url='none', stream_user=ROBOT.user)
    _, base, settings, relay = relay_robot()
    url = f'rtsp://127.0.0.1:{server.ports.rtsp}'
    reply = save_when_applied(base, {'enabled': True, 'server_url': url, 'stream_key': ROBOT.path,
                                     'stream_password': ROBOT.password, 'fallback_to_local': False})
    assert reply['ok'] and reply['applied'], reply
    streaming.wait_for_output('server mode active', timeout=30)
    saved = {'mode': 'server', 'server_url': url, 'stream_key': ROBOT.path, 'fallback_to_local': False}
    assert parameters(ros_node, list(saved)) == saved

    # reboot: both nodes stop and start again with their start-up parameters (a password
    # in the environment that MediaMTX refuses: the saved one is used)
    streaming.stop()
    relay.stop()
    wait_until(lambda: not server.path_ready(ROBOT.path), 15, 'the stream to end with the node')
    streaming, _ = streaming_node(password='not-the-saved-one', api_url='none', stream_user=ROBOT.user)
    assert f'saved server settings from {settings}: mode server, {url}, path {ROBOT.path}' in streaming.output()
    streaming.wait_for_output('server mode active', timeout=30)
    assert parameters(ros_node, list(saved)) == saved
    wait_until(lambda: server.path_ready(ROBOT.path), 15, 'the stream on the saved server')
    base = start_relay_node(processes, settings)
    wait_until(lambda: call(base, '/server/status')[1]['status']['connected_to_server'], 15,
               'the relay node to hear the stream status')
    status = call(base, '/server/status')[1]
    assert status['ok'] and status['status']['server_url'] == url

    # fallback_to_local is taken while running too, and a refused value is not saved
    reply = save_when_applied(base, {'fallback_to_local': True})
    assert reply['applied'] and parameters(ros_node, ['fallback_to_local']) == {'fallback_to_local': True}
    code, refused = call(base, '/server/config', {'server_url': 'rtsp://media.example.org:8554'},
                         headers={'Content-Type': 'application/json'})
    assert code == 400 and not refused['ok'] and 'unencrypted RTSP' in refused['msg'], refused
    assert json.loads(settings.read_text())['server_mode']['server_url'] == url
    assert parameters(ros_node, ['server_url']) == {'server_url': url}


def test_the_original_clients_requests_get_the_original_answers(relay_robot, sources, streaming_node,
                                                               mediamtx_factory):
    """The requests of the Flask robot's server-client.js (with the robot's token), and the
    fields it reads: ``ok``, ``msg``, ``status.connected_to_server``, ``status.server_url``.
    """
    server = mediamtx_factory(users=USERS)
    sources()
    streaming_node(api_url='none', stream_user=ROBOT.user)
    _, base, _, _ = relay_robot()
    json_header = {'Content-Type': 'application/json'}
    url = f'rtsp://127.0.0.1:{server.ports.rtsp}'
    # saveServerConfig(): every field of the form
    config = {'enabled': False, 'server_url': url, 'stream_key': ROBOT.path,
              'stream_password': ROBOT.password, 'fallback_to_local': True}
    deadline = time.monotonic() + 20
    while True:
        code, reply = call(base, '/server/config', config, headers=json_header)
        if reply.get('applied') or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 200 and reply['ok'] is True and reply['msg'] == 'Server configuration updated', reply
    # enableServerMode(): POST /server/start with a JSON content type and no body
    code, started = call(base, '/server/start', method='POST', headers=json_header)
    assert code == 200 and started['ok'] is True and isinstance(started['msg'], str), started
    # updateStatus() / getServerConfig(): GET /server/status
    wait_until(lambda: call(base, '/server/status')[1]['status']['connected_to_server'], 30,
               'server mode to be active')
    code, status = call(base, '/server/status')
    assert code == 200 and status['ok'] is True
    assert {'server_mode_enabled', 'connected_to_server', 'video_streaming', 'audio_streaming',
            'server_url'} <= set(status['status'])
    assert status['status']['server_url'] == url and status['status']['video_streaming'] is True
    code, health = call(base, '/system_status')
    assert code == 200
    assert {'camera', 'motors', 'tts', 'audio', 'battery', 'server', 'app_state'} <= set(health)
    assert health['server']['available'] is True and health['server']['connected_to_server'] is True
    assert {'uptime', 'clients_connected', 'total_requests', 'audio_streaming_active'} <= set(health['app_state'])
    assert {'voltage', 'percentage'} <= set(health['battery']) and set(health['audio']) == {'mic', 'speaker'}
    # disableServerMode(): POST /server/stop
    code, stopped = call(base, '/server/stop', method='POST')
    assert code == 200 and stopped['ok'] is True and isinstance(stopped['msg'], str)
    wait_until(lambda: not call(base, '/server/status')[1]['status']['connected_to_server'], 15,
               'local mode')
    # a refused configuration: {ok: false, msg}
    code, refused = call(base, '/server/config', {'enabled': True, 'server_url': ''}, headers=json_header)
    assert code == 400 and refused['ok'] is False and 'server_url' in refused['msg']
    # the connection test with the form's settings, unsaved
    code, tested = call(base, '/server/test', {'server_url': url, 'stream_key': ROBOT.path,
                                               'stream_password': 'wrong'}, headers=json_header)
    assert code == 200 and tested['ok'] is False and tested['error'] == 'unauthorized', tested
    code, tested = call(base, '/server/test', {'server_url': f'rtsp://127.0.0.1:{free_port()}',
                                               'stream_key': ROBOT.path}, headers=json_header)
    assert code == 200 and tested['error'] == 'refused', tested
    code, tested = call(base, '/server/test', {'server_url': url, 'stream_key': ROBOT.path},
                        headers=json_header)  # the saved password
    assert tested['ok'] is True, tested
