"""``say`` with a language and ``stop_speaking`` from a browser-protocol client, through the
robot's own server or the cloud relay, to the real speaker node's WAV sink.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from havatar_drivers.audio.voices import EspeakEngine
from havatar_testing.relay import LOCAL_TOKEN, Client
from havatar_testing.speech import RATE, SinkWatch, same_speech, start_speaker

ROMANIAN = 'Bună ziua, vă văd în țară și știu.'  # one piece: at most 8 words
LONG = ' '.join(f'This is sentence number {n} of a long text.' for n in range(1, 40))[:500]


async def online_user(base: str, token: str) -> Client:
    """A user whose welcome says the robot is online (it may take the robot a moment)."""
    deadline = time.monotonic() + 15
    user = await Client.connect(base, 'user', token, 'robot1')
    while not user.welcome['robot_online'] and time.monotonic() < deadline:
        await user.close()
        await asyncio.sleep(0.3)
        user = await Client.connect(base, 'user', token, 'robot1')
    assert user.welcome['robot_online']
    return user


async def speaker_hears_the_relay(user: Client, sink: SinkWatch) -> None:
    """Say 'ready' until the sink speaks it (the relay node's speech publisher may not have
    discovered the speaker node yet), then wait until it is quiet.
    """
    deadline = time.monotonic() + 20
    while sink.frames() == 0:
        assert time.monotonic() < deadline, 'the speaker node never heard the relay node'
        await user.send({'type': 'say', 'text': 'ready'})
        await asyncio.sleep(0.5)
    sink.mark = await asyncio.to_thread(sink.wait_quiet)


@pytest.mark.parametrize('mode', ['local', 'server'])
def test_say_in_romanian_reaches_the_speaker_and_any_user_stops_speaking(mode, relay_robot, relay_server,
                                                                         processes, tmp_path):
    wav_path = tmp_path / 'speech.wav'
    start_speaker(processes, wav_path)  # its default language is English
    if mode == 'local':
        _, base, _, _ = relay_robot()
        tokens = (LOCAL_TOKEN, LOCAL_TOKEN)
    else:
        base = relay_server()
        relay_robot(relay_url=base.replace('http', 'ws') + '/ws')
        tokens = ('alice-token', 'bob-token')
    sink = SinkWatch(wav_path)

    async def scenario() -> None:
        alice = await online_user(base, tokens[0])
        bob = await online_user(base, tokens[1])
        await speaker_hears_the_relay(alice, sink)
        await alice.send({'type': 'say', 'text': ROMANIAN, 'lang': 'ro', 'id': 'a1'})  # takes control
        segment = await asyncio.to_thread(sink.next_segment)
        assert same_speech(segment, EspeakEngine().synthesize(ROMANIAN, 'ro', RATE, 1)), \
            'the sink holds the text spoken by the Romanian voice'
        await bob.send({'type': 'say', 'text': 'me too', 'id': 'b1'})
        refusal = await bob.next('error')
        assert refusal['code'] == 'not_driver' and refusal['ref'] == 'b1'
        await alice.send({'type': 'say', 'text': LONG, 'lang': 'en'})
        await asyncio.to_thread(sink.wait_for_start)
        await bob.send({'type': 'stop_speaking', 'id': 'b2'})  # no driver needed
        played = await asyncio.to_thread(sink.wait_quiet, 1.0)
        assert (played - sink.mark) / RATE < 3.0, "bob's stop_speaking cut alice's long text"
        await bob.send({'type': 'get_status'})  # answered after any error about b2
        await bob.next('status', timeout=10)
        assert not [m for m in bob.skipped if m.get('ref') == 'b2'], 'stop_speaking refused'
        await alice.close()
        await bob.close()
    asyncio.run(asyncio.wait_for(scenario(), 120))
