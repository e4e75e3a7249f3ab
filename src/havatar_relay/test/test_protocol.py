"""The relay protocol schema: valid and invalid frames, a fuzz test, clock offsets, the UI copy."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from havatar_relay import protocol as p
from havatar_relay.command_gate import CommandGate

WEB_SCHEMA = Path(p.__file__).with_name('web') / 'protocol.json'


@pytest.mark.parametrize('frame,kind', [
    ('{"type":"drive","ts":1,"seq":1,"linear":0.5,"angular":-1}', p.Drive),
    ('{"type":"motor_control","direction":"left","speed":200}', p.MotorControl),
    ('{"type":"motor_control","direction":"stop"}', p.MotorControl),
    ('{"type":"get_status"}', p.GetStatus),
    ('{"type":"hello","role":"user","token":"t","robot_id":"r-1"}', p.Hello),
    ('{"type":"say","text":"hi"}', p.Say),
    ('{"type":"say","text":"bună ziua","lang":"ro"}', p.Say),
    ('{"type":"say","text":"hi","lang":"en-US","voice":"en_US-joe-medium"}', p.Say),
    ('{"type":"stop_speaking"}', p.StopSpeaking),
    ('{"type":"stop_speaking","id":"u1","ts":5}', p.StopSpeaking),
    ('{"type":"ack","seq":3,"sent_ts":5,"executed":false,"reason":"stale_command"}', p.Ack),
    ('{"type":"lease","driver":"abc","ttl_ms":600}', p.Lease),
    ('{"type":"drive","ts":0,"seq":0,"linear":-2,"angular":6.0}', p.Drive),
])
def test_valid_frames(frame, kind):
    assert isinstance(p.parse(frame), kind)


@pytest.mark.parametrize('frame,code', [
    ('', p.ErrorCode.BAD_JSON), ('{', p.ErrorCode.BAD_JSON), ('[]', p.ErrorCode.INVALID),
    ('{"type":"fly"}', p.ErrorCode.UNKNOWN_TYPE), ('{"linear":1}', p.ErrorCode.UNKNOWN_TYPE),
    ('{"type":"drive","ts":1,"seq":1,"linear":2.5,"angular":0}', p.ErrorCode.INVALID),
    ('{"type":"drive","ts":1,"seq":1,"linear":"fast","angular":0}', p.ErrorCode.INVALID),
    ('{"type":"drive","seq":1,"linear":0,"angular":0}', p.ErrorCode.INVALID),
    ('{"type":"motor_control","direction":"up"}', p.ErrorCode.INVALID),
    ('{"type":"motor_control","direction":"left","speed":300}', p.ErrorCode.INVALID),
    ('{"type":"say","text":""}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","lang":"RO"}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","lang":"ro-ro"}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","lang":"rom"}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","lang":7}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","voice":"en+f3"}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","voice":"../x y"}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","voice":""}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"hi","voice":"' + 'v' * 65 + '"}', p.ErrorCode.INVALID),
    ('{"type":"stop_speaking","text":"x"}', p.ErrorCode.INVALID),
    ('{"type":"stop","extra":1}', p.ErrorCode.INVALID),
    ('{"type":"hello","role":"god","token":"t","robot_id":"r"}', p.ErrorCode.INVALID),
    ('{"type":"say","text":"' + 'x' * 9000 + '"}', p.ErrorCode.TOO_LARGE),
    ('[' * 5000 + ']' * 5000, p.ErrorCode.TOO_LARGE),
    # strict: a field takes only its own JSON type
    ('{"type":"hello","v":true,"role":"user","token":"t","robot_id":"r"}', p.ErrorCode.INVALID),
    ('{"type":"take_control","force":"yes"}', p.ErrorCode.INVALID),
    ('{"type":"take_control","force":1}', p.ErrorCode.INVALID),
    ('{"type":"drive","ts":"1","seq":1,"linear":0,"angular":0}', p.ErrorCode.INVALID),
    ('{"type":"drive","ts":1,"seq":1.5,"linear":0,"angular":0}', p.ErrorCode.INVALID),
    ('{"type":"motor_control","direction":"left","speed":true}', p.ErrorCode.INVALID),
    ('{"type":"lease","driver":"s","ttl_ms":0}', p.ErrorCode.INVALID),
    # an id too long to be echoed as the error's ref
    ('{"type":"stop","id":"' + 'i' * 100 + '"}', p.ErrorCode.INVALID),
    ('{"type":"fly","id":"' + 'i' * 300 + '"}', p.ErrorCode.UNKNOWN_TYPE),
])
def test_invalid_frames_get_a_code(frame, code):
    with pytest.raises(p.ProtocolError) as error:
        p.parse(frame)
    assert error.value.code is code
    assert p.dump(error.value.to_message())  # the reply itself is valid


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(['type', 'ts', 'seq', 'linear', 'angular', 'direction', 'speed', 'text',
                         'token', 'role', 'robot_id', 'mode', 'id', 'v', 'lang', 'voice']) | st.text(max_size=8),
        inner, max_size=8), max_leaves=20)
typed = st.builds(lambda kind, rest: json.dumps({**rest, 'type': kind}),
                  st.sampled_from(p.MESSAGE_TYPES), st.dictionaries(
                      st.sampled_from(['ts', 'seq', 'linear', 'angular', 'direction', 'speed',
                                       'text', 'mode', 'id', 'force', 'lang', 'voice']), json_values,
                      max_size=6))


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), json_values.map(json.dumps), typed))
def test_parse_only_returns_a_message_or_raises_protocol_error(frame):
    try:
        assert isinstance(p.parse(frame), p.Message)
    except p.ProtocolError as error:
        assert isinstance(error.code, p.ErrorCode)


def test_clock_offset_uses_the_fastest_round_trip():
    clock = p.ClockOffset()
    clock.add(sent_ms=1000, peer_ms=1550, received_ms=1100)   # rtt 100, offset 500
    clock.add(sent_ms=2000, peer_ms=2505, received_ms=2010)   # rtt 10, offset 500
    clock.add(sent_ms=3000, peer_ms=3900, received_ms=3200)   # rtt 200: queued, ignored
    assert clock.offset_ms == 500 and clock.rtt_ms == 200
    assert clock.to_local(5500) == 5000
    assert clock.age_ms(5500, local_now=5250) == 250


def test_command_gate_drops_stale_and_maps_directions():
    gate = CommandGate(max_linear=0.5, max_angular=2.0, max_age_ms=300)
    fresh = p.Drive(ts=10_000, seq=1, linear=1.5, angular=0.1, id='s')
    twist, ack = gate.drive(fresh, now_ms=10_100)
    assert twist == (0.5, 0.1) and ack.executed and ack.id == 's'
    twist, ack = gate.drive(fresh.model_copy(update={'seq': 2}), now_ms=10_400)
    assert twist is None and not ack.executed and ack.reason is p.ErrorCode.STALE_COMMAND
    left = p.MotorControl(direction='left', speed=255, id='s')
    assert gate.motor_control(left, 0.0, 0.0)[0] == (0.0, 2.0)
    for t in range(1, 50):  # the relay's leases for driver 's' keep the command held
        gate.lease(p.Lease(driver='s', ttl_ms=600), t * 0.2)
        assert gate.hold(t * 0.2 + 0.1) == (0.0, 2.0)
    assert gate.hold(11.0) == (0.0, 0.0) and gate.hold(11.1) is None  # held 10 s at most
    gate.motor_control(p.MotorControl(direction='forward', speed=51), 0.0, 0.0)
    assert gate.stop() == (0.0, 0.0) and gate.hold(0.1) is None


def test_a_held_command_ends_with_its_drivers_lease():
    gate = CommandGate(lease_s=0.6)
    gate.motor_control(p.MotorControl(direction='forward', id='alice'), 0.0, 100.0)
    gate.lease(p.Lease(driver='alice', ttl_ms=600), 100.2)
    gate.lease(p.Lease(driver='bob', ttl_ms=600), 100.7)       # not the holder: no extension
    gate.lease(p.Lease(driver='alice', ttl_ms=10_000), 100.3)  # capped at lease_s
    assert gate.hold(100.85) is not None
    assert gate.hold(100.95) == (0.0, 0.0) and gate.hold(101.0) is None
    gate.lease(p.Lease(driver='alice', ttl_ms=600), 101.1)     # a late lease restarts nothing
    assert gate.hold(101.2) is None


@pytest.mark.parametrize('offset_ms', [-3_600_000, -301, 301, 3_600_000, -10_000_000])
def test_commands_stamped_far_from_now_are_not_executed(offset_ms):
    gate = CommandGate(max_age_ms=300)
    now = 1_700_000_000_000.0
    twist, ack = gate.drive(p.Drive(ts=max(0.0, now + offset_ms), seq=1, linear=0.3, angular=0), now)
    assert twist is None and ack.reason is p.ErrorCode.STALE_COMMAND
    twist, ack = gate.motor_control(p.MotorControl(direction='forward', ts=max(0.0, now + offset_ms)),
                                    now, 5.0)
    assert twist is None and gate.hold(5.1) is None
    assert gate.drive(p.Drive(ts=now - 299, seq=2, linear=0.3, angular=0), now)[0] == (0.3, 0.0)


def test_the_ack_carries_the_browsers_own_stamp():
    gate = CommandGate()
    drive = p.Drive(ts=5000, origin_ts=1234, seq=7, linear=0.1, angular=0)
    assert gate.drive(drive, 5010)[1].sent_ts == 1234


def test_the_web_ui_copy_of_the_schema_is_current():
    assert json.loads(WEB_SCHEMA.read_text()) == json.loads(json.dumps(p.json_schema())), \
        'regenerate: python -m havatar_relay.protocol > src/havatar_relay/havatar_relay/web/protocol.json'


@pytest.mark.parametrize('frame, update', [
    ({'type': 'drive', 'seq': 7, 'ts': 1.7e12, 'linear': 0.5, 'angular': -1}, {'id': 's1', 'origin_ts': 1.7e12}),
    ({'type': 'motor_control', 'direction': 'left', 'speed': 90}, {'id': 's1', 'ts': 5.0, 'origin_ts': None}),
    ({'type': 'ack', 'id': 's1', 'seq': 3, 'sent_ts': 1.0, 'executed': False, 'reason': 'stale_command'},
     {'id': None}),
    ({'type': 'say', 'text': 'ță', 'lang': 'ro', 'voice': 'ro'}, {'id': 's1', 'ts': 5.0}),
    ({'type': 'stop_speaking', 'ts': 1.0}, {'id': 's2', 'ts': 5.0}),
    ({'type': 'status', 'robot_id': 'r1', 'battery': {'voltage': 12.1}}, {'id': None}),  # nested: the slow way
])
def test_dump_with_is_dump_of_the_updated_copy(frame, update):
    message = p.parse(json.dumps(frame))
    fast = p.dump_with(message, **update)
    assert json.loads(fast) == json.loads(p.dump(message.model_copy(update=update)))
    assert p.parse(fast) == message.model_copy(update=update)
