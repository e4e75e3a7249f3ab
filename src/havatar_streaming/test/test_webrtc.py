"""Browsers' paths through MediaMTX: WHEP viewing the robot, WHIP talking back to it."""
from __future__ import annotations

import asyncio
import fractions
import time

import numpy as np
import pytest
from av import AudioFrame
from aiortc.mediastreams import MediaStreamTrack
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data

from havatar_drivers.stamped_pattern import decode
from havatar_msgs.msg import AudioChunk, StreamStatus

from havatar_testing.streaming import USERS, VIEWER
from havatar_testing.webrtc import whep_receive, whip_publish

LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


class ToneTrack(MediaStreamTrack):
    """A 48 kHz 440 Hz tone as a WebRTC audio track (a browser microphone stand-in)."""

    kind = 'audio'

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.02)
        t = (np.arange(self._pts, self._pts + 960) / 48000)
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype('<i2').reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format='s16', layout='mono')
        frame.sample_rate, frame.pts, frame.time_base = 48000, self._pts, fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


@pytest.fixture
def server_mode(sources, streaming_node, mediamtx_factory, ros_node):
    server = mediamtx_factory(users=USERS)
    sources()
    streaming_node(server, mode='server')
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    return server


def test_whep_viewer_receives_the_robots_video(server_mode):
    async def watch() -> list:
        pc, tracks = await whep_receive(server_mode.whep_url('robot1'), VIEWER.user, VIEWER.password)
        try:
            stamps = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                track = await asyncio.wait_for(tracks.get(), 10)
                if track.kind == 'video':
                    break
            while len(stamps) < 5 and time.monotonic() < deadline:
                frame = await asyncio.wait_for(track.recv(), 10)
                stamp = decode(frame.to_ndarray(format='rgb24'))
                if stamp is not None:
                    stamps.append(stamp)
            return stamps
        finally:
            await pc.close()
    stamps = asyncio.run(watch())
    assert len(stamps) == 5
    assert [s.frame_number for s in stamps] == sorted(s.frame_number for s in stamps)
    assert time.time_ns() - stamps[-1].stamp_ns < 5e9  # live, not a stale frame


def test_whep_without_credentials_is_refused(server_mode):
    with pytest.raises(PermissionError, match='401|authentication failed'):
        asyncio.run(whep_receive(server_mode.whep_url('robot1')))


def test_browser_talkback_reaches_the_speaker_topic(server_mode, ros_node):
    speaker = ros_node.subscribe(AudioChunk, 'audio/speaker', qos_profile_sensor_data)

    async def talk() -> None:
        pc = await whip_publish(server_mode.whip_url('robot1/talk'), ToneTrack(),
                                VIEWER.user, VIEWER.password)
        try:
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and len(speaker.messages) < 25:
                await asyncio.sleep(0.2)
        finally:
            await pc.close()
    asyncio.run(talk())
    chunks = speaker.messages
    assert len(chunks) >= 25, 'talkback audio chunks on audio/speaker'
    pcm = np.frombuffer(b''.join(bytes(c.data) for c in chunks[-10:]), '<i2').astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    assert abs(np.fft.rfftfreq(len(pcm), 1 / 48000)[np.argmax(spectrum)] - 440) < 15
