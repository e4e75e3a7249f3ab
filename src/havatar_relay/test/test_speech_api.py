"""The speech endpoints (/api/phrases, /api/recent, /api/predict) on the cloud relay and on the
robot's own server: a token is needed, bad input gets 400, bodies are bounded, each user has
their own board, a say that passes is recorded, all of it survives a restart, and relays
sharing Redis share it (503 while Redis is down).
Real relay server and relay node processes.
"""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

from havatar_msgs.msg import Speech

from havatar_testing import wait_until
from havatar_testing.relay import LOCAL_TOKEN, Client


def call(base: str, path: str, token: Optional[str], body: Any = None, raw: Optional[bytes] = None,
         method: Optional[str] = None) -> tuple[int, Any]:
    """(HTTP status, JSON answer or text) of one request."""
    headers = {'Content-Type': 'application/json'}
    if token is not None:
        headers['Authorization'] = f'Bearer {token}'
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, headers=headers,
                                     method=method or ('PUT' if data is not None else 'GET'))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text


def predict_path(lang: str, text: str) -> str:
    return '/api/predict?' + urllib.parse.urlencode({'lang': lang, 'text': text})


def check_auth_and_bounds(base: str, token: str) -> None:
    for path in ('/api/phrases', '/api/recent', predict_path('en', 'hel')):
        assert call(base, path, None)[0] == 401
        assert call(base, path, 'wrong-token')[0] == 401
        assert call(base, path, token)[0] == 200
    assert call(base, '/api/phrases', 'wrong-token', {'phrases': ['x']})[0] == 401
    for bad in ({'phrases': 'hi'}, {'phrases': [1]}, {'phrases': ['']}, {'phrases': ['x' * 501]},
                {'phrases': ['a'] * 61}, {'nothing': []}, ['a']):
        status, answer = call(base, '/api/phrases', token, bad)
        assert status == 400 and answer['error'], (bad, answer)
    assert call(base, '/api/phrases', token, raw=b'{not json')[0] == 400
    assert call(base, '/api/phrases', token, raw=json.dumps({'phrases': ['a' * 400] * 200}).encode())[0] == 413
    assert call(base, '/api/phrases?lang=xx', token)[0] == 400
    assert call(base, predict_path('fr', 'bon'), token)[0] == 400
    assert call(base, predict_path('en', 'x' * 501), token)[0] == 400


def check_board(base: str, token: str) -> None:
    status, answer = call(base, '/api/phrases?lang=ro', token)
    assert status == 200 and answer['default'] and 'Am nevoie de ajutor' in answer['phrases']
    assert 'I need help' in call(base, '/api/phrases?lang=en', token)[1]['phrases']
    status, answer = call(base, '/api/phrases', token, {'phrases': ['Bună dimineaţa', 'Vreau apă']})
    assert status == 200 and answer == {'phrases': ['Bună dimineața', 'Vreau apă'], 'default': False}
    assert call(base, '/api/phrases?lang=de', token)[1]['phrases'] == ['Bună dimineața', 'Vreau apă']
    answer = call(base, predict_path('ro', 'mulţu'), token)[1]
    assert answer['lang'] == 'ro' and answer['prefix'] == 'mulțu'
    assert any(w.startswith('mulțum') for w in answer['completions'])


async def say(base: str, token: str, robot_id: str, text: str, refused: str = '') -> None:
    """Say ``text`` as the user of ``token``; with ``refused``, expect that error instead."""
    user = await Client.connect(base, 'user', token, robot_id)
    try:
        assert user.welcome, getattr(user, 'refusal', None)
        await user.send({'type': 'say', 'text': text, 'id': 'said'})
        if refused:
            assert (await user.next('error', timeout=10))['code'] == refused
    finally:
        await user.close()


def recent_is(base: str, token: str, expected: list[str]) -> None:
    wait_until(lambda: call(base, '/api/recent', token)[1] == {'recent': expected}, 10,
               f'recent phrases {expected}')


