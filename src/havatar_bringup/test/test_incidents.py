"""Stop reasons, the message window and the MCAP file, without processes."""
from __future__ import annotations

import os
import time

import pytest
from ament_index_python.packages import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import serialize_message

from havatar_bringup import incidents as inc
from havatar_bringup.incidents import IncidentWindow, Record, RecentMessages, Stop, StopDetector
from havatar_bringup.mcap_file import SEPARATOR, message_definition, rotate, write_mcap
from havatar_msgs.msg import WheelCommand

S = 1_000_000_000
LINK, RELAY = 'motor_node: ESP32 link', 'relay_node: relay'


def link(**counters: int) -> list[tuple[str, dict[str, str]]]:
    values = {'deadman_stops': 0, 'firmware_emergency_stops': 0, 'firmware_resets': 1, 'serial_errors': 0}
    values.update(counters)
    return [(LINK, {k: str(v) for k, v in values.items()})]


@pytest.mark.parametrize('before,after,reason', [
    (link(), link(deadman_stops=1), inc.DEADMAN),
    (link(), link(firmware_emergency_stops=1), inc.FIRMWARE_WATCHDOG),
    (link(), link(firmware_resets=2), inc.FIRMWARE_RESET),
    (link(), link(serial_errors=1), inc.SERIAL_LOSS),
    ([(RELAY, {'dropped_stale_commands': '3'})], [(RELAY, {'dropped_stale_commands': '4'})], inc.STALE_COMMANDS),
    ([(RELAY, {'cloud_relay': 'connected'})], [(RELAY, {'cloud_relay': 'disconnected'})], inc.RELAY_LOSS),
])
def test_each_reported_stop_is_a_reason_while_moving_and_none_when_still(before, after, reason):
    moving = StopDetector(moving_window=3.0)
    moving.wheels(100, 100, 0)
    assert moving.diagnostics(before, 1 * S) == []
    stops = moving.diagnostics(after, 2 * S)
    assert [s.reason for s in stops] == [reason] and stops[0].time_ns == 2 * S

    still = StopDetector(moving_window=3.0)
    still.wheels(100, 100, 0)
    still.wheels(0, 0, 1)  # the driver stopped
    still.diagnostics(before, 4 * S)
    assert still.diagnostics(after, 5 * S) == [], 'not moving for longer than the window'


