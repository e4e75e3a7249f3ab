"""twist_mux's rules in the pure arbiter: priorities, timeouts, locks, the zero on hand-over."""
from __future__ import annotations

import pytest

from havatar_drivers.twist_arbiter import ZERO, Input, TwistArbiter, parse_inputs

TELEOP = Input('teleop', 'cmd_vel/teleop', 0.5, 100)
WEB = Input('web', 'cmd_vel/web', 0.5, 50)
NAV = Input('autonomy', 'cmd_vel/nav', 0.5, 10)
ESTOP = Input('e_stop', 'e_stop', 0.0, 255)
FWD, BACK, TURN = (0.3, 0.0), (-0.2, 0.0), (0.0, 1.0)


def arbiter(locks=(ESTOP,)) -> TwistArbiter:
    return TwistArbiter([TELEOP, WEB, NAV], list(locks))


def test_the_higher_priority_source_wins_while_it_talks():
    a = arbiter()
    assert a.twist('web', FWD, 0.0) == FWD
    assert a.twist('teleop', BACK, 0.1) == BACK
    assert a.twist('web', FWD, 0.15) is None, 'teleop speaks: the web is ignored'
    assert a.twist('autonomy', TURN, 0.2) is None
    assert a.twist('teleop', BACK, 0.3) == BACK
    assert a.active == 'teleop'


def test_the_web_resumes_after_the_teleop_timeout_with_one_zero_between():
    a = arbiter()
    a.twist('teleop', BACK, 0.0)
    assert a.update(0.4) is None
    assert a.twist('web', FWD, 0.45) is None
    assert a.update(0.51) == ZERO, 'teleop expired: stop at once'
    assert a.update(0.55) is None, 'the zero goes out once'
    assert a.twist('web', FWD, 0.6) == FWD
    assert a.active == 'web'


def test_a_source_that_stops_talking_is_never_repeated():
    a = arbiter()
    a.twist('web', FWD, 0.0)
    outputs = [a.update(t / 100) for t in range(1, 200)]
    assert [o for o in outputs if o is not None] == [ZERO]
    assert a.winner(2.0) is None and a.active is None


def test_a_lock_stops_everything_at_once_and_releasing_it_lets_commands_through():
    a = arbiter()
    a.twist('teleop', FWD, 0.0)
    assert a.lock('e_stop', True, 0.1) == ZERO
    for name in ('teleop', 'web', 'autonomy'):
        assert a.twist(name, FWD, 0.2) is None, name
    assert a.update(0.3) is None
    assert a.lock('e_stop', False, 0.4) is None
    assert a.twist('web', TURN, 0.45) is None, 'teleop spoke (while locked) 0.25 s ago: it still wins'
    assert a.twist('teleop', TURN, 0.5) == TURN


def test_a_lock_masks_only_lower_priorities():
    a = arbiter(locks=(Input('pause_nav', 'pause_navigation', 0.0, 50),))
    a.lock('pause_nav', True, 0.0)
    assert a.twist('autonomy', FWD, 0.1) is None
    assert a.twist('web', TURN, 0.2) == TURN, 'equal priority is not masked (as twist_mux)'
    assert a.engaged_locks(0.2) == ['pause_nav']


def test_a_heartbeat_lock_engages_until_its_publisher_speaks_and_when_it_falls_silent():
    a = arbiter(locks=(Input('alive', 'base_alive', 0.3, 255),))
    assert a.twist('web', FWD, 0.0) is None, 'never heard: locked'
    a.lock('alive', False, 0.1)
    assert a.twist('web', FWD, 0.2) == FWD
    assert a.update(0.39) is None
    assert a.update(0.41) == ZERO, 'the lock publisher fell silent'


@pytest.mark.parametrize('flat,error', [
    ({'topics.web.topic': 'cmd_vel/web', 'topics.web.timeout': 0.5}, 'topics.web.priority is missing'),
    ({'topics.web.topic': 'x', 'topics.web.timeout': 0.0, 'topics.web.priority': 1}, 'timeout=0.0'),
    ({'topics.web.topic': 'x', 'topics.web.timeout': 0.5, 'topics.web.priority': 256}, 'out of range'),
    ({'topics.web.topic': '', 'topics.web.timeout': 0.5, 'topics.web.priority': 1}, 'topic name'),
    ({'topics.web.topic': 'x', 'topics.web.timeout': 0.5, 'topics.web.priority': 1, 'topics.web.rate': 3},
     'unknown parameter topics.web.rate'),
])
def test_bad_parameters_are_refused_with_their_name(flat, error):
    with pytest.raises(ValueError, match=error):
        parse_inputs('topics', flat)


def test_parameters_in_twist_mux_shape_become_inputs():
    flat = {'topics.web.topic': 'cmd_vel/web', 'topics.web.timeout': 0.5, 'topics.web.priority': 50,
            'locks.e_stop.topic': 'e_stop', 'locks.e_stop.timeout': 0.0, 'locks.e_stop.priority': 255,
            'use_stamped': False}
    assert parse_inputs('topics', flat) == [Input('web', 'cmd_vel/web', 0.5, 50)]
    assert parse_inputs('locks', flat) == [ESTOP]
    with pytest.raises(ValueError, match='no velocity sources'):
        TwistArbiter([], [])
