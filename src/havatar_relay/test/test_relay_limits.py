"""The cloud relay under attack: token guessing is slowed per client, slowloris
connections are closed and slow bodies cut off, while the rightful user still gets in
promptly (127.0.0.1 only; "another client" is 127.0.0.2).
"""
from __future__ import annotations

import asyncio
import time
import urllib.request

import aiohttp

from havatar_common.conn_limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS_PER_CLIENT
from havatar_testing.attacks import PROMPT_S, SlowBody, Slowloris, session_from, timed, ws_hello
from havatar_testing.attacks import get_status as _get_status


async def status(session: aiohttp.ClientSession, base: str, token: str) -> int:
    return await _get_status(session, f'{base}/api/status', token)


async def hello(session: aiohttp.ClientSession, base: str, token: str) -> str:
    return await ws_hello(session, base, token)


def metric(base: str, name: str, labels: str = '') -> float:
    """The sum of the Prometheus samples ``name{labels...}``."""
    text = urllib.request.urlopen(f'{base}/metrics', timeout=5).read().decode()
    return sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()
               if line.startswith(f'{name}{{{labels}'))


def test_token_guessing_is_slowed_while_the_right_token_gets_in(relay_server):
    base = relay_server()

    async def scenario() -> None:
        async with session_from('127.0.0.1') as attacker, session_from('127.0.0.1') as same_nat, \
                session_from('127.0.0.2') as other:
            # the free typos (5) are answered at once: the guess rate before
            codes, took = await timed(asyncio.gather(*(status(attacker, base, f'guess{i}') for i in range(5))))
            assert codes == [401] * 5
            before = 5 / took
            # 4 more guesses queue one behind the other: 0.25, 0.75, 1.75, 3.75 s
            guesses = asyncio.gather(*(status(attacker, base, f'guess-b{i}') for i in range(3)),
                                     hello(attacker, base, 'guess-ws'))
            started = time.monotonic()
            await asyncio.sleep(0.1)
            # meanwhile the right token, from the same address and from another, gets in at once
            (code, took_same) = await timed(status(same_nat, base, 'bob-token'))
            assert code == 200 and took_same < PROMPT_S
            (reply, took_ws) = await timed(hello(same_nat, base, 'bob-token'))
            assert reply == 'welcome' and took_ws < PROMPT_S
            (code, took_other) = await timed(status(other, base, 'wrong-but-first'))
            assert code == 401 and took_other < PROMPT_S  # another address: its first typo is free
            (code, took_other) = await timed(status(other, base, 'alice-token'))
            assert code == 200 and took_other < PROMPT_S
            assert await guesses == [401, 401, 401, 'unauthorized']
            after = 4 / (time.monotonic() - started)
            print(f'guesses/s from one address: {before:.0f} before, {after:.2f} after the free ones')
            assert before > 10 and after < 2, (before, after)
    asyncio.run(scenario())
    assert metric(base, 'havatar_relay_auth_throttled_total', 'endpoint="status"') >= 3
    assert metric(base, 'havatar_relay_auth_throttled_total', 'endpoint="ws"') >= 1


def test_mediamtx_hook_slows_guesses_per_client_ip(relay_server):
    base = relay_server()

    async def ask(session: aiohttp.ClientSession, ip: str, password: str) -> int:
        body = {'action': 'read', 'path': 'robot1', 'protocol': 'rtsp', 'ip': ip, 'user': 'robot1',
                'password': password}
        async with session.post(f'{base}/mediamtx/auth', json=body) as response:
            return response.status

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(6):  # no credentials at all (RTSP's first try) is no guess
                assert await ask(session, '10.9.9.9', '') == 401
            _, took = await timed(asyncio.gather(*(ask(session, '10.9.9.9', f'x{i}') for i in range(7))))
            assert took > 0.2  # the 6th and 7th guesses of 10.9.9.9 waited
            (code, took) = await timed(ask(session, '10.9.9.9', 'robot1-token'))
            assert code == 200 and took < PROMPT_S
            (code, took) = await timed(ask(session, '10.8.8.8', 'nope'))
            assert code == 401 and took < PROMPT_S
    asyncio.run(scenario())
    assert metric(base, 'havatar_relay_auth_throttled_total', 'endpoint="mediamtx"') >= 2


def test_slowloris_is_closed_while_a_user_connects(relay_server):
    base = relay_server()
    port = int(base.rsplit(':', 1)[1])

    async def scenario() -> None:
        async with Slowloris('127.0.0.1', port, 200) as attack:
            await attack.wait_closed(200 - MAX_CONNECTIONS_PER_CLIENT, HEADER_TIMEOUT_S / 2)  # by the cap
            async with session_from('127.0.0.2') as user:
                (code, took) = await timed(status(user, base, 'alice-token'))
                assert code == 200 and took < PROMPT_S
                (reply, took) = await timed(hello(user, base, 'alice-token'))
                assert reply == 'welcome' and took < PROMPT_S
            lasted = await attack.wait_all_closed(timeout=HEADER_TIMEOUT_S + 10)
            print(f'200 slowloris connections: all closed after {lasted:.1f} s')
            assert HEADER_TIMEOUT_S - 1 < lasted < HEADER_TIMEOUT_S + 5
        async with aiohttp.ClientSession() as session:  # and 127.0.0.1 is served again
            assert await status(session, base, 'alice-token') == 200
    asyncio.run(scenario())


def test_a_slow_body_is_cut_off_while_a_user_gets_through(relay_server):
    """The MediaMTX hook reads a JSON body with no authentication before it: a client that
    dribbles that body is answered 408 and closed, while another's whole request is served.
    """
    base = relay_server()
    port = int(base.rsplit(':', 1)[1])
    hook = {'action': 'read', 'path': 'robot1', 'protocol': 'rtsp', 'ip': '10.1.1.1', 'user': 'robot1',
            'password': 'robot1-token'}

    async def scenario() -> None:
        async with SlowBody('127.0.0.1', port, 20, 'POST', '/mediamtx/auth') as attack:
            await asyncio.sleep(1.0)
            async with session_from('127.0.0.2') as user:
                async def ask() -> int:
                    async with user.post(f'{base}/mediamtx/auth', json=hook) as response:
                        return response.status
                (code, took) = await timed(ask())
                assert code == 200 and took < PROMPT_S, (code, took)
                (code, took) = await timed(status(user, base, 'alice-token'))
                assert code == 200 and took < PROMPT_S
            lasted = await attack.wait_all_closed(timeout=BODY_TIMEOUT_S + 10)
            print(f'20 slow bodies: answered {set(attack.statuses)}, all closed after {lasted:.1f} s')
            assert attack.statuses == [408] * 20
            assert BODY_TIMEOUT_S - 1 < lasted < BODY_TIMEOUT_S + 5
    asyncio.run(scenario())


def test_behind_a_trusted_proxy_the_client_is_the_last_forwarded_address():
    from aiohttp.test_utils import make_mocked_request

    from havatar_relay.server.app import forwarded_client, presented_secret
    request = make_mocked_request('GET', '/ws', headers={'X-Forwarded-For': '6.6.6.6, 203.0.113.7'})
    assert forwarded_client(request) == '203.0.113.7'  # what Caddy appended, not what the client sent
    assert presented_secret({'user': 'robot1', 'password': '', 'query': 'token=abc'}) == 'abc'
    assert presented_secret({'user': '', 'password': '', 'query': ''}) == ''
