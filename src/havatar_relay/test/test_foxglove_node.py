"""foxglove_node with a client of the Foxglove WebSocket protocol (aiohttp), as the Foxglove
app speaks it: topics advertised with ros2msg schemas, messages decodable with the schema
alone, the ROS side subscribed only while a client watches.

The protocol is foxglove.websocket.v1 (github.com/foxglove/ws-protocol, docs/spec.md); the
foxglove-sdk server (as foxglove_bridge 3.x, built on it) negotiates it under the name
``foxglove.sdk.v1`` only, the same messages renamed (Foxglove's discussion #1131; Lichtblick
added the name in lichtblick-suite/lichtblick#819), and refuses the old name.
"""
from __future__ import annotations

import asyncio
import io
import json
import struct
import time
from typing import Any

import aiohttp
import pytest
from mcap.records import Schema
from mcap_ros2.decoder import DecoderFactory
from PIL import Image as PilImage

from havatar_relay.foxglove_topics import BEST_EFFORT, LATCHED, RELIABLE, Watchers, offered, subscription_kind
from havatar_testing import free_port, ros_executable, wait_until

SUBPROTOCOL = 'foxglove.sdk.v1'  # = foxglove.websocket.v1, renamed
OLD_SUBPROTOCOL = 'foxglove.websocket.v1'
MESSAGE_DATA = 0x01  # binary opcode: subscription id (u32), log time (u64), payload


# -- the pure parts
def test_offered_topics_match_the_pattern_and_have_one_type():
    graph = [('/camera/image_raw', ['sensor_msgs/msg/Image']), ('/cmd_vel', ['geometry_msgs/msg/Twist']),
             ('/mixed', ['std_msgs/msg/String', 'std_msgs/msg/Int32'])]
    assert offered(graph, '.*') == {'/camera/image_raw': 'sensor_msgs/msg/Image', '/cmd_vel': 'geometry_msgs/msg/Twist'}
    assert offered(graph, '/camera/.*') == {'/camera/image_raw': 'sensor_msgs/msg/Image'}


@pytest.mark.parametrize('publishers, kind', [
    ([(True, True)], LATCHED),
    ([(True, True), (True, True)], LATCHED),
    ([(False, False)], BEST_EFFORT),
    ([(True, False), (False, False)], BEST_EFFORT),
    ([(True, False)], RELIABLE),
    ([(True, True), (True, False)], RELIABLE),
    ([], RELIABLE),
])
def test_subscription_reads_every_publisher(publishers, kind):
    assert subscription_kind(publishers) == kind


def test_watchers_start_on_the_first_and_stop_after_the_last():
    w = Watchers()
    assert w.add('/a') and not w.add('/a') and w.watched() == {'/a'}
    assert not w.remove('/a') and w.remove('/a') and w.watched() == set()
    assert not w.remove('/a')


# -- the node, with a client
class FoxgloveClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.channels: dict[str, dict[str, Any]] = {}  # topic -> advertised channel
        self.messages: dict[int, list[tuple[int, bytes]]] = {}  # subscription id -> (log time, payload)
        self.ops: list[str] = []

    async def receive_until(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f'no {what} within {timeout} s; got ops {self.ops[-5:]}, '
                                   f'channels {sorted(self.channels)}')
            try:
                msg = await self.ws.receive(timeout=left)
            except asyncio.TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.TEXT:
                body = json.loads(msg.data)
                self.ops.append(body['op'])
                if body['op'] == 'advertise':
                    self.channels.update({c['topic']: c for c in body['channels']})
            elif msg.type == aiohttp.WSMsgType.BINARY and msg.data[0] == MESSAGE_DATA:
                sub, stamp = struct.unpack_from('<IQ', msg.data, 1)
                self.messages.setdefault(sub, []).append((stamp, bytes(msg.data[13:])))
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise ConnectionError(f'connection closed: {msg}')

    async def subscribe(self, sub_id: int, topic: str) -> None:
        await self.ws.send_str(json.dumps({'op': 'subscribe', 'subscriptions': [
            {'id': sub_id, 'channelId': self.channels[topic]['id']}]}))

    async def unsubscribe(self, sub_id: int) -> None:
        await self.ws.send_str(json.dumps({'op': 'unsubscribe', 'subscriptionIds': [sub_id]}))

    def decode(self, topic: str, payload: bytes) -> Any:
        c = self.channels[topic]
        assert (c['encoding'], c['schemaEncoding']) == ('cdr', 'ros2msg')
        schema = Schema(id=c['id'], name=c['schemaName'], encoding='ros2msg', data=c['schema'].encode())
        return DecoderFactory().decoder_for('cdr', schema)(payload)


