"""The simulated firmware's behaviour and timing (the pure ``Firmware`` and the real process)."""
from __future__ import annotations

import json
import time

import serial

from havatar_drivers.esp32.firmware_model import Firmware


def test_v1_replies_and_telemetry():
    fw = Firmware('v1', now=0.0)
    assert fw.handle('PWM 300 -20', 1.0)[0][0].startswith('{"ack":"PWM","L":255,"R":-20')
    assert fw.handle('STOP', 1.1)[0][0].startswith('{"ack":"STOP"')
    assert json.loads(fw.handle('FOO', 1.2)[0][0])['err'] == 'bad_cmd'
    assert len(fw.tick(1.3)[0]) == 1
    assert fw.tick(1.7)[0] == []
    telemetry = json.loads(fw.tick(1.8)[0][0])  # unprompted every 500 ms
    assert telemetry['ok'] and telemetry['voltage'] > 8.0 and telemetry['ts'] == 1800


def test_v2_boot_blocking_and_watchdog():
    fw = Firmware('v2', now=0.0)
    assert fw.booting() and fw.tick(1.0)[0] == []
    assert '"ready"' in fw.tick(2.0)[0][0]
    assert '"initialized"' in fw.tick(3.2)[0][0] and not fw.booting()
    lines, block = fw.handle('PWM 100 100', 4.0)
    assert json.loads(lines[0]) == {'ok': True, 'cmd': 'PWM', 'left': 100, 'right': 100, 'uptime': 4000}
    assert block == 0.05
    assert fw.handle('STOP', 4.1)[1] == 0.3
    fw.handle('MOTOR:L:50:R:60', 4.5)
    assert (fw.motors.left, fw.motors.right) == (50, 60)
    assert '"heartbeat"' in fw.tick(5.5)[0][0]
    lines, block = fw.tick(6.6)
    assert json.loads(lines[0])['reason'] == 'watchdog_timeout' and block == 0.9
    assert not fw.motors.moving


def test_v2_errors():
    fw = Firmware('v2', now=0.0)
    assert json.loads(fw.handle('PWM 256 0', 4.0)[0][0])['error'] == 'invalid_speed_range'
    assert json.loads(fw.handle('PWM a b', 4.0)[0][0])['error'] == 'invalid_pwm_format'
    assert json.loads(fw.handle('NOPE', 4.0)[0][0]) == {'ok': False, 'error': 'unknown_command',
                                                        'received': 'NOPE'}


def test_process_records_lines_and_blocks_like_v2(start_sim):
    sim = start_sim('v2')
    with serial.Serial(str(sim.port), 115200, timeout=0.1) as port:
        deadline = time.monotonic() + 10
        while b'initialized' not in port.readline():
            assert time.monotonic() < deadline, 'no boot lines'
        port.write(b'PWM 10 10\nPWM 20 20\nPWM 30 30\n')
        replies = [port.readline() for _ in range(3)]
    assert all(b'"cmd":"PWM"' in r for r in replies)
    times = [t for t, _ in sim.lines()]
    assert [line for _, line in sim.lines()] == ['PWM 10 10', 'PWM 20 20', 'PWM 30 30']
    assert all(b - a >= 0.045 for a, b in zip(times, times[1:]))


def test_process_faults(start_sim):
    sim = start_sim('v1')
    with serial.Serial(str(sim.port), 115200, timeout=0.2) as port:
        sim.control.send('drop 1')
        port.write(b'STOP\n')
        reply = port.readline()
        assert b'"ack"' not in reply  # dropped (a telemetry line may arrive instead)
        sim.control.send('garbage 64')
        assert port.read(64)
        sim.control.send('unplug 0.5')
        time.sleep(0.1)
        try:
            port.write(b'STOP\n')
            port.read(10)
            unplugged = False
        except serial.SerialException:
            unplugged = True
    assert unplugged
    sim.process.wait_for_output(r'(?s)port: .*port: ', timeout=5)  # it came back
    assert sim.control.state()['plugged']
