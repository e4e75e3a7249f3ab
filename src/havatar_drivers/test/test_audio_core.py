"""Jitter buffer and PCM helpers (pure code)."""
from __future__ import annotations

import numpy as np
import pytest

from havatar_drivers.audio.jitter_buffer import JitterBuffer
from havatar_drivers.audio.pcm import convert, mix, rms, tone

SILENCE = b'\0\0'


def test_playback_starts_at_target_depth_in_sequence_order():
    jb = JitterBuffer(target=3)
    jb.push(1, b'b')
    jb.push(0, b'a')
    assert jb.pop(SILENCE) is None  # still buffering
    jb.push(2, b'c')
    assert [jb.pop(SILENCE) for _ in range(3)] == [b'a', b'b', b'c']


def test_lost_chunk_is_concealed_and_late_chunk_dropped():
    jb = JitterBuffer(target=2)
    jb.push(0, b'a')
    jb.push(2, b'c')
    assert jb.pop(SILENCE) == b'a'
    assert jb.pop(SILENCE) == SILENCE and jb.concealed == 1
    jb.push(1, b'b')  # arrived after its turn
    assert jb.late_drops == 1
    assert jb.pop(SILENCE) == b'c'


def test_underrun_pauses_until_refilled():
    jb = JitterBuffer(target=2)
    jb.push(0, b'a')
    jb.push(1, b'b')
    assert jb.pop(SILENCE) == b'a' and jb.pop(SILENCE) == b'b'
    assert jb.pop(SILENCE) is None and jb.underruns == 1
    jb.push(2, b'c')
    assert jb.pop(SILENCE) is None  # rebuffering
    jb.push(3, b'd')
    assert jb.pop(SILENCE) == b'c'


def test_depth_is_bounded():
    jb = JitterBuffer(target=1, limit=5)
    for i in range(20):
        jb.push(i, b'x')
    assert jb.depth == 5 and jb.overflow_drops == 15


def test_a_burst_of_arrivals_does_not_keep_its_delay():
    jb = JitterBuffer(target=3, limit=25, catch_up_after=10)
    sequence = 0
    for _ in range(12):  # a sender that stalled and caught up: 12 chunks at once
        jb.push(sequence, b'x')
        sequence += 1
    depths = []
    for _ in range(200):  # then one chunk per chunk played
        jb.push(sequence, b'x')
        sequence += 1
        assert jb.pop(SILENCE) == b'x'
        depths.append(jb.depth)
    assert depths[0] == 12 and depths[-1] == 2 * jb.target, depths
    assert jb.catch_up_drops == 12 - 2 * jb.target and jb.underruns == 0 and jb.concealed == 0


def test_a_steady_depth_within_twice_the_target_is_left_alone():
    jb = JitterBuffer(target=3, catch_up_after=10)
    for i in range(6):
        jb.push(i, b'x')
    for i in range(6, 500):
        jb.push(i, b'x')
        jb.pop(SILENCE)
    assert jb.catch_up_drops == 0 and jb.depth == 6


def test_after_an_underrun_another_senders_count_is_taken():
    jb = JitterBuffer(target=1)
    for i in range(500, 503):  # local mode's talk (the relay node counts)
        jb.push(i, b'local')
        assert jb.pop(SILENCE) == b'local'
    assert jb.pop(SILENCE) is None  # it ended
    jb.push(0, b'server')  # server mode's talkback (the streaming node counts from 0)
    assert jb.pop(SILENCE) == b'server' and jb.late_drops == 0


def test_sender_restart_resets_the_sequence():
    jb = JitterBuffer(target=1)
    jb.push(5000, b'a')
    assert jb.pop(SILENCE) == b'a'
    jb.push(0, b'new')
    assert jb.pop(SILENCE) == b'new'


@pytest.mark.parametrize('rate,channels,to_rate,to_channels', [
    (48000, 1, 48000, 1), (22050, 1, 48000, 1), (48000, 2, 48000, 1), (16000, 1, 48000, 2)])
def test_convert_keeps_duration_and_level(rate, channels, to_rate, to_channels):
    src = tone(440, rate, 0, rate // 10, channels)
    out = convert(src, rate, channels, to_rate, to_channels)
    assert len(out) == pytest.approx(to_rate // 10 * to_channels * 2, abs=4 * to_channels)
    assert rms(out) == pytest.approx(rms(src), rel=0.05)


def test_mix_clips():
    loud = np.full(4, 30000, '<i2').tobytes()
    assert np.frombuffer(mix(loud, loud), '<i2').tolist() == [32767] * 4
