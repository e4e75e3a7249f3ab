"""havatar_common: token checks, secrets, the background aiohttp server, parameter tables."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import stat
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import rclpy
from aiohttp import web
from rclpy.parameter import Parameter

from havatar_common.aio_server import BackgroundServer
from havatar_common.auth import request_token, token_matches
from havatar_common.parameters import declare_parameters
from havatar_common import secrets as havatar_secrets
from havatar_common.secrets import access_token_file, resolve_token, secret


def test_token_matches_plain_and_hashed_in_constant_time():
    assert token_matches('s3cret', 's3cret')
    assert not token_matches('s3cre', 's3cret') and not token_matches('', 's3cret')
    hashed = 'sha256:' + hashlib.sha256(b's3cret').hexdigest().upper()
    assert token_matches('s3cret', hashed) and not token_matches('other', hashed)
    assert not token_matches('', '') and not token_matches('x', '')  # no token set: nobody


def test_request_token_prefers_the_bearer_header():
    assert request_token({'Authorization': 'Bearer abc'}, {'token': 'xyz'}) == 'abc'
    assert request_token({}, {'token': 'xyz'}) == 'xyz'
    assert request_token({'Authorization': 'Basic abc'}, {}) == ''


def test_resolve_token_order_and_private_file(tmp_path, monkeypatch):
    path = tmp_path / 'sub' / 'token'
    monkeypatch.delenv('HAVATAR_TEST_TOKEN', raising=False)
    generated = resolve_token('', 'HAVATAR_TEST_TOKEN', path)
    assert len(generated) >= 24 and path.read_text().strip() == generated
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_token('', 'HAVATAR_TEST_TOKEN', path) == generated  # kept across starts
    monkeypatch.setenv('HAVATAR_TEST_TOKEN', 'from-env')
    assert resolve_token('', 'HAVATAR_TEST_TOKEN', path) == 'from-env'
    assert resolve_token('param', 'HAVATAR_TEST_TOKEN', path) == 'param'
    assert secret('', 'HAVATAR_TEST_TOKEN') == 'from-env'


def test_resolve_token_loser_of_a_creation_race_takes_the_winners_token(tmp_path, monkeypatch):
    """Another node creates the file between this one's look and its own creation."""
    path = tmp_path / 'token'
    path.write_text('winner\n')
    real_read = havatar_secrets._read_token
    looks: list[Path] = []

    def read(p: Path) -> str:  # the first look sees no file yet
        looks.append(p)
        return '' if len(looks) == 1 else real_read(p)
    monkeypatch.setattr(havatar_secrets, '_read_token', read)
    monkeypatch.delenv('HAVATAR_TEST_TOKEN', raising=False)
    assert resolve_token('', 'HAVATAR_TEST_TOKEN', path) == 'winner'
    assert path.read_text() == 'winner\n' and len(looks) == 2
    assert [f.name for f in tmp_path.iterdir()] == ['token'], 'no temporary file is left'


def test_resolve_token_nodes_starting_at_once_share_one_token(tmp_path, monkeypatch):
    monkeypatch.delenv('HAVATAR_TEST_TOKEN', raising=False)
    path = tmp_path / 'havatar' / 'access_token'
    start = threading.Barrier(8)

    def resolve(_: int) -> str:
        start.wait()
        return resolve_token('', 'HAVATAR_TEST_TOKEN', path)
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(resolve, range(8)))
    assert tokens == {path.read_text().strip()}


def test_access_token_file_default_is_shared(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path))
    assert access_token_file('') == tmp_path / 'havatar' / 'access_token'
    assert access_token_file('~/x') == Path.home() / 'x'


def test_background_server_serves_calls_and_stops(free_tcp_port):
    port = free_tcp_port()
    server = BackgroundServer('test-http', '127.0.0.1', port)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text='ok')

    async def make() -> web.Application:
        app = web.Application()
        app.router.add_get('/', ok)
        return app
    server.start(make)
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=5) as response:
            assert response.read() == b'ok'
        assert server.call(asyncio.sleep(0, result=7)).result(5) == 7
        with pytest.raises(OSError):  # the same port again: the error comes at start
            BackgroundServer('second', '127.0.0.1', port).start(make)
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=2)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        sock.bind(('127.0.0.1', port))  # released


def test_parameters_not_named_dynamic_are_read_only():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('params_test', context=context)
        values = declare_parameters(node, [('mode', 'local', 'switchable', None),
                                           ('port', 80, 'fixed', (1, 65535))], dynamic=('mode',))
        assert values == {'mode': 'local', 'port': 80}
        changed, refused = node.set_parameters([Parameter('mode', value='server'),
                                                Parameter('port', value=81)])
        assert changed.successful and not refused.successful
        assert 'read-only' in refused.reason
        with pytest.raises(ValueError, match='no such parameters'):
            declare_parameters(node, [('a', 1, '', None)], dynamic=('b',))
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_a_capture_thread_stops_publishing_quietly_once_rclpy_shut_down():
    from types import SimpleNamespace

    from havatar_common.spin import until_shutdown
    running = [True]
    node = SimpleNamespace(context=SimpleNamespace(ok=lambda: running[0]))
    calls: list[int] = []

    def publish(n: int) -> None:
        calls.append(n)
        if n == 2:  # the context shut down while this publish ran: rclpy raises
            running[0] = False
            raise RuntimeError("Failed to publish: publisher's context is invalid")
        if n == 9:
            raise ValueError('a real failure')
    guarded = until_shutdown(node, publish)
    guarded(1)
    guarded(2)  # quiet: shutting down
    guarded(3)  # not even called
    assert calls == [1, 2]
    running[0] = True
    with pytest.raises(ValueError):
        guarded(9)  # while running, a failure is a failure
