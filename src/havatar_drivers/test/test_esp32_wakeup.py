"""The serial link wakes on the port, on a new command and at its deadlines, never on a tick.

Pure parts first (deadlines from the scheduler and the drive controller), then the
``Waker`` pipe, then a ``SerialLink`` against a bare pseudo-terminal (no ROS, no simulator).
"""
from __future__ import annotations

import os
import threading
import time
import tty

import pytest

from havatar_drivers.drive_controller import DriveController
from havatar_drivers.esp32.link import SerialLink
from havatar_drivers.esp32.protocol import Dialect
from havatar_drivers.esp32.scheduler import CommandScheduler
from havatar_drivers.esp32.wakeup import Waker, earliest, wait_timeout
from havatar_drivers.kinematics import DriveConfig

from havatar_testing import wait_until


# -- pure: when to wake
def test_earliest_and_wait_timeout():
    assert earliest() is None and earliest(None, None) is None
    assert earliest(None, 3.0, 2.0) == 2.0
    assert wait_timeout(None, 5.0) is None           # nothing due: wait for an event
    assert wait_timeout(4.0, 5.0, slack=0.0) == 0.0  # overdue: do not wait
    assert wait_timeout(5.5, 5.0, slack=0.001) == pytest.approx(0.501)


def test_scheduler_due_matches_next_line():
    s = CommandScheduler(Dialect.V2)
    s.reset()
    assert s.due((0, 0), 0.0) == 0.0                 # unknown state: STOP at once
    s.next_line((0, 0), 0.0)
    assert s.due((0, 0), 0.1) is None                # stopped and asked to stop: nothing
    assert s.due((50, 50), 0.1) == pytest.approx(0.32)  # v2 reads nothing for 300 ms after STOP
    assert s.next_line((50, 50), 0.31) is None and s.next_line((50, 50), 0.32) is not None
    assert s.due((50, 50), 0.33) == pytest.approx(0.82)  # keep-alive 0.5 s after the last line
    assert s.due((60, 60), 0.33) == pytest.approx(0.38)  # a change: as soon as v2 reads again
    v1 = CommandScheduler(Dialect.V1)
    v1.firmware_stopped()
    v1.next_line((50, 50), 0.0)
    assert v1.due((50, 50), 1.0) is None             # v1: no keep-alive, nothing due


def test_controller_names_its_deadman_deadline_and_calls_listeners():
    c = DriveController(DriveConfig(max_linear_accel=1.0), cmd_timeout=0.5)
    calls = []
    c.listen(lambda: calls.append(1))
    assert c.deadline() is None and not c.ramping
    c.command(0.5, 0.0, 10.0)
    assert calls == [1] and c.deadline() == 10.5 and c.ramping
    c.update(10.0)
    c.update(11.0)                                   # past the deadline: the deadman stops
    assert c.deadline() is None and not c.ramping


# -- the pipe
def test_waker_ends_a_wait_at_once_and_coalesces():
    waker = Waker()
    try:
        assert waker.wait([], 0.0) == []             # nothing pending
        woke = threading.Event()

        def waiter() -> None:
            waker.wait([], 30.0)
            woke.set()
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.05)
        waker.wake()
        assert woke.wait(5.0), 'wake() did not end the wait'
        thread.join()
        for _ in range(1000):                        # a burst: one byte, one wake-up
            waker.wake()
        assert waker.wakes == 2
        assert waker.wait([], 0.0) == [] and waker.wait([], 0.0) == []
        read_fd, write_fd = os.pipe()
        os.write(write_fd, b'x')
        assert waker.wait([read_fd], 0.0) == [read_fd]  # another fd's readiness is returned
        os.close(read_fd)
        os.close(write_fd)
    finally:
        waker.close()


