"""Talking to the robot in local mode: ``/talk/ws`` frames checked and played, only by the driver.

The pure rules (``talk.py``) table-driven; the endpoint in-process beside a relay core on
aiohttp's test server, as the robot's own server runs them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from havatar_relay.accounts import Accounts
from havatar_relay.brokers import MemoryBroker
from havatar_relay.relay_core import RelayCore
from havatar_relay.session import Limits
from havatar_relay.talk import (BURST_S, MAX_REFUSALS, FrameGate, TalkError, TalkFormat, is_stop,
                                parse_hello)
from havatar_relay.talk_server import TalkEndpoint
from havatar_testing.relay import Client

TOKEN = 'local-token'
FMT = TalkFormat()
FRAME = bytes(FMT.ready()['frame_samples'] * 2)  # 20 ms of silence


@pytest.mark.parametrize('text, code', [
    ('nonsense', 'bad_json'), ('[1]', 'bad_json'), ('x' * 2000, 'too_large'),
    ('{"type": "hello"}', 'hello_required'), ('{"type": "talk", "session_id": "s"}', 'unauthorized'),
    ('{"type": "talk", "token": 5, "session_id": "s"}', 'unauthorized'),
    ('{"type": "talk", "token": "t"}', 'invalid'), ('{"type": "talk", "token": "t", "session_id": ""}', 'invalid'),
])
def test_a_bad_hello_is_refused_with_its_reason(text, code):
    with pytest.raises(TalkError) as refused:
        parse_hello(text)
    assert refused.value.code == code and refused.value.reply()['message']


def test_a_hello_names_token_and_session():
    hello = parse_hello('{"type": "talk", "token": "t", "session_id": "abc"}')
    assert (hello.token, hello.session_id) == ('t', 'abc')
    assert is_stop('{"type": "stop"}')
    with pytest.raises(TalkError):
        is_stop('{"type": "drive"}')


@pytest.mark.parametrize('size, code', [(0, 'invalid'), (3, 'invalid'), (FMT.max_frame_bytes + 2, 'too_large')])
def test_frames_of_a_wrong_size_are_refused(size, code):
    gate = FrameGate(FMT)
    with pytest.raises(TalkError) as refused:
        gate.check(bytes(size), 0.0)
    assert refused.value.code == code and gate.refused == 1
    gate.check(bytes(FMT.max_frame_bytes), 0.0)  # the largest frame passes
    assert gate.accepted == 1


def test_audio_faster_than_real_time_is_refused_beyond_the_burst():
    gate = FrameGate(FMT)
    taken = 0
    for _ in range(200):  # 4 s of audio at one instant
        try:
            gate.check(FRAME, 10.0)
            taken += 1
        except TalkError as exc:
            assert exc.code == 'rate_limited'
    assert taken == round(BURST_S / 0.02)
    for i in range(1, 500):  # then real time: every frame passes
        gate.check(FRAME, 10.0 + i * 0.02)
    gate.check(FRAME, 100.0)  # a long pause earns no credit beyond the burst
    assert sum(1 for i in range(100) if _passes(gate, 100.0)) == round(BURST_S / 0.02) - 1


def _passes(gate: FrameGate, now: float) -> bool:
    try:
        gate.check(FRAME, now)
        return True
    except TalkError:
        return False


# -- the endpoint ---------------------------------------------------------------------------

class Played:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.arrived = asyncio.Event()

    def __call__(self, pcm: bytes) -> None:
        self.frames.append(pcm)
        self.arrived.set()


@asynccontextmanager
async def robot() -> AsyncIterator[tuple[str, TalkEndpoint, Played]]:
    """The robot's /ws and /talk/ws; one local token, as on the robot."""
    core = RelayCore(MemoryBroker(), Accounts(users={'local': (TOKEN, ['robot1'])}), instance='robot',
                     limits=Limits(heartbeat_s=0.5, lease_period_s=0.05))
    played = Played()
    talk = TalkEndpoint(core, 'robot1', TOKEN, played)

    async def deliver(message: Any) -> None:
        pass

    async def start(app: web.Application) -> None:
        await core.start()
        await core.attach_local_robot('robot1', deliver)

    async def stop(app: web.Application) -> None:
        await core.close()
    app = web.Application()
    app.router.add_get('/ws', core.handle)
    app.router.add_get('/talk/ws', talk.handle)
    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    server = TestServer(app, host='127.0.0.1')
    await server.start_server()
    try:
        yield str(server.make_url('')).rstrip('/'), talk, played
    finally:
        await server.close()