def test_cloud_relay_keeps_each_users_speech_across_a_restart(relay_server, redis_url, processes, tmp_path):
    data = tmp_path / 'relay-data'
    base = relay_server(env={'HAVATAR_RELAY_DATA_DIR': str(data)})
    check_auth_and_bounds(base, 'alice-token')
    check_board(base, 'alice-token')
    assert call(base, '/api/phrases?lang=en', 'bob-token')[1]['default']  # bob has his own

    async def robot_hears_say() -> dict[str, Any]:
        robot = await Client.connect(base, 'robot', 'robot1-token', 'robot1')
        try:
            await say(base, 'alice-token', 'robot1', 'Vreau un pahar cu apă rece')
            return await robot.next('say', timeout=10)
        finally:
            await robot.close()

    assert asyncio.run(robot_hears_say())['text'] == 'Vreau un pahar cu apă rece'
    recent_is(base, 'alice-token', ['Vreau un pahar cu apă rece'])
    # a say the robot never got (offline) is not recorded
    asyncio.run(say(base, 'bob-token', 'robot1', 'nobody hears this', refused='robot_offline'))
    assert call(base, '/api/recent', 'bob-token')[1] == {'recent': []}
    # what alice said ranks first: "pahar" after "un", "rece" for "rec"
    assert call(base, predict_path('ro', 'Vreau un '), 'alice-token')[1]['next'][0] == 'pahar'
    assert call(base, predict_path('ro', 'rec'), 'alice-token')[1]['completions'][0] == 'rece'
    assert call(base, predict_path('ro', 'Vreau un '), 'bob-token')[1]['next'][0] != 'pahar'

    next(p for p in processes.processes if p.name == 'relay').stop()
    again = relay_server(env={'HAVATAR_RELAY_DATA_DIR': str(data)}, name='relay-again')
    assert call(again, '/api/phrases', 'alice-token')[1]['phrases'] == ['Bună dimineața', 'Vreau apă']
    assert call(again, '/api/recent', 'alice-token')[1]['recent'] == ['Vreau un pahar cu apă rece']
    # relays sharing Redis share the boards
    shared = [relay_server(redis_url=redis_url, name=f'relay-{n}') for n in 'ab']
    assert call(shared[0], '/api/phrases', 'carol-token', {'phrases': ['Hi from a']})[0] == 200
    assert call(shared[1], '/api/phrases', 'carol-token')[1]['phrases'] == ['Hi from a']
    # Redis down: 503, as the relay answers an outage elsewhere
    next(p for p in processes.processes if p.name == 'redis-server').stop()
    assert call(shared[0], '/api/phrases', 'carol-token')[0] == 503
    assert call(shared[1], '/api/phrases', 'carol-token', {'phrases': ['x']})[0] == 503


def test_robot_keeps_the_local_users_speech_across_a_restart(relay_robot, ros_node, processes):
    _, base, settings, node = relay_robot()
    check_auth_and_bounds(base, LOCAL_TOKEN)
    check_board(base, LOCAL_TOKEN)
    said = ros_node.subscribe(Speech, 'speech')
    ros_node.wait_for_publishers('speech')
    for attempt in range(3):  # a say published before relay_node matched this new reader is lost
        asyncio.run(say(base, LOCAL_TOKEN, 'robot1', 'Aş vrea să ies afară'))
        try:
            said.wait_for(lambda m: m.text.endswith('vrea să ies afară'), timeout=5,
                          what='the say on the speech topic')
            break
        except TimeoutError:
            if attempt == 2:
                raise
    recent_is(base, LOCAL_TOKEN, ['Aș vrea să ies afară'])
    speech = settings.parent / 'speech.json'
    assert speech.stat().st_mode & 0o077 == 0
    node.stop()
    again = processes.start('relay_node-again', node.argv, env={'HAVATAR_ACCESS_TOKEN': LOCAL_TOKEN})
    again.wait_for_output('web UI on', timeout=20)
    assert call(base, '/api/phrases', LOCAL_TOKEN)[1]['phrases'] == ['Bună dimineața', 'Vreau apă']
    assert call(base, '/api/recent', LOCAL_TOKEN)[1]['recent'] == ['Aș vrea să ies afară']
    assert call(base, predict_path('ro', 'af'), LOCAL_TOKEN)[1]['completions'][0] == 'afară'
