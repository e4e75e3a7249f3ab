"""Relay test tools: Redis, relay server processes, the robot with its relay node, and a
protocol client playing browser or robot.
"""
from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any, Callable, Optional

import aiohttp
import pytest
import yaml

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import find_program, free_port
from havatar_relay import protocol as p
from .ros import ros_executable

ACCOUNTS = {
    'robots': {'robot1': {'token': 'robot1-token'}, 'robot2': {'token': 'robot2-token'}},
    'users': {'alice': {'token': 'alice-token', 'robots': ['robot1', 'robot2'], 'record': True},
              'bob': {'token': 'bob-token', 'robots': ['robot1']},
              'carol': {'token': 'carol-token', 'robots': ['robot2']}},
}


@pytest.fixture
def redis_url(processes, tmp_path) -> str:
    port = free_port()
    server = processes.start('redis-server', [find_program('redis-server'), '--port', str(port),
                                              '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                                              '--dir', tmp_path])
    server.wait_for_port(port, timeout=10)
    return f'redis://127.0.0.1:{port}/0'


@pytest.fixture
def relay_server(processes, tmp_path) -> Callable[..., str]:
    """Start relay_server processes; returns their base URL."""
    config = tmp_path / 'relay.yaml'
    config.write_text(yaml.safe_dump(ACCOUNTS))

    def start(redis_url: str = '', name: str = 'relay', heartbeat: float = 1.0,
              port: int = 0, env: dict[str, str] | None = None) -> str:
        port = port or free_port()
        argv: list[Any] = [ros_executable('havatar_relay', 'relay_server'), '--config', config,
                           '--host', '127.0.0.1', '--port', str(port), '--instance-id', name]
        if redis_url:
            argv += ['--redis-url', redis_url]
        server = processes.start(name, argv, env={'HAVATAR_RELAY_HEARTBEAT_S': str(heartbeat),
                                                  **(env or {})})
        server.wait_for_http(f'http://127.0.0.1:{port}/health', timeout=15, ok=lambda s: s == 200)
        return f'http://127.0.0.1:{port}'
    return start


class Client:
    """A protocol client (browser or robot) over aiohttp; answers pings by itself."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.skipped: list[dict[str, Any]] = []  # passed over by next(kind), kept for later
        self.welcome: Optional[dict[str, Any]] = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, base: str, role: str, token: str, robot_id: str,
                      answer_pings: bool = True) -> 'Client':
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(base.replace('http', 'ws') + '/ws')
        client = cls(session, ws)
        client.answer_pings = answer_pings
        await client.send({'type': 'hello', 'role': role, 'token': token, 'robot_id': robot_id})
        first = await client.next()
        if first['type'] == 'welcome':
            client.welcome = first
        else:
            client.refusal = first
        return client

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message['type'] == 'ping' and getattr(self, 'answer_pings', True):
                await self.send({'type': 'pong', 'ts': message.get('ts'), 'peer_ts': p.now_ms()})
                continue
            await self.inbox.put(message)
        await self.inbox.put({'type': '_closed'})

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def next(self, kind: Optional[str] = None, timeout: float = 5.0) -> dict[str, Any]:
        """The next message (of ``kind``; others are kept for later calls)."""
        for i, message in enumerate(self.skipped):
            if kind is None or message['type'] == kind:
                return self.skipped.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await asyncio.wait_for(self.inbox.get(), max(0.01, deadline - loop.time()))
            if kind is None or message['type'] in (kind, '_closed'):
                return message
            self.skipped.append(message)

    async def until(self, kind: str, predicate: Callable[[dict[str, Any]], bool],
                    timeout: float = 5.0) -> dict[str, Any]:
        """The first message of ``kind`` that satisfies ``predicate`` (others are dropped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next(kind, max(0.01, deadline - loop.time()))
            if message['type'] == '_closed' or predicate(message):
                return message

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await self.session.close()


def drive(seq: int, linear: float = 0.2, angular: float = 0.0) -> dict[str, Any]:
    return {'type': 'drive', 'seq': seq, 'ts': p.now_ms(), 'linear': linear, 'angular': angular}


LOCAL_TOKEN = 'local-secret'


@pytest.fixture
def relay_robot(processes, start_sim, start_motor_node, tmp_path):
    """The simulated robot with its relay node; returns (sim, relay base URL, settings file)."""
    def start(relay_url: str = '', **params: object):
        sim = start_sim('v1')
        start_motor_node(sim.port, max_linear_accel=0.0)
        port = free_port()
        settings = tmp_path / 'server_mode.json'
        parameters: dict[str, object] = {'robot_id': 'robot1', 'http_port': port,
                                         'http_host': '127.0.0.1', 'settings_file': settings}
        if relay_url:
            parameters['relay_url'] = relay_url
        argv = [ros_executable('havatar_relay', 'relay_node'), '--ros-args',
                *parameter_arguments({**parameters, **params})]
        node = processes.start('relay_node', argv, env={'HAVATAR_ACCESS_TOKEN': LOCAL_TOKEN,
                                                        'HAVATAR_ROBOT_TOKEN': 'robot1-token'})
        node.wait_for_output('web UI on', timeout=20)
        base = f'http://127.0.0.1:{port}'
        # ready when the relay node hears the motor node (DDS discovery done both ways)
        node.wait_for(lambda: system_status(base).get('serial', '').startswith('connected'),
                      timeout=20, what='the relay node to see the motor node')
        return sim, base, settings, node
    return start


def system_status(base: str) -> dict:
    request = urllib.request.Request(base + '/system_status',
                                     headers={'Authorization': f'Bearer {LOCAL_TOKEN}'})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