async def talk_ws(http: aiohttp.ClientSession, base: str, session_id: str, token: str = TOKEN,
                  ) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await http.ws_connect(base.replace('http', 'ws') + '/talk/ws')
    await ws.send_str(json.dumps({'type': 'talk', 'token': token, 'session_id': session_id}))
    return ws, json.loads((await ws.receive(timeout=5)).data)


async def replies(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> list[Any]:
    """Text replies until the robot closes the talk."""
    out: list[Any] = []
    async for frame in ws:
        if frame.type == aiohttp.WSMsgType.TEXT:
            out.append(json.loads(frame.data))
    return out


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_the_driver_talks_and_its_frames_are_played():
    async def scenario() -> None:
        async with robot() as (base, talk, played), aiohttp.ClientSession() as http:
            user = await Client.connect(base, 'user', TOKEN, 'robot1')
            ws, ready = await talk_ws(http, base, user.welcome['session_id'])
            assert ready == FMT.ready() and ready['sample_rate'] == 48000 and ready['channels'] == 1
            assert (await user.until('control', lambda m: m['you']))['you'], 'talking took control'
            tone = bytes(range(256)) * 7 + bytes(128)  # 1920 bytes: 20 ms
            for _ in range(5):
                await ws.send_bytes(tone)
            while len(played.frames) < 5:
                played.arrived.clear()
                await asyncio.wait_for(played.arrived.wait(), 5)
            assert played.frames == [tone] * 5 and talk.talking == 1
            await ws.send_str('{"type": "stop"}')
            assert await replies(ws) == [] and ws.close_code == 1000
            assert talk.talking == 0
            await ws.close()
            await user.close()
    run(scenario())


def test_only_the_driver_may_talk_and_losing_control_ends_the_talk():
    async def scenario() -> None:
        async with robot() as (base, talk, played), aiohttp.ClientSession() as http:
            alice = await Client.connect(base, 'user', TOKEN, 'robot1')
            bob = await Client.connect(base, 'user', TOKEN, 'robot1')
            await alice.send({'type': 'take_control'})
            await alice.until('control', lambda m: m['you'])
            ws, refusal = await talk_ws(http, base, bob.welcome['session_id'])
            assert refusal['code'] == 'not_driver' and 'driver' in refusal['message']
            await ws.close()
            for session_id, token, code in [('no-such-session', TOKEN, 'not_driver'),
                                            (alice.welcome['session_id'], 'wrong', 'unauthorized')]:
                ws, refusal = await talk_ws(http, base, session_id, token)
                assert refusal['code'] == code, refusal
                await ws.close()

            ws, ready = await talk_ws(http, base, alice.welcome['session_id'])
            assert ready['type'] == 'talk_ready'
            await ws.send_bytes(FRAME)
            await asyncio.wait_for(played.arrived.wait(), 5)
            await bob.send({'type': 'take_control', 'force': True})
            await bob.until('control', lambda m: m['you'])
            await ws.send_bytes(FRAME)
            assert [r['code'] for r in await replies(ws)] == ['not_driver']
            assert ws.close_code == 1008 and len(played.frames) == 1
            await ws.close()
            for c in (alice, bob):
                await c.close()
    run(scenario())


def test_one_talk_at_a_time_the_newer_replaces_the_older():
    async def scenario() -> None:
        async with robot() as (base, talk, played), aiohttp.ClientSession() as http:
            user = await Client.connect(base, 'user', TOKEN, 'robot1')
            older, _ = await talk_ws(http, base, user.welcome['session_id'])
            newer, ready = await talk_ws(http, base, user.welcome['session_id'])
            assert ready['type'] == 'talk_ready'
            assert [r['code'] for r in await replies(older)] == ['forbidden'] and older.close_code == 1008
            await newer.send_bytes(FRAME)
            await asyncio.wait_for(played.arrived.wait(), 5)
            assert talk.talking == 1
            await newer.close()
            await user.close()
    run(scenario())


def test_the_talk_ends_when_its_ws_session_closes():
    async def scenario() -> None:
        async with robot() as (base, talk, played), aiohttp.ClientSession() as http:
            user = await Client.connect(base, 'user', TOKEN, 'robot1')
            ws, ready = await talk_ws(http, base, user.welcome['session_id'])
            assert ready['type'] == 'talk_ready'
            await user.close()
            while user.welcome['session_id'] in talk.core.users.get('robot1', {}):  # the relay notices
                await asyncio.sleep(0.01)
            await ws.send_bytes(FRAME)
            assert [r['code'] for r in await replies(ws)] == ['not_driver']
            assert not played.frames
    run(scenario())


def test_garbage_gets_clear_errors_a_flood_is_cut_and_the_robot_goes_on():
    async def scenario() -> None:
        async with robot() as (base, talk, played), aiohttp.ClientSession() as http:
            user = await Client.connect(base, 'user', TOKEN, 'robot1')
            ws, _ = await talk_ws(http, base, user.welcome['session_id'])
            await ws.send_bytes(b'\x01\x02\x03')         # half a sample
            await ws.send_str('not json')
            await ws.send_bytes(bytes(FMT.max_frame_bytes + 2))
            errors = [json.loads((await ws.receive(timeout=5)).data) for _ in range(1)]
            assert errors[0]['code'] == 'invalid' and '3 bytes' in errors[0]['message']
            for _ in range(200):                          # 4 s of audio at once
                await ws.send_bytes(FRAME)
            closing = await replies(ws)
            assert closing[-1]['code'] == 'rate_limited' and f'{MAX_REFUSALS} frames refused' in closing[-1]['message']
            assert ws.close_code == 1008
            assert len(played.frames) <= round(BURST_S / 0.02) + 2, 'a flood is never queued up'
            assert talk.refused == MAX_REFUSALS
            # the robot goes on: the same user talks again at once
            ws2, ready = await talk_ws(http, base, user.welcome['session_id'])
            assert ready['type'] == 'talk_ready'
            await ws2.close()
            await user.close()
    run(scenario())


def test_random_garbage_never_breaks_the_endpoint(caplog):
    rng = random.Random(13)

    async def scenario() -> None:
        async with robot() as (base, talk, played), aiohttp.ClientSession() as http:
            user = await Client.connect(base, 'user', TOKEN, 'robot1')
            for attempt in range(20):
                ws, ready = await talk_ws(http, base, user.welcome['session_id'])
                assert ready['type'] == 'talk_ready', (attempt, ready)
                for _ in range(rng.randint(1, 80)):
                    kind = rng.random()
                    if kind < 0.4:
                        await ws.send_bytes(rng.randbytes(rng.choice([1, 3, 959, 1920, 5000, 9600, 9602])))
                    elif kind < 0.8:
                        await ws.send_str(rng.choice(['', '{', 'null', '{"type": "talk"}', '[]', '"x"',
                                                      '{"type": "stop", "x": ' + '9' * 400 + '}']))
                    elif kind < 0.95:
                        await ws.send_bytes(bytes(1920))
                    else:
                        await ws.send_bytes(bytes(FMT.max_frame_bytes * 2 + 2))  # over the WebSocket limit
                        break
                await ws.close()
            ws, ready = await talk_ws(http, base, user.welcome['session_id'])  # and it still serves
            assert ready['type'] == 'talk_ready' and talk.talking <= 1
            await ws.close()
            await user.close()
    with caplog.at_level(logging.ERROR):
        run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], 'no handler raised'


def test_a_silent_or_binary_hello_is_refused():
    async def scenario() -> None:
        async with robot() as (base, _, played), aiohttp.ClientSession() as http:
            ws = await http.ws_connect(base.replace('http', 'ws') + '/talk/ws')
            await ws.send_bytes(FRAME)
            assert [r['code'] for r in await replies(ws)] == ['hello_required']
            assert not played.frames
    run(scenario())
