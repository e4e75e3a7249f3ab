"""Encoding on demand, with real processes: MediaMTX authenticating through the relay
server, which asks MediaMTX's API who reads; the robot's relay node and streaming node in
server mode with the camera's test pattern.

Nobody reads: no encoder runs (server mode stays active). A WHEP reader, then an RTSP one,
arriving starts it and gets decoded video; after the reader leaves the encoder stops once
``idle_linger`` has passed. A recording keeps it running without readers, and a reader
after it still gets video.
"""
from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from havatar_bringup.processes import find_program, wait_until
from havatar_testing.ondemand import USER, OnDemandStack, start_on_demand_stack
from havatar_testing.webrtc import whep_receive

LINGER = 3.0


@pytest.fixture
def stack(processes, tmp_path) -> OnDemandStack:
    return start_on_demand_stack(processes, tmp_path, idle_linger=LINGER)


def idle(stack: OnDemandStack, timeout: float = 20.0) -> None:
    wait_until(lambda: not stack.encoders() and not stack.path().get('ready'), timeout,
               'no encoder and no stream while nobody reads')


def raw_inputs(ros_node) -> tuple[int, int]:
    """Subscribers of the camera's raw images and of the microphone (only the streaming node's)."""
    return ros_node.node.count_subscribers('/camera/image_raw'), ros_node.node.count_subscribers('/audio/mic')


async def first_video_frame(url: str) -> tuple[float, object]:
    """Seconds from the WHEP offer to the first decoded video frame, and the open connection."""
    start = time.monotonic()
    pc, tracks = await whep_receive(url, token=USER)
    track = await asyncio.wait_for(tracks.get(), 10)
    while track.kind != 'video':
        track = await asyncio.wait_for(tracks.get(), 10)
    frame = await asyncio.wait_for(track.recv(), 10)
    assert frame.to_ndarray(format='rgb24').std() > 1  # a picture, not an empty frame
    return time.monotonic() - start, pc


def test_encoder_runs_only_while_someone_reads(stack, ros_node):
    idle(stack)
    stack.streaming.wait_for_output('encoder stopped', timeout=5)
    # nothing to encode: the camera's raw images and the microphone are not even subscribed
    wait_until(lambda: raw_inputs(ros_node) == (0, 0), 10, 'no raw image or microphone subscription')

    async def watch() -> float:
        seconds, pc = await first_video_frame(stack.whep_url())
        try:
            assert stack.encoders(), 'video arrived from an encoder'
            assert raw_inputs(ros_node) == (1, 1)
            await asyncio.sleep(LINGER + 2)  # a reader keeps it, linger or not
            assert stack.encoders() and stack.path().get('readers')
        finally:
            await pc.close()
        return seconds
    seconds = asyncio.run(watch())
    assert seconds < 10  # a generous bound; the benchmark measures it
    left = time.monotonic()
    time.sleep(1.0)
    assert stack.encoders(), 'the encoder lingers after the last reader left'
    idle(stack)
    assert time.monotonic() - left >= LINGER - 0.5

    # an RTSP reader (ffmpeg) gets a decoded frame too
    decoded = subprocess.run([find_program('ffmpeg'), '-hide_banner', '-loglevel', 'error',
                              '-rtsp_transport', 'tcp', '-i', stack.rtsp_url(), '-frames:v', '1',
                              '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
                             capture_output=True, timeout=30)
    assert decoded.returncode == 0, decoded.stderr.decode(errors='replace')
    assert len(decoded.stdout) == 320 * 240 * 3
    idle(stack)


def test_a_recording_keeps_the_encoder(stack):
    idle(stack)
    stack.set_recording(True)
    wait_until(lambda: stack.encoders() and stack.path().get('ready'), 15, 'the recording started the encoder')
    time.sleep(LINGER + 3)  # no reader at all
    assert stack.encoders() and stack.path().get('ready')
    stack.set_recording(False)
    idle(stack)

    async def watch() -> None:  # the recording's own path configuration is on demand too
        _, pc = await first_video_frame(stack.whep_url())
        await pc.close()
    asyncio.run(watch())