# -- the link on a bare pseudo-terminal
class Pty:
    """The far end of a serial port: what the link writes, and replies from the 'firmware'."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.received = b''

    def lines(self) -> list[str]:
        try:
            self.received += os.read(self.master, 4096)
        except BlockingIOError:
            pass
        return self.received.decode().splitlines()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def pty():
    port = Pty()
    yield port
    port.close()


def start_link(pty: Pty, dialect: Dialect, cmd_timeout: float = 0.3) -> SerialLink:
    controller = DriveController(DriveConfig(max_linear_accel=0.0, max_angular_accel=0.0), cmd_timeout)
    link = SerialLink(pty.path, controller, dialect=dialect, reconnect_period=0.2)
    link.start()
    try:
        # STOP at the first open, then the scheduler's own once the (forced) dialect is known
        wait_until(lambda: pty.lines() == ['STOP', 'STOP'], 5, 'the first STOPs')
    except TimeoutError:
        link.close()  # a link left running would reopen a later test's pty of the same name
        raise
    return link


def test_idle_link_sleeps_and_a_command_wakes_it_at_once(pty):
    link = start_link(pty, Dialect.V1)
    try:
        time.sleep(0.1)                              # v1 ready 50 ms after STOP
        before = link.stats.wakeups
        time.sleep(0.5)
        assert link.stats.wakeups - before <= 2, 'an idle link must not tick'
        sent = time.monotonic()
        link.controller.command(0.25, 0.0, sent)
        wait_until(lambda: 'PWM 128 128' in pty.lines(), 5, 'the PWM line')
        assert time.monotonic() - sent < 0.5         # generous: at once, not on a poll
    finally:
        link.close()
    assert pty.lines()[-1] == 'STOP'


def test_deadman_fires_on_its_own_timer_with_no_other_event(pty):
    link = start_link(pty, Dialect.V1, cmd_timeout=0.3)
    try:
        time.sleep(0.1)
        commanded = time.monotonic()
        link.controller.command(0.25, 0.0, commanded)
        wait_until(lambda: pty.lines()[-1:] == ['PWM 128 128'], 5, 'the PWM line')
        wait_until(lambda: pty.lines()[-1:] == ['STOP'], 5, 'the deadman STOP')
        stopped = time.monotonic() - commanded
        assert 0.3 <= stopped < 2.0
        assert link.controller.deadman_stops == 1
        assert link.stats.wakeups < 20, 'woken by deadlines, not by a 5 ms tick'
    finally:
        link.close()


def test_v2_keepalive_comes_from_its_deadline(pty):
    link = start_link(pty, Dialect.V2, cmd_timeout=5.0)
    try:
        time.sleep(0.35)                             # v2 reads nothing for 300 ms after STOP
        link.controller.command(0.25, 0.0, time.monotonic())
        wait_until(lambda: pty.lines().count('PWM 128 128') >= 3, 5, 'two keep-alives')
        assert link.stats.wakeups < 20
    finally:
        link.close()


def test_a_reply_wakes_the_link(pty):
    link = start_link(pty, Dialect.V1)
    try:
        os.write(pty.master, b'{"ok":true,"voltage":7.8,"current":250.5,"ts":1234}\n')
        wait_until(lambda: 'voltage' in link.stats.last_reply, 5, 'the reply parsed')
    finally:
        link.close()


def test_a_vanished_port_is_a_serial_error_at_once(pty):
    link = start_link(pty, Dialect.V1)
    try:
        link.controller.command(0.25, 0.0, time.monotonic())
        pty.close()                                  # the USB cable pulled
        wait_until(lambda: link.stats.serial_errors >= 1, 5, 'the serial error')
        assert not link.controller.active            # the drive stopped
    finally:
        link.close()


def test_commands_do_not_hurry_reconnect_attempts(tmp_path):
    controller = DriveController(DriveConfig(), cmd_timeout=0.5)
    link = SerialLink(str(tmp_path / 'no-such-port'), controller, dialect=Dialect.V1, reconnect_period=0.5)
    link.start()
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:                # an operator driving while the cable is out
            controller.command(0.1, 0.0, time.monotonic())
            time.sleep(0.01)
        assert 1 <= link.stats.connect_attempts <= 4  # every 0.5 s, not at every command
    finally:
        started = time.monotonic()
        link.close()
    assert time.monotonic() - started < 1.0          # close still ends the wait at once
