"""havatar_common: failed authentication costs time; no server waits forever for headers."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from havatar_common.aio_server import BackgroundServer
from havatar_common.auth_throttle import AuthThrottle
from havatar_common.conn_limits import ConnectionCap
from havatar_testing import wait_until
from havatar_testing.attacks import Slowloris


def test_wrong_tokens_wait_longer_after_the_free_ones_per_address():
    throttle = AuthThrottle(free=3, base_s=0.5, max_s=4.0, window_s=60.0)
    waits = [throttle.failed('1.2.3.4', now=100.0) for _ in range(8)]
    # three typos free, then the waits queue: +0.5, +1, +2, then capped at now + max_s
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.5, 3.5, 4.0, 4.0]
    assert throttle.throttled == 5
    assert throttle.failed('5.6.7.8', now=100.0) == 0.0  # another address is not affected
    assert throttle.failed('1.2.3.4', now=130.0) == 4.0  # still within the window: still costly
    assert throttle.failed('1.2.3.4', now=300.0) == 0.0  # a quiet window later: afresh
    assert throttle.failures('1.2.3.4') == 1


def test_throttle_remembers_a_bounded_number_of_addresses():
    throttle = AuthThrottle(free=0, base_s=1.0, max_clients=3)
    for i in range(10):
        throttle.failed(f'10.0.0.{i}', now=0.0)
    assert [throttle.failures(f'10.0.0.{i}') for i in range(10)] == [0] * 7 + [1] * 3


def test_no_token_at_all_is_no_guess():
    throttle = AuthThrottle(free=0, base_s=1.0)
    assert asyncio.run(throttle.refuse('1.2.3.4', '')) == 0.0
    assert throttle.failures('1.2.3.4') == 0


def test_connection_cap_counts_live_connections_per_client():
    cap = ConnectionCap(per_client=2)
    assert cap.opened('a') and cap.opened('a') and not cap.opened('a') and cap.opened('b')
    cap.closed('a')
    assert cap.opened('a') and cap.refused == 1
    assert all(ConnectionCap(0).opened('a') for _ in range(100))  # 0: no cap


@pytest.fixture
def limited_server(free_tcp_port):
    port = free_tcp_port()
    server = BackgroundServer('limits-test', '127.0.0.1', port, per_client=20, header_timeout_s=1.5)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text='ok')

    async def make() -> web.Application:
        app = web.Application()
        app.router.add_get('/health', ok)
        return app
    server.start(make)
    try:
        yield server, port
    finally:
        server.stop()


def test_slowloris_connections_are_closed_and_capped_while_a_user_gets_in(limited_server):
    server, port = limited_server

    async def scenario() -> None:
        async with Slowloris('127.0.0.1', port, 60) as attack:
            await attack.wait_closed(40, 1.0)  # beyond the cap of 20: closed before the header timeout
            # another client (127.0.0.2) is served meanwhile, promptly
            connector = aiohttp.TCPConnector(local_addr=('127.0.0.2', 0), force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                started = time.monotonic()
                async with session.get(f'http://127.0.0.1:{port}/health') as response:
                    assert response.status == 200 and await response.text() == 'ok'
                assert time.monotonic() - started < 1.0
            lasted = await attack.wait_all_closed(timeout=10)
            assert 1.0 < lasted < 1.5 + 3.0, lasted  # the header timeout, not the client
        async with aiohttp.ClientSession() as session:  # the cap is released with the connections
            async with session.get(f'http://127.0.0.1:{port}/health') as response:
                assert response.status == 200
    asyncio.run(scenario())
    assert server.cap.refused >= 40
    # the server's thread sees the last client close a moment after the client did
    wait_until(lambda: not server.cap.live, timeout=5, what='every connection released')