def test_a_first_boot_before_any_command_is_no_incident_even_if_driving_starts_before_its_report():
    d = StopDetector(moving_window=3.0)
    d.diagnostics(link(firmware_resets=0), 0)
    d.wheels(0, 0, S // 2)  # STOP at connect
    d.wheels(128, 128, S)   # v2 'initialized', then the operator's command at once
    assert d.diagnostics(link(firmware_resets=1), S + S // 5) == []
    assert [s.reason for s in d.diagnostics(link(firmware_resets=2), 2 * S)] == [inc.FIRMWARE_RESET]
    # commands sent to a booting v2 firmware (which ignores them) before its ready line
    early = StopDetector(moving_window=3.0)
    early.wheels(128, 128, 0)
    early.diagnostics(link(firmware_resets=0), S // 5)
    assert early.diagnostics(link(firmware_resets=1), 2 * S // 5) == []


def test_the_first_report_and_a_restarted_node_are_baselines():
    d = StopDetector(moving_window=3.0)
    d.wheels(50, 50, 0)
    assert d.diagnostics(link(deadman_stops=7), 0) == []
    assert d.diagnostics(link(deadman_stops=0), S) == [], 'restarted: counters from zero'
    assert [s.reason for s in d.diagnostics(link(deadman_stops=1), S)] == [inc.DEADMAN]


def test_a_lock_engaged_while_moving_is_an_emergency_stop_once():
    d = StopDetector(moving_window=3.0)
    assert d.lock('/e_stop', True, 0) == [], 'locked while still'
    d.lock('/e_stop', False, S)
    d.wheels(-80, 80, S)
    assert [s.reason for s in d.lock('/e_stop', True, 2 * S)] == [inc.EMERGENCY_LOCK]
    assert d.lock('/e_stop', True, 2 * S + 1) == [], 'repeated: the same stop'


def test_the_window_keeps_the_last_seconds_and_a_byte_bound():
    recent = RecentMessages(keep_seconds=30.0, max_bytes=1000)
    for t in range(0, 60):
        recent.add(Record('/cmd_vel', 'geometry_msgs/msg/Twist', t * S, b'x' * 10))
    kept = recent.between(0, 60 * S)
    assert kept[0].time_ns == 29 * S and kept[-1].time_ns == 59 * S
    for t in range(60, 260):
        recent.add(Record('/cmd_vel', 'geometry_msgs/msg/Twist', t * S // 100, b'y' * 10))
    assert recent.bytes <= 1000


def test_reasons_close_together_are_one_incident_due_after_the_tail():
    window = IncidentWindow(post_ns=2 * S)
    window.add([Stop(inc.SERIAL_LOSS, 10 * S, 'a')])
    window.add([Stop(inc.DEADMAN, 11 * S, 'b'), Stop(inc.SERIAL_LOSS, 11 * S, 'c')])
    assert not window.due(11 * S) and window.due(12 * S)
    assert inc.reasons(window.take()) == [inc.SERIAL_LOSS, inc.DEADMAN]
    assert not window.open


def test_message_definitions_are_rosbag2s_with_their_dependencies():
    text = message_definition('diagnostic_msgs/msg/DiagnosticArray', get_package_share_directory)
    sections = text.split(SEPARATOR + '\n')
    assert [s.splitlines()[0] for s in sections[1:]] == [
        'MSG: std_msgs/Header', 'MSG: diagnostic_msgs/DiagnosticStatus', 'MSG: builtin_interfaces/Time',
        'MSG: diagnostic_msgs/KeyValue']
    wheel = message_definition('havatar_msgs/msg/WheelCommand', get_package_share_directory)
    assert 'int16 left' in wheel and 'MSG: std_msgs/Header' in wheel


def read_back(path) -> list[tuple[str, str, int, object]]:
    """(topic, type, log time, decoded message) of each message, in log-time order."""
    with path.open('rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        return [(channel.topic, schema.name, message.log_time, decoded)
                for schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True)]


def test_the_file_reads_back_with_the_mcap_ros2_reader(tmp_path):
    twist = Twist()
    twist.linear.x = 0.25
    diag = DiagnosticArray(status=[DiagnosticStatus(name=LINK, values=[KeyValue(key='deadman_stops', value='1')])])
    wheel = WheelCommand(left=-12, right=34)
    t0 = time.time_ns()
    records = [Record('/cmd_vel', 'geometry_msgs/msg/Twist', t0, serialize_message(twist)),
               Record('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', t0 + 5, serialize_message(diag)),
               Record('/wheel_commands', 'havatar_msgs/msg/WheelCommand', t0 + 9, serialize_message(wheel))]
    definitions = {r.type_name: message_definition(r.type_name, get_package_share_directory) for r in records}
    path = tmp_path / 'incident.mcap'
    write_mcap(path, reversed(records), definitions, {'havatar_incident': {'reasons': 'deadman'}})

    read = read_back(path)
    assert [(topic, name, t) for topic, name, t, _ in read] == [(r.topic, r.type_name, r.time_ns) for r in records]
    assert read[0][3].linear.x == 0.25
    assert read[1][3].status[0].values[0].value == '1'
    assert (read[2][3].left, read[2][3].right) == (-12, 34)
    with path.open('rb') as stream:
        reader = make_reader(stream)
        assert reader.get_header().profile == 'ros2'
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
        channels = reader.get_summary().channels.values()
    assert metadata == {'havatar_incident': {'reasons': 'deadman'}}
    assert {c.message_encoding for c in channels} == {'cdr'}


def test_rotation_deletes_the_oldest_files_beyond_the_bound_but_never_the_newest(tmp_path):
    for i in range(5):
        path = tmp_path / f'incident-{i}.mcap'
        path.write_bytes(b'x' * 100)
        os.utime(path, (1000 + i, 1000 + i))
    deleted = rotate(tmp_path, 250, keep=tmp_path / 'incident-4.mcap')
    assert [p.name for p in deleted] == ['incident-0.mcap', 'incident-1.mcap', 'incident-2.mcap']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['incident-3.mcap', 'incident-4.mcap']
    big = tmp_path / 'incident-5.mcap'
    big.write_bytes(b'x' * 1000)
    rotate(tmp_path, 250, keep=big)
    assert [p.name for p in tmp_path.iterdir()] == ['incident-5.mcap']
