"""The server side as ``docs/server-setup.md`` sets it up, on loopback ports: the shipped
Caddyfile run by Debian's Caddy in front of a real relay server and a real MediaMTX (with
the shipped authentication: the relay hook); a publisher playing robot1's stream, and a
robot1 on the relay whose reported stream mode the test sets.

The Caddyfile is used as shipped except for its site address (plain HTTP on a free
loopback port), its upstream host names (loopback ports) and Caddy's own admin endpoint (off).
"""
from __future__ import annotations

import asyncio
import http.client
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
import yaml

from havatar_bringup.mediamtx import MediaMtxPorts, local_config, relay_auth
from havatar_bringup.processes import ManagedProcess, ProcessManager, find_program, free_port, wait_until
from havatar_relay import protocol as p
from .relay import Client
from .tools import WORKSPACE

CADDYFILE = WORKSPACE / 'docker' / 'Caddyfile'
ADMIN = 'admin-token-of-the-test'
USER = 'alice-token'  # may watch robot1 and talk to it (havatar_testing.relay.ACCOUNTS)
TIMEOUT_S = 15.0


def fetch(port: int, method: str, path: str, token: str = '', body: bytes | str = b'',
          headers: dict[str, str] | None = None,
          read_body: bool = True) -> tuple[int, bytes, dict[str, str]]:
    """One HTTP request to 127.0.0.1:``port``, ``path`` sent exactly as given: status,
    body (not read for a stream: ``read_body=False``) and headers of the answer.
    """
    all_headers = dict(headers or {})
    if token:
        all_headers['Authorization'] = f'Bearer {token}'
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=TIMEOUT_S)
    try:
        connection.request(method, path, body=body or None, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read() if read_body else b'', dict(response.getheaders())
    finally:
        connection.close()


@dataclass
class Stack:
    """Where the running stack listens and the tokens it knows (``tokens[kind]``)."""

    robot_id: str
    tokens: dict[str, str]          # 'user', 'admin', 'robot', 'access' (the robot's own)
    caddy: int
    relay: int
    mediamtx: MediaMtxPorts
    redis: int = 0                  # 0: none
    robot_ui: int = 0               # 0: no robot in this stack
    mjpeg: int = 0
    rtsps: bool = False             # MediaMTX speaks RTSPS only (as shipped), not RTSP
    pids: dict[int, str] = field(default_factory=dict)  # pid -> name: whose ports to list
    manager: Optional[ProcessManager] = None  # to start a stand-in publisher (``publish``)
    publisher: Optional[ManagedProcess] = None

    @property
    def public(self) -> str:
        return f'http://127.0.0.1:{self.caddy}'

    def published(self) -> bool:
        """True when the robot's path has a ready publisher (asked with the admin token)."""
        status, body, _ = fetch(self.mediamtx.api, 'GET', f'/v3/paths/get/{self.robot_id}', self.tokens['admin'])
        return status == 200 and bool(json.loads(body)['ready'])

    def publish(self, audio: bool = True, timeout: float = 20.0) -> None:
        """The robot's stream as the robot sends it (H.264, and Opus), until ``unpublish``."""
        assert self.manager is not None
        audio_args = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'] if audio else []
        audio_codec = ['-c:a', 'libopus', '-b:a', '32k'] if audio else []
        robot, token = self.robot_id, self.tokens['robot']
        self.publisher = self.manager.start('ffmpeg', [
            find_program('ffmpeg'), '-hide_banner', '-nostdin', '-re', '-f', 'lavfi',
            '-i', 'testsrc2=size=160x120:rate=10', *audio_args, '-c:v', 'libx264', '-preset', 'ultrafast',
            '-tune', 'zerolatency', '-g', '10', '-pix_fmt', 'yuv420p', *audio_codec, '-f', 'rtsp',
            '-rtsp_transport', 'tcp', f'rtsp://{robot}:{token}@127.0.0.1:{self.mediamtx.rtsp}/{robot}'])
        self.publisher.wait_for(self.published, timeout=timeout, what=f'{robot} published')

    def unpublish(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher = None
            self.publisher_gone()

    def publisher_gone(self) -> None:
        wait_until(lambda: not self.published(), 15, f'{self.robot_id} no longer published')


def local_caddyfile(shipped: str, site: str, upstreams: dict[str, str]) -> str:
    """``shipped`` with the site address and upstreams replaced, and Caddy's admin API off."""
    text = shipped.replace('{$HAVATAR_DOMAIN} {', f'{site} {{', 1)
    text = text.replace('{\n\temail', '{\n\tadmin off\n\temail', 1)
    for shipped_target, local_target in upstreams.items():
        assert f'reverse_proxy {shipped_target}\n' in text, shipped_target
        text = text.replace(f'reverse_proxy {shipped_target}\n', f'reverse_proxy {local_target}\n')
    assert site in text and 'admin off' in text and text.count('reverse_proxy 127.0.0.1:') == 3
    return text


def start_caddy(processes: ProcessManager, caddyfile: Path, work_dir: Path, relay: int,
                mediamtx: MediaMtxPorts) -> int:
    """The shipped ``caddyfile`` run by Debian's caddy on a free loopback port (plain HTTP)
    in front of the relay at ``relay`` and MediaMTX at ``mediamtx``; returns its port.
    """
    port = free_port()
    local = work_dir / 'Caddyfile'
    local.write_text(local_caddyfile(caddyfile.read_text(), f'http://127.0.0.1:{port}', {
        'relay:8090': f'127.0.0.1:{relay}', 'mediamtx:8889': f'127.0.0.1:{mediamtx.webrtc}',
        'mediamtx:8888': f'127.0.0.1:{mediamtx.hls}'}))
    home = work_dir / 'caddy-home'
    home.mkdir()
    caddy = processes.start('caddy', [find_program('caddy'), 'run', '--adapter', 'caddyfile', '--config', local],
                            env={'HOME': str(home), 'XDG_DATA_HOME': str(home / 'data'),
                                 'XDG_CONFIG_HOME': str(home / 'config'),
                                 'HAVATAR_ACME_EMAIL': 'admin@example.org'})
    caddy.wait_for_http(f'http://127.0.0.1:{port}/health', timeout=15, ok=lambda status: status == 200)
    return port


@pytest.fixture
def proxied_stack(processes: ProcessManager, relay_server: Callable[..., str], tmp_path: Path) -> Stack:
    """Caddy (the shipped Caddyfile) in front of a relay server and MediaMTX; nothing published."""
    ports = MediaMtxPorts()
    relay_base = relay_server(env={'HAVATAR_RELAY_ADMIN_TOKEN': ADMIN,
                                   'HAVATAR_RELAY_MEDIAMTX_API_URL': f'http://127.0.0.1:{ports.api}',
                                   'HAVATAR_RELAY_MEDIAMTX_PLAYBACK_URL': f'http://127.0.0.1:{ports.playback}'})
    relay_port = int(relay_base.rsplit(':', 1)[1])
    config = tmp_path / 'mediamtx.yml'
    config.write_text(yaml.safe_dump(local_config(ports, relay_auth(f'{relay_base}/mediamtx/auth'))))
    # recordings go to ./recordings: the test's directory
    mediamtx = processes.start('mediamtx', [find_program('mediamtx'), config], cwd=tmp_path)
    mediamtx.wait_for_http(f'http://127.0.0.1:{ports.api}/v3/paths/list', timeout=15)
    caddy_port = start_caddy(processes, CADDYFILE, tmp_path, relay_port, ports)
    return Stack('robot1', {'user': USER, 'admin': ADMIN, 'robot': 'robot1-token', 'access': ''},
                 caddy=caddy_port, relay=relay_port, mediamtx=ports, manager=processes)


class FakeRobot:
    """robot1 on a relay (its own thread and event loop): sends its status twice a second,
    with the stream mode the test sets (``active``), and answers pings.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.active = 'server'
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name='fake-robot', daemon=True)
        self.thread.start()
        if not self._ready.wait(20) or self.error:
            raise RuntimeError(f'the fake robot did not connect: {self.error}')

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the test by __init__ or stop()
            self.error = exc
            self._ready.set()

    def status(self) -> dict[str, Any]:
        stream = p.StreamState(requested='server', active=self.active, server_reachable=self.active == 'server')
        return p.Status(robot_id='robot1', battery=p.Battery(voltage=12.1, percentage=0.8, present=True),
                        stream=stream, mjpeg_url=':8081/stream.mjpg',
                        whep_url='http://robot.invalid/robot1/whep', ts=p.now_ms()).model_dump(mode='json')

    async def _main(self) -> None:
        client = await Client.connect(self.base, 'robot', 'robot1-token', 'robot1')
        try:
            if client.welcome is None:
                raise RuntimeError(f'robot1 refused: {client.refusal}')
            self._ready.set()
            while not self._stop.is_set():
                await client.send(self.status())
                try:
                    await asyncio.wait_for(self._stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
        finally:
            await client.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


@pytest.fixture
def fake_robot(proxied_stack: Stack) -> Iterator[FakeRobot]:
    robot = FakeRobot(proxied_stack.public)
    try:
        yield robot
    finally:
        robot.stop()