def start(processes, package, executable, *params):
    argv = [ros_executable(package, executable), '--ros-args']
    for p in params:
        argv += ['-p', p]
    return processes.start(executable, argv)


def test_foxglove_client_sees_the_camera_and_its_frames(processes, ros_node):
    port = free_port()
    start(processes, 'havatar_drivers', 'camera_node', 'source:=test_pattern', 'width:=160', 'height:=120',
          'fps:=10.0', 'mount_z:=1.2').wait_for_output('publishing', timeout=20)
    start(processes, 'havatar_relay', 'foxglove_node', 'host:=127.0.0.1', f'port:={port}',
          'discovery_period:=0.3').wait_for_output(r'server on ws://[\d.]+:\d+', timeout=20)
    compressed = '/camera/image_raw/compressed'

    async def session() -> None:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError, match='400'):  # see the module's docstring
                await http.ws_connect(f'ws://127.0.0.1:{port}', protocols=(OLD_SUBPROTOCOL,))
        async with aiohttp.ClientSession() as http, http.ws_connect(
                f'ws://127.0.0.1:{port}', protocols=(SUBPROTOCOL,)) as ws:
            assert ws.protocol == SUBPROTOCOL
            client = FoxgloveClient(ws)
            wanted = {compressed, '/tf_static', '/camera/camera_info'}
            await client.receive_until(lambda: wanted <= set(client.channels), 20, 'camera topics advertised')
            assert client.ops[0] == 'serverInfo'
            assert client.channels[compressed]['schemaName'] == 'sensor_msgs/msg/CompressedImage'
            # nobody watches yet: the JPEG topic has no subscriber, so the camera encodes nothing
            assert ros_node.node.count_subscribers(compressed) == 0

            await client.subscribe(1, compressed)
            await client.subscribe(2, '/tf_static')  # latched: comes although published long ago
            await client.receive_until(lambda: len(client.messages.get(1, [])) >= 3 and client.messages.get(2),
                                       20, 'JPEGs and /tf_static')
            jpeg = client.decode(compressed, client.messages[1][-1][1])
            assert (jpeg.format, jpeg.header.frame_id) == ('rgb8; jpeg compressed bgr8', 'camera_optical_frame')
            assert PilImage.open(io.BytesIO(bytes(jpeg.data))).size == (160, 120)
            stamps = [t for t, _ in client.messages[1]]
            assert stamps == sorted(stamps) and abs(stamps[-1] / 1e9 - time.time()) < 30
            tf = client.decode('/tf_static', client.messages[2][0][1])
            assert {(t.header.frame_id, t.child_frame_id) for t in tf.transforms} == {
                ('base_link', 'camera_link'), ('camera_link', 'camera_optical_frame')}
            await asyncio.to_thread(wait_until, lambda: ros_node.node.count_subscribers(compressed) == 1, 10,
                                    'the ROS subscription of the watcher in the test node graph')

            await client.unsubscribe(1)
            await asyncio.to_thread(wait_until, lambda: ros_node.node.count_subscribers(compressed) == 0, 10,
                                    'the ROS subscription to end with the last watcher')

    asyncio.run(session())
    # the client went away still watching /tf_static: that subscription ends too
    wait_until(lambda: ros_node.node.count_subscribers('/tf_static') == 0, 10,
               'the ROS subscription of a client that left to end')
