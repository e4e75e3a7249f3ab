"""The browser's jitter buffer (web/audio-buffer.js) under node: an hour with clock skew,
network jitter and stalls stays bounded and does not drift; its frame format is the relay's.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from havatar_relay.audio_stream import FRAME_HEADER, FRAME_VERSION, decode_frame, encode_frame

NODE = shutil.which('node')
SIM = Path(__file__).parent / 'js' / 'audio_buffer_sim.mjs'
pytestmark = pytest.mark.skipif(NODE is None, reason='node is not installed')


def simulate(**config: object) -> dict:
    done = subprocess.run([NODE, str(SIM), json.dumps(config)], capture_output=True, text=True, timeout=300,
                          check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize('skew', [0.005, -0.005, 0.001])
def test_an_hour_with_clock_skew_stays_bounded_without_drift(skew):
    r = simulate(seconds=3600, skew=skew, jitterMs=15, stallEveryS=300, stallMs=500)
    assert r['maxDepthMs'] <= 200.1, r  # never grows past its ring
    assert abs(r['lastMinuteMs'] - r['firstMinuteMs']) < 5, r  # no drift over the hour
    assert r['targetMs'] - 15 < r['lastMinuteMs'] < r['targetMs'] + 15, r
    assert r['underruns'] <= 13, r  # one per 500 ms stall (12 in the hour), not more


@pytest.mark.parametrize('skew', [0.005, -0.005, 0.001])
def test_clock_skew_is_absorbed_by_skipping_or_repeating_samples(skew):
    r = simulate(seconds=600, skew=skew, jitterMs=15)
    assert r['underruns'] == 0 and r['overflowDropped'] == 0, r  # neither emptied nor overflowed
    assert r['skipped'] - r['repeated'] == pytest.approx(skew * 48000 * 600, rel=0.1, abs=300), r


def test_steady_clocks_play_every_sample_in_order():
    r = simulate(seconds=600, skew=0, jitterMs=0, checkContinuity=True)
    assert r['underruns'] == 0 and r['overflowDropped'] == 0, r
    assert r['continuityErrors'] <= r['skipped'] + r['repeated'] < 500, r  # only the steering touches it


def test_frame_format_is_the_same_on_both_sides():
    pcm = np.array([16384, 0, -32768, -32768], '<i2').tobytes()
    frame = encode_frame(7, 48000, 2, int(1234.5e6), pcm)
    assert decode_frame(frame) == (7, 48000, 2, 1234.5, pcm)
    r = simulate(frameHex=frame.hex())
    assert r['FRAME']['headerBytes'] == FRAME_HEADER.size
    assert r['FRAME']['version'] == FRAME_VERSION
    assert (r['parsed']['sequence'], r['parsed']['rate'], r['parsed']['channels'], r['parsed']['stampMs']) == (
        7, 48000, 2, 1234.5)
    assert r['parsed']['samples'] == [0.25, -1.0]  # stereo averaged to mono, S16 scaled to -1..1


def test_a_jittery_link_raises_the_target_within_bounds():
    calm = simulate(seconds=600, skew=0.001, jitterMs=15)
    jittery = simulate(seconds=600, skew=0.001, jitterMs=60)
    assert calm['targetMs'] == 30 and calm['underruns'] == 0, calm
    assert 30 < jittery['targetMs'] <= 100 and jittery['maxDepthMs'] <= 200.1, jittery
    assert jittery['underruns'] < 60, jittery  # fewer than one per 10 s once the target has grown
