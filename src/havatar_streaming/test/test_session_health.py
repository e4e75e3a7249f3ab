"""The session-health rules (pure: observations and time in, a verdict out)."""
from __future__ import annotations

import pytest

from havatar_streaming.mediamtx_api import PathState
from havatar_streaming.session_health import (ENCODER_GRACE, NO_API_SETTLE, Health, Observation,
                                              SessionHealth)

START, STALL = 6.0, 1.5


def health(with_api: bool = True) -> SessionHealth:
    return SessionHealth(started_at=0.0, with_api=with_api, start_timeout=START,
                         stall_timeout=STALL)


def seen(now: float, ready: bool = True, received: int = 0, progress: float | None = None,
         **kw: object) -> Observation:
    return Observation(now=now, alive=True,
                       encoder_progress_at=now if progress is None else progress,
                       frames_written=10, server=PathState(ready, received, 0), **kw)


def ready_session(with_api: bool = True) -> SessionHealth:
    h = health(with_api)
    o = seen(1.0) if with_api else Observation(NO_API_SETTLE + 0.1, True, '', NO_API_SETTLE, 5)
    assert h.judge(o).health is Health.READY
    return h


@pytest.mark.parametrize('with_api', [True, False])
def test_a_dead_encoder_fails_with_its_exit_reason(with_api):
    verdict = health(with_api).judge(Observation(0.5, alive=False, exit_reason='ffmpeg exited with 1: 401'))
    assert verdict == (Health.FAILED, 'ffmpeg exited with 1: 401')


def test_with_the_api_ready_when_the_server_says_so_and_reported_once():
    h = health()
    assert h.judge(seen(0.5, ready=False)).health is Health.STARTING
    assert h.judge(seen(1.0, received=100)).health is Health.READY
    assert h.judge(seen(1.25, received=200)).health is Health.OK


@pytest.mark.parametrize('observation, reason', [
    (seen(START + 0.1, ready=False), 'did not receive the stream in time'),
    (Observation(1.0, True, server_error='MediaMTX API at x unreachable'), 'unreachable'),
])
def test_with_the_api_a_start_fails(observation, reason):
    verdict = health().judge(observation)
    assert verdict.health is Health.FAILED and reason in verdict.reason


def test_with_the_api_a_running_session_fails_when_the_server_drops_it():
    h = ready_session()
    verdict = h.judge(seen(2.0, ready=False))
    assert verdict == (Health.FAILED, 'the server reports the stream as not ready')


def test_with_the_api_bytes_that_stop_growing_are_a_stall():
    h = ready_session()
    assert h.judge(seen(2.0, received=100)).health is Health.OK
    assert h.judge(seen(2.0 + STALL, received=100)).health is Health.OK  # not more than stall yet
    verdict = h.judge(seen(2.1 + STALL, received=100))
    assert verdict == (Health.FAILED, 'the stream stalled (no data reached the server)')


def test_with_the_api_a_silent_encoder_fails_after_the_grace():
    h = ready_session()
    t = 2.0
    for received in range(1, 5):  # the server still gets bytes, ffmpeg reports nothing
        t += 0.5
        assert h.judge(seen(t, received=received, progress=2.0)).health is Health.OK
    verdict = h.judge(seen(2.0 + STALL + ENCODER_GRACE + 0.1, received=99, progress=2.0))
    assert verdict == (Health.OK, '')  # bytes grew in this very observation
    verdict = h.judge(seen(2.0 + STALL + ENCODER_GRACE + 0.2, received=99, progress=2.0))
    assert verdict == (Health.FAILED, 'the encoder stalled')


def test_without_the_api_ready_after_settling_with_frames():
    h = health(with_api=False)
    assert h.judge(Observation(0.5, True, '', 0.5, 5)).health is Health.STARTING  # too early
    assert h.judge(Observation(NO_API_SETTLE + 0.1, True, '', 0.5, 0)).health is Health.STARTING
    assert h.judge(Observation(NO_API_SETTLE + 0.2, True, '', 1.1, 5)).health is Health.READY
    assert h.judge(Observation(2.0, True, '', 1.9, 6)).health is Health.OK


def test_without_the_api_no_output_in_time_or_a_stall_fails():
    verdict = health(with_api=False).judge(Observation(START + 0.1, True, '', 0.0, 0))
    assert verdict == (Health.FAILED, 'the encoder produced nothing in time')
    h = ready_session(with_api=False)
    verdict = h.judge(Observation(10.0, True, '', 10.0 - STALL, 50))
    assert verdict == (Health.FAILED, 'the encoder stalled')
