"""streaming_node's parameters through the parameter service: read-only ones are refused
with a reason, bad values too, and the dynamic ones take effect (a real MediaMTX checks).
"""
from __future__ import annotations

import json
from typing import Any

from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.qos import QoSDurabilityPolicy, QoSProfile

from havatar_msgs.msg import StreamStatus
from havatar_testing import wait_until
from havatar_testing.streaming import ROBOT, USERS

LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def set_parameters(ros_node, **values: Any) -> list[Any]:
    client = ros_node.node.create_client(SetParameters, '/streaming_node/set_parameters')
    request = SetParameters.Request(
        parameters=[Parameter(name, value=value).to_parameter_msg() for name, value in values.items()])
    return list(ros_node.call(client, request, timeout=15).results)


def get_parameter(ros_node, name: str) -> Any:
    client = ros_node.node.create_client(GetParameters, '/streaming_node/get_parameters')
    value = ros_node.call(client, GetParameters.Request(names=[name]), timeout=15).values[0]
    return parameter_value_to_python(value)


def test_read_only_and_bad_values_are_refused_with_a_reason(streaming_node, ros_node):
    streaming_node()
    [encoder] = set_parameters(ros_node, encoder='h264_v4l2m2m')
    assert not encoder.successful and 'read-only' in encoder.reason
    assert get_parameter(ros_node, 'encoder') == 'libx264'

    url, key, mode = set_parameters(ros_node, server_url='http://example.org', stream_key='',
                                    mode='cloud')
    assert not url.successful and 'server_url' in url.reason and 'rtsp://' in url.reason
    assert not key.successful and 'stream_key' in key.reason
    assert not mode.successful and 'cloud' in mode.reason
    assert get_parameter(ros_node, 'server_url') == 'rtsp://127.0.0.1:8554'


def test_a_new_stream_password_is_used_by_the_next_session(sources, streaming_node,
                                                           mediamtx_factory, ros_node):
    server = mediamtx_factory(users=USERS)
    sources()
    node, _ = streaming_node(server, password='wrong', mode='server', retry_min=0.5, retry_max=1.0)
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.fallback_active and '401' in m.last_error, timeout=30,
                    what='refused with the wrong password')

    [result] = set_parameters(ros_node, stream_password=ROBOT.password)

    assert result.successful, result.reason
    status.clear()
    status.wait_for(lambda m: m.active_mode == 'server' and not m.fallback_active, timeout=30,
                    what='server mode with the new password')
    assert server.path_ready(ROBOT.path)
    assert ROBOT.password not in node.output()


def test_a_new_server_url_moves_publishing_there(sources, streaming_node, mediamtx_factory,
                                                 ros_node):
    first, second = mediamtx_factory(users=USERS), mediamtx_factory(users=USERS)
    sources()
    streaming_node(first, mode='server', api_url='none')  # the API would name one server
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    wait_until(lambda: first.path_ready(ROBOT.path), 10, 'publishing to the first server')

    new_url = f'rtsp://127.0.0.1:{second.ports.rtsp}'
    [result] = set_parameters(ros_node, server_url=new_url)

    assert result.successful, result.reason
    wait_until(lambda: second.path_ready(ROBOT.path), 30, 'publishing to the second server')
    wait_until(lambda: not first.path_ready(ROBOT.path), 10, 'the first server left')
    status.wait_for(lambda m: m.active_mode == 'server' and m.server_url == new_url, timeout=10,
                    what='status naming the second server')


def test_fallback_to_local_is_taken_while_running(sources, streaming_node, mediamtx_factory, ros_node):
    server = mediamtx_factory(users=USERS)
    sources()
    node, _ = streaming_node(server, password='wrong', mode='server', fallback_to_local=False,
                             retry_min=0.5, retry_max=1.0)
    node.wait_for_output('server mode failed', timeout=30)
    assert 'retrying in' not in node.output()  # given up: fallback_to_local is false

    [bad] = set_parameters(ros_node, fallback_to_local='yes')
    assert not bad.successful and bad.reason, bad
    [result] = set_parameters(ros_node, fallback_to_local=True)

    assert result.successful, result.reason
    node.wait_for_output('retrying in', timeout=30)  # the failed server is tried again
    assert get_parameter(ros_node, 'fallback_to_local') is True


def test_saved_settings_it_cannot_use_are_reported_and_left_aside(streaming_node, ros_node, tmp_path):
    (tmp_path / 'server_mode.json').write_text(json.dumps({'server_mode': {
        'enabled': True, 'server_url': 'rtsp://media.example.org:8554', 'stream_key': 'robot1'}}))
    node, _ = streaming_node()  # its settings_file is that one
    assert 'saved server settings not used' in node.output() and 'unencrypted RTSP' in node.output()
    assert get_parameter(ros_node, 'server_url') == 'rtsp://127.0.0.1:8554'
    assert get_parameter(ros_node, 'mode') == 'local'
