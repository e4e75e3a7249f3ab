"""The encoder's demand: idle only while fresh reports say nobody reads (pure code)."""
from __future__ import annotations

from havatar_streaming.demand import Demand


def test_no_report_means_encode():
    d = Demand(linger=2.0, lease=3.0)
    assert d.wanted(0.0) and d.wanted(100.0)


def test_idle_after_linger_once_nobody_reads():
    d = Demand(linger=2.0, lease=3.0)
    d.report(0, 10.0)
    assert d.wanted(11.9)  # lingers from the first report (before it, nothing was known)
    d.report(0, 11.0)
    d.report(0, 12.0)
    assert not d.wanted(12.1)


def test_reader_wakes_at_once_and_lingers_after_leaving():
    d = Demand(linger=2.0, lease=3.0)
    d.report(0, 0.0)
    d.report(0, 2.5)
    assert not d.wanted(2.5)
    d.report(1, 3.0)
    assert d.wanted(3.0)
    d.report(0, 4.0)  # the reader left at 4.0 (last seen at 3.0..4.0)
    assert d.wanted(5.9)
    d.report(0, 6.0)
    assert not d.wanted(6.1)


def test_silence_and_unknown_fail_towards_encoding():
    d = Demand(linger=2.0, lease=3.0)
    d.report(0, 0.0)
    d.report(0, 2.5)
    assert not d.wanted(3.0)
    assert d.wanted(5.6)  # no report for longer than the lease: the link may be gone
    d.report(0, 6.0)  # back: lingers again before idling
    assert d.wanted(7.9)
    d.report(0, 8.0)
    assert not d.wanted(8.1)
    d.forget(8.5)
    assert d.wanted(8.5)
    d.report(-1, 9.0)
    assert d.wanted(9.0)


def test_disabled_always_wants():
    d = Demand(linger=0.1, lease=3.0, enabled=False)
    d.report(0, 0.0)
    d.report(0, 1.0)
    assert d.wanted(1.0)
