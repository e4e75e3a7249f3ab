"""The ESP32 reply parser, dialect detection and the command scheduler (pure code)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from havatar_drivers.esp32.protocol import (
    Ack, Boot, Dialect, Emergency, FirmwareError, Heartbeat, Info, StatusV2, Telemetry,
    Unparsed, dialect_of, parse_dialect, parse_reply, pwm_line)
from havatar_drivers.esp32.scheduler import CommandScheduler

REPLIES = [
    (b'{"boot":true,"ina219":true}', Boot(Dialect.V1, True, 'ina219=True'), Dialect.V1),
    (b'{"ack":"PWM","L":100,"R":-50,"voltage":7.9}', Ack('PWM', Dialect.V1, 100, -50, 7.9), Dialect.V1),
    (b'{"ack":"STOP","voltage":7.9}', Ack('STOP', Dialect.V1, None, None, 7.9), Dialect.V1),
    (b'{"ok":true,"voltage":7.8,"current":250.5,"ts":1234}', Telemetry(7.8, 250.5, 1234), Dialect.V1),
    (b'{"err":"bad_cmd","voltage":7.9}', FirmwareError('bad_cmd', Dialect.V1), Dialect.V1),
    (b'{"status":"ready","version":"2.0","firmware":"ESP32_CRAWLER"}', Boot(Dialect.V2, False, '2.0'), Dialect.V2),
    (b'{"status":"initialized","ok":true}', Boot(Dialect.V2, True), Dialect.V2),
    (b'{"ok":true,"cmd":"PWM","left":10,"right":20,"uptime":5}', Ack('PWM', Dialect.V2, 10, 20), Dialect.V2),
    (b'{"ok":true,"cmd":"STOP","reason":"command","uptime":5}', Ack('STOP', Dialect.V2), Dialect.V2),
    (b'{"ok":true,"status":{"left":1,"right":2,"uptime":3,"last_cmd":4,"watchdog_timeout":2000}}',
     StatusV2(1, 2, 3, 4, 2000), Dialect.V2),
    (b'{"ok":false,"error":"invalid_speed_range","range":"-255 to +255"}',
     FirmwareError('invalid_speed_range', Dialect.V2, '-255 to +255'), Dialect.V2),
    (b'{"ok":false,"error":"unknown_command","received":"FOO"}',
     FirmwareError('unknown_command', Dialect.V2, 'FOO'), Dialect.V2),
    (b'{"emergency":true,"reason":"watchdog_timeout","uptime":9}', Emergency('watchdog_timeout'), Dialect.V2),
    (b'{"heartbeat":true,"left":5,"right":6,"uptime":9}', Heartbeat(5, 6), Dialect.V2),
    (b'{"info":"Watchdog: 2000ms"}', Info('Watchdog: 2000ms'), None),
    (b'TEST:FORWARD', Unparsed('TEST:FORWARD'), None),
    (b'\xff\xfe{"ack"', Unparsed('\ufffd\ufffd{"ack"'), None),
    (b'[1,2]', Unparsed('[1,2]'), None),
    (b'{"ok":true,"voltage":"high"}', Unparsed('{"ok":true,"voltage":"high"}'), None),
]


@pytest.mark.parametrize('line,expected,dialect', REPLIES)
def test_reply_lines_are_classified(line, expected, dialect):
    reply = parse_reply(line)
    assert reply == expected
    assert dialect_of(reply) == dialect


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                  st.sampled_from(['ok', 'ack', 'err', 'status', 'cmd', 'left', 'L',
                                                   'voltage', 'heartbeat', 'emergency', 'boot', 'x']),
                                  inner, max_size=6), max_leaves=12).map(
                     lambda v: __import__('json').dumps(v))))
def test_parser_never_raises(line):
    parse_reply(line)


def test_pwm_lines_are_clamped_to_the_firmware_range():
    assert pwm_line(300, -999) == b'PWM 255 -255\n'


def test_dialect_parameter():
    assert parse_dialect('auto') is None
    assert parse_dialect('v2') is Dialect.V2
    with pytest.raises(ValueError):
        parse_dialect('v3')


def test_scheduler_stops_first_on_a_new_connection():
    s = CommandScheduler(Dialect.V1)
    s.reset()
    assert s.next_line((100, 100), 0.0) == b'STOP\n'
    assert s.next_line((100, 100), 0.1) == b'PWM 100 100\n'


def test_scheduler_sends_only_changes_and_respects_v2_blocking():
    s = CommandScheduler(Dialect.V2)
    s.firmware_stopped()
    assert s.next_line((50, 50), 0.0) == b'PWM 50 50\n'
    assert s.next_line((60, 60), 0.03) is None          # firmware still blinking its LED
    assert s.next_line((70, 70), 0.07) == b'PWM 70 70\n'  # only the newest target is sent
    assert s.next_line((70, 70), 0.2) is None            # nothing changed
    assert s.next_line((70, 70), 0.6) == b'PWM 70 70\n'   # keep-alive inside the watchdog
    assert s.next_line((0, 0), 0.7) == b'STOP\n'
    assert s.next_line((10, 10), 0.8) is None             # STOP blocks ~300 ms
    assert s.next_line((10, 10), 1.03) == b'PWM 10 10\n'
    assert s.next_line((0, 0), 1.1) == b'STOP\n'
    assert s.next_line((0, 0), 5.0) is None               # no keep-alive while stopped


def test_v1_needs_no_keepalive():
    s = CommandScheduler(Dialect.V1)
    s.firmware_stopped()
    assert s.next_line((50, 50), 0.0) == b'PWM 50 50\n'
    assert s.next_line((50, 50), 10.0) is None
