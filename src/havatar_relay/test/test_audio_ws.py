"""The robot's microphone reaches local browsers over /audio/ws: the tone arrives as PCM
frames stamped with their capture time, only for a holder of the token, and the relay node
subscribes to audio/mic only while someone listens.
"""
from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
import pytest

from havatar_bringup.graph import parameter_arguments
from havatar_testing import free_port, ros_executable, wait_until
from havatar_testing.relay import LOCAL_TOKEN

from havatar_relay.audio_stream import decode_frame

TONE_HZ = 660.0


@pytest.fixture
def robot_audio(processes):
    """A tone microphone and a relay node; returns the relay's base URL and its process."""
    mic = processes.start('microphone_node', [
        ros_executable('havatar_drivers', 'microphone_node'), '--ros-args',
        *parameter_arguments({'source': 'tone', 'tone_hz': TONE_HZ})])
    port = free_port()
    relay = processes.start('relay_node', [
        ros_executable('havatar_relay', 'relay_node'), '--ros-args',
        *parameter_arguments({'robot_id': 'robot1', 'http_port': port, 'http_host': '127.0.0.1'})],
        env={'HAVATAR_ACCESS_TOKEN': LOCAL_TOKEN})
    mic.wait_for_output('capturing', timeout=20)
    relay.wait_for_output('web UI on', timeout=20)
    return f'http://127.0.0.1:{port}', relay


async def listen(url: str, frames: int) -> list[tuple[float, bytes, float]]:
    """``frames`` messages of /audio/ws as (stamp_ms, pcm, received_ms)."""
    received = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while len(received) < frames:
            message = await asyncio.wait_for(ws.receive_bytes(), 20)
            sequence, rate, channels, stamp_ms, pcm = decode_frame(message)
            assert (rate, channels) == (48000, 1)
            received.append((stamp_ms, pcm, time.time() * 1000))
    return received


def test_a_listener_hears_the_microphone_tone_and_only_while_listening(robot_audio, ros_node):
    base, relay = robot_audio
    url = base.replace('http', 'ws') + f'/audio/ws?token={LOCAL_TOKEN}'
    frames = asyncio.run(listen(url, 50))  # one second
    pcm = np.frombuffer(b''.join(p for _, p, _ in frames[-25:]), '<i2').astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    assert abs(np.fft.rfftfreq(len(pcm), 1 / 48000)[np.argmax(spectrum)] - TONE_HZ) < 5
    stamps = [s for s, _, _ in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), 'frames in capture order'
    delays = sorted(r - s for s, _, r in frames)
    assert 0 < delays[len(delays) // 2] < 1000, delays  # live (a generous bound; the benchmark measures)
    relay.wait_for_output('no browser listens: unsubscribed', timeout=10)
    wait_until(lambda: ros_node.node.count_subscribers('audio/mic') == 0, 10, 'audio/mic unsubscribed')
    assert 'a browser listens: subscribed' in relay.output()


def test_audio_needs_the_access_token(robot_audio):
    base, _ = robot_audio

    async def refused(url: str) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
    ws = base.replace('http', 'ws') + '/audio/ws'
    assert asyncio.run(refused(ws)) == 401
    assert asyncio.run(refused(ws + '?token=wrong')) == 401
