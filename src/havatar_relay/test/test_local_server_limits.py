"""The robot's own web server under attack: token guessing (HTTP API and /ws hello) is
slowed per client, slowloris connections are closed and slow bodies cut off, while the rightful user still gets
in promptly (127.0.0.1 only; "another client" is 127.0.0.2).
"""
from __future__ import annotations

import asyncio

from havatar_common.conn_limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS_PER_CLIENT
from havatar_testing.attacks import (PROMPT_S, SlowBody, Slowloris, get_status, guesses_next_to_the_user,
                                     session_from, timed, ws_hello)
from havatar_testing.relay import LOCAL_TOKEN, system_status


def test_token_guessing_is_slowed_while_the_right_token_gets_in(relay_robot):
    _, base, _, _ = relay_robot()
    before, after = asyncio.run(guesses_next_to_the_user(f'{base}/system_status', LOCAL_TOKEN))
    print(f'guesses/s from one address: {before:.0f} before, {after:.2f} after the free ones')
    assert before > 10 and after < 3, (before, after)

    async def over_websocket() -> None:  # the hello shares the back-off; the right one is prompt
        async with session_from('127.0.0.1') as attacker, session_from('127.0.0.1') as user:
            guess = asyncio.ensure_future(timed(ws_hello(attacker, base, 'guess-ws')))
            await asyncio.sleep(0.1)
            reply, took = await timed(ws_hello(user, base, LOCAL_TOKEN))
            assert reply == 'welcome' and took < PROMPT_S, took
            reply, took = await guess
            assert reply == 'unauthorized' and took > 0.5, took
    asyncio.run(over_websocket())
    assert system_status(base)['auth_throttled'] >= 4


def test_slowloris_is_closed_while_a_user_connects(relay_robot):
    _, base, _, _ = relay_robot()
    port = int(base.rsplit(':', 1)[1])

    async def scenario() -> None:
        async with Slowloris('127.0.0.1', port, 200) as attack:
            await attack.wait_closed(200 - MAX_CONNECTIONS_PER_CLIENT, HEADER_TIMEOUT_S / 2)  # by the cap
            async with session_from('127.0.0.2') as user:
                code, took = await timed(get_status(user, f'{base}/system_status', LOCAL_TOKEN))
                assert code == 200 and took < PROMPT_S, took
                reply, took = await timed(ws_hello(user, base, LOCAL_TOKEN))
                assert reply == 'welcome' and took < PROMPT_S, took
            lasted = await attack.wait_all_closed(timeout=HEADER_TIMEOUT_S + 10)
            assert HEADER_TIMEOUT_S - 1 < lasted < HEADER_TIMEOUT_S + 5, lasted
    asyncio.run(scenario())
    assert system_status(base)['connections_refused'] >= 200 - MAX_CONNECTIONS_PER_CLIENT


def test_a_slow_body_is_cut_off_while_a_user_gets_through(relay_robot):
    """A client with the token that dribbles a config body no longer holds a handler."""
    _, base, _, _ = relay_robot()
    port = int(base.rsplit(':', 1)[1])
    auth = {'Authorization': f'Bearer {LOCAL_TOKEN}'}

    async def scenario() -> None:
        async with SlowBody('127.0.0.1', port, 20, 'POST', '/server/config', auth) as attack:
            await asyncio.sleep(1.0)
            async with session_from('127.0.0.2') as user:
                async def post_config() -> int:  # a whole body, but not an object: 400
                    async with user.post(f'{base}/server/config', json=[], headers=auth) as response:
                        return response.status
                code, took = await timed(post_config())
                assert code == 400 and took < PROMPT_S, (code, took)
                code, took = await timed(get_status(user, f'{base}/system_status', LOCAL_TOKEN))
                assert code == 200 and took < PROMPT_S, took
            lasted = await attack.wait_all_closed(timeout=BODY_TIMEOUT_S + 10)
            assert attack.statuses == [408] * 20
            assert BODY_TIMEOUT_S - 1 < lasted < BODY_TIMEOUT_S + 5, lasted
    asyncio.run(scenario())
