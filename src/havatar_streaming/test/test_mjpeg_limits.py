"""The MJPEG server under attack: token guessing is slowed per client, slowloris
connections are closed and slow bodies cut off, while the rightful viewer still gets in
promptly (in-process server, 127.0.0.1 only).
"""
from __future__ import annotations

import asyncio
import json

import pytest

from havatar_common.conn_limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS_PER_CLIENT
from havatar_streaming.http_server import MjpegServer
from havatar_streaming.mjpeg import FrameHub
from havatar_testing.attacks import (PROMPT_S, SlowBody, Slowloris, get_status, guesses_next_to_the_user,
                                     session_from, timed)

TOKEN = 's3cret'


@pytest.fixture
def mjpeg(free_tcp_port):
    port = free_tcp_port()
    server = MjpegServer(FrameHub(), '127.0.0.1', port, access_token=TOKEN)
    server.start()
    try:
        yield f'http://127.0.0.1:{port}', port
    finally:
        server.stop()


def test_token_guessing_is_slowed_while_the_right_token_gets_in(mjpeg):
    base, _ = mjpeg
    before, after = asyncio.run(guesses_next_to_the_user(f'{base}/stats', TOKEN))
    print(f'guesses/s from one address: {before:.0f} before, {after:.2f} after the free ones')
    assert before > 10 and after < 3, (before, after)

    async def counted() -> dict:
        async with session_from('127.0.0.1') as session:
            async with session.get(f'{base}/stats?token={TOKEN}') as response:
                return json.loads(await response.text())
    assert asyncio.run(counted())['auth_throttled'] >= 3


def test_slowloris_is_closed_while_a_viewer_connects(mjpeg):
    base, port = mjpeg

    async def scenario() -> None:
        async with Slowloris('127.0.0.1', port, 200) as attack:
            await attack.wait_closed(200 - MAX_CONNECTIONS_PER_CLIENT, HEADER_TIMEOUT_S / 2)  # by the cap
            async with session_from('127.0.0.2') as viewer:
                code, took = await timed(get_status(viewer, f'{base}/stats', TOKEN))
                assert code == 200 and took < PROMPT_S
            lasted = await attack.wait_all_closed(timeout=HEADER_TIMEOUT_S + 10)
            assert HEADER_TIMEOUT_S - 1 < lasted < HEADER_TIMEOUT_S + 5, lasted
    asyncio.run(scenario())


def test_a_slow_body_is_cut_off_while_a_viewer_connects(mjpeg):
    """A request with a body it never finishes sending (even to the stream, with the
    token) is answered 408 and closed when its body is late.
    """
    base, port = mjpeg

    async def scenario() -> None:
        async with SlowBody('127.0.0.1', port, 20, 'GET', '/stream.mjpg',
                            {'Authorization': f'Bearer {TOKEN}'}) as attack:
            await asyncio.sleep(1.0)
            async with session_from('127.0.0.2') as viewer:
                code, took = await timed(get_status(viewer, f'{base}/stats', TOKEN))
                assert code == 200 and took < PROMPT_S
            lasted = await attack.wait_all_closed(timeout=BODY_TIMEOUT_S + 10)
            assert attack.statuses == [408] * 20
            assert BODY_TIMEOUT_S - 1 < lasted < BODY_TIMEOUT_S + 5, lasted
    asyncio.run(scenario())
