"""The relay WebSocket protocol: one schema shared by the browser, the relay server and the robot.

Every WebSocket text frame is one JSON object with a ``type``. ``parse`` turns a frame into
a typed message or raises ``ProtocolError`` carrying the error code to send back; it never
raises anything else, whatever the input. The protocol is described for humans in
``doc/RELAY_PROTOCOL.md``; ``web/protocol.json`` (written by ``json_schema``) is what the
web UI reads, and a test checks that both agree with this module.
"""
from __future__ import annotations

import json
import time
from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 2  # 2 added ``viewers`` (relay to robot); hello v1 is still spoken
SUPPORTED_VERSIONS = (1, 2)
VIEWERS_SINCE = 2  # the first version whose robots are sent ``viewers``
MAX_MESSAGE_BYTES = 8192
MAX_SAY_CHARS = 500
SAY_LANGUAGES = ('en', 'ro', 'de')  # the languages every robot speaks (others: its default)
MAX_LINEAR = 2.0     # m/s; the robot clamps further to its own limits
MAX_ANGULAR = 6.0    # rad/s
DEFAULT_SPEED = 150  # the original web UI's direction-command speed (PWM units)

Token = Annotated[str, Field(min_length=1, max_length=256)]
RobotId = Annotated[str, Field(pattern=r'^[A-Za-z0-9_-]{1,64}$')]
SessionId = Annotated[str, Field(min_length=1, max_length=64)]
Timestamp = Annotated[float, Field(ge=0, le=1e14, description='ms since the Unix epoch, sender clock')]


def now_ms() -> float:
    """The protocol's clock: milliseconds since the Unix epoch."""
    return time.time() * 1000.0


class ErrorCode(str, Enum):
    BAD_JSON = 'bad_json'
    TOO_LARGE = 'too_large'
    UNKNOWN_TYPE = 'unknown_type'
    INVALID = 'invalid'
    HELLO_REQUIRED = 'hello_required'
    UNSUPPORTED_VERSION = 'unsupported_version'
    UNAUTHORIZED = 'unauthorized'
    FORBIDDEN = 'forbidden'
    NOT_DRIVER = 'not_driver'
    RATE_LIMITED = 'rate_limited'
    ROBOT_OFFLINE = 'robot_offline'
    STALE_COMMAND = 'stale_command'
    UNAVAILABLE = 'unavailable'  # the relay's shared state (Redis) cannot be reached; try again
    INTERNAL = 'internal'


class Role(str, Enum):
    ROBOT = 'robot'
    USER = 'user'


class Direction(str, Enum):
    FORWARD = 'forward'
    BACKWARD = 'backward'
    LEFT = 'left'
    RIGHT = 'right'
    STOP = 'stop'


class Message(BaseModel):
    """Fields every message may carry: ``ts`` (sender clock) and a client ``id``."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    ts: Optional[Timestamp] = None
    id: Optional[Annotated[str, Field(max_length=64)]] = None


# --- session -------------------------------------------------------------------------------

class Hello(Message):
    """First message on every connection. Users name the robot they want; robots their own
    id. A hello without ``v`` speaks version 1.
    """

    type: Literal['hello'] = 'hello'
    v: int = 1
    role: Role
    token: Token
    robot_id: RobotId
    client: Annotated[str, Field(max_length=64)] = ''


class Welcome(Message):
    type: Literal['welcome'] = 'welcome'
    v: int = PROTOCOL_VERSION
    session_id: SessionId
    robot_id: RobotId
    role: Role
    driver: Optional[SessionId] = None
    robot_online: bool = False
    heartbeat_ms: int = 1000
    server_ts: Timestamp


class Ping(Message):
    """Heartbeat and clock probe; either side may send it."""

    type: Literal['ping'] = 'ping'


class Pong(Message):
    """Reply to ``ping``: ``ts`` echoes the ping's ``ts``, ``peer_ts`` is the replier's clock."""

    type: Literal['pong'] = 'pong'
    peer_ts: Timestamp


class Error(Message):
    type: Literal['error'] = 'error'
    code: ErrorCode
    message: Annotated[str, Field(max_length=500)]
    ref: Optional[Annotated[str, Field(max_length=64)]] = None


# --- driving -------------------------------------------------------------------------------

OriginTs = Annotated[Optional[Timestamp], Field(
    description="set by the relay: the command's ts as the browser sent it, echoed in the ack")]


class Drive(Message):
    """Velocity command (REP 103: m/s forward, rad/s counter-clockwise); ``ts`` is required."""

    type: Literal['drive'] = 'drive'
    ts: Timestamp
    origin_ts: OriginTs = None
    seq: Annotated[int, Field(ge=0, lt=2**53)]
    linear: Annotated[float, Field(ge=-MAX_LINEAR, le=MAX_LINEAR, allow_inf_nan=False)]
    angular: Annotated[float, Field(ge=-MAX_ANGULAR, le=MAX_ANGULAR, allow_inf_nan=False)]


class MotorControl(Message):
    """The original web UI's command: a direction and a speed in PWM units."""

    type: Literal['motor_control'] = 'motor_control'
    direction: Direction
    speed: Annotated[int, Field(ge=0, le=255)] = DEFAULT_SPEED
    seq: Optional[Annotated[int, Field(ge=0, lt=2**53)]] = None
    origin_ts: OriginTs = None


class Stop(Message):
    type: Literal['stop'] = 'stop'


def is_stop(message: Message) -> bool:
    """A stop, or the original UI's release (``motor_control`` towards ``stop``)."""
    return isinstance(message, Stop) or (isinstance(message, MotorControl)
                                         and message.direction is Direction.STOP)


class Ack(Message):
    """Receipt of a drive/motor_control command, with each hop's clock for latency."""

    type: Literal['ack'] = 'ack'
    seq: Optional[Annotated[int, Field(ge=0, lt=2**53)]] = None
    sent_ts: Optional[Timestamp] = None   # the command's ts as the browser sent it
    relay_ts: Optional[Timestamp] = None  # relay server clock when it forwarded the command
    robot_ts: Optional[Timestamp] = None  # robot clock when it published cmd_vel
    executed: bool = True
    reason: Optional[ErrorCode] = None


class Lease(Message):
    """Relay to robot: ``driver`` is live. A held command of that driver may go on for
    ``ttl_ms`` more; without a fresh lease the robot stops (see the relay protocol).
    """

    type: Literal['lease'] = 'lease'
    driver: SessionId
    ttl_ms: Annotated[int, Field(ge=50, le=10000)]


class Viewers(Message):
    """Relay to robot (protocol v2): who reads the robot's stream on MediaMTX now, sent
    every heartbeat while the relay can ask MediaMTX, and at once when a reader arrives. The
    robot encodes while ``readers`` or ``recording`` says so, or while this word is missing.
    """

    type: Literal['viewers'] = 'viewers'
    readers: Annotated[int, Field(ge=0, le=1_000_000)]
    recording: bool = False


class TakeControl(Message):
    """Ask to become the driver; ``force`` takes over from the current driver."""

    type: Literal['take_control'] = 'take_control'
    force: bool = False


class ReleaseControl(Message):
    type: Literal['release_control'] = 'release_control'


class Control(Message):
    """Who drives this robot now (sent to every user of the robot when it changes)."""

    type: Literal['control'] = 'control'
    driver: Optional[SessionId] = None
    you: bool = False


# --- robot features ------------------------------------------------------------------------

Language = Annotated[str, Field(pattern=r'^[a-z]{2}(-[A-Z]{2})?$',
                                 description="BCP 47 language, e.g. 'ro' or 'en-US'")]
VoiceName = Annotated[str, Field(pattern=r'^[A-Za-z0-9_.-]{1,64}$',
                                 description="a voice of the robot's speech engines, e.g. 'en_US-joe-medium'")]


class Say(Message):
    """Speak ``text``; ``lang`` and ``voice`` default to the robot's own (per language)."""

    type: Literal['say'] = 'say'
    text: Annotated[str, Field(min_length=1, max_length=MAX_SAY_CHARS)]
    lang: Optional[Language] = None
    voice: Optional[VoiceName] = None


class StopSpeaking(Message):
    """Cut the robot's speech now and drop the texts waiting; any user may send it."""

    type: Literal['stop_speaking'] = 'stop_speaking'


class SetMode(Message):
    type: Literal['set_mode'] = 'set_mode'
    mode: Literal['local', 'server']


class GetStatus(Message):
    type: Literal['get_status'] = 'get_status'


class Battery(BaseModel):
    model_config = ConfigDict(extra='forbid')

    voltage: Optional[float] = None
    percentage: Optional[float] = None
    present: bool = False


class StreamState(BaseModel):
    model_config = ConfigDict(extra='forbid')

    requested: str = 'local'
    active: str = 'local'
    fallback: bool = False
    server_reachable: bool = False
    fps: float = 0.0
    bitrate_kbps: float = 0.0
    last_error: str = ''


class LinkState(BaseModel):
    """Link quality: the relay connection's round trip, the motor serial link, restarts."""

    model_config = ConfigDict(extra='forbid')

    relay_rtt_ms: Optional[float] = None
    clock_offset_ms: Optional[float] = None
    serial: str = 'unknown'
    dropped_stale: int = 0
    watchdog: str = ''  # the robot watchdog's latest node restart; '' = none since start


class Status(Message):
    """Robot status; the robot sends it on change and at least every few seconds."""

    type: Literal['status'] = 'status'
    robot_id: Optional[RobotId] = None
    online: bool = True
    battery: Battery = Battery()
    stream: StreamState = StreamState()
    link: LinkState = LinkState()
    mjpeg_url: Optional[Annotated[str, Field(max_length=512)]] = None
    whep_url: Optional[Annotated[str, Field(max_length=512)]] = None
    whip_url: Optional[Annotated[str, Field(max_length=512)]] = None


AnyMessage = Annotated[
    Union[Hello, Welcome, Ping, Pong, Error, Drive, MotorControl, Stop, Ack, Lease, TakeControl,
          ReleaseControl, Control, Say, StopSpeaking, SetMode, GetStatus, Status, Viewers],
    Field(discriminator='type'),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyMessage)
MESSAGE_TYPES: tuple[str, ...] = (
    'hello', 'welcome', 'ping', 'pong', 'error', 'drive', 'motor_control', 'stop', 'ack', 'lease',
    'take_control', 'release_control', 'control', 'say', 'stop_speaking', 'set_mode', 'get_status',
    'status', 'viewers')


class ProtocolError(Exception):
    """A frame that cannot be accepted; ``code`` and ``message`` go back to the sender."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message[:500]
        self.ref = ref[:64] if ref else None  # whatever the sender put in its id

    def to_message(self) -> Error:
        return Error(code=self.code, message=self.message, ref=self.ref, ts=now_ms())


def parse(frame: str | bytes) -> Message:
    """Validate one WebSocket frame and return the typed message.

    Validation is strict: a field takes only its own JSON type (``true`` is no number,
    ``"yes"`` no boolean); integers are accepted where numbers are expected.
    """
    if len(frame) > MAX_MESSAGE_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f'message over {MAX_MESSAGE_BYTES} bytes')
    try:  # a valid frame is parsed once; anything else is looked at again for the right error
        return _ADAPTER.validate_json(frame, strict=True)  # type: ignore[no-any-return]
    except ValidationError:
        pass
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f'not JSON: {exc}'[:200]) from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID, 'a message is a JSON object')
    kind = data.get('type')
    ref = data.get('id') if isinstance(data.get('id'), str) else None
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f'unknown message type {str(kind)[:64]!r}', ref)
    try:
        return _ADAPTER.validate_json(frame, strict=True)  # type: ignore[no-any-return]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = '.'.join(str(p) for p in first['loc'][1:]) or 'message'
        raise ProtocolError(ErrorCode.INVALID, f'{kind}: {where}: {first["msg"]}', ref) from None


def dump(message: Message) -> str:
    """Serialize a message to one frame (fields left at None are omitted)."""
    return message.model_dump_json(exclude_none=True)


def dump_with(message: Message, **update: Any) -> str:
    """``dump(message.model_copy(update=update))``, several times faster for the messages
    every command and ack is (flat ones: no nested model). ``update`` is not validated.
    """
    if type(message) not in _FLAT:
        return dump(message.model_copy(update=update))
    fields = {**message.__dict__, **update}
    return _dumps({k: v for k, v in fields.items() if v is not None})


_FLAT = (Drive, MotorControl, Ack, Stop, Say, StopSpeaking, SetMode, GetStatus, Viewers)
try:  # optional: orjson is faster than json (both write enums as their values)
    import orjson

    def _dumps(fields: dict[str, Any]) -> str:
        return orjson.dumps(fields).decode()
except ImportError:  # pragma: no cover - depends on the environment
    def _dumps(fields: dict[str, Any]) -> str:
        return json.dumps(fields, separators=(',', ':'))


def json_schema() -> dict[str, Any]:
    """The protocol as JSON Schema plus its constants, for the web UI and other clients."""
    return {
        'version': PROTOCOL_VERSION,
        'supported_versions': list(SUPPORTED_VERSIONS),
        'max_message_bytes': MAX_MESSAGE_BYTES,
        'max_linear': MAX_LINEAR,
        'max_angular': MAX_ANGULAR,
        'max_say_chars': MAX_SAY_CHARS,
        'say_languages': list(SAY_LANGUAGES),
        'default_speed': DEFAULT_SPEED,
        'error_codes': [c.value for c in ErrorCode],
        'message_types': list(MESSAGE_TYPES),
        'schema': _ADAPTER.json_schema(),
    }


class ClockOffset:
    """Estimate of a peer's clock offset from ping/pong round trips (NTP-style).

    ``offset_ms`` is peer clock minus local clock, taken from the sample with the smallest
    round trip among the recent ones, as that one bounds the error best.
    """

    def __init__(self, window: int = 16) -> None:
        self._samples: list[tuple[float, float]] = []  # (rtt, offset)
        self._window = window

    def add(self, sent_ms: float, peer_ms: float, received_ms: float) -> None:
        rtt = max(0.0, received_ms - sent_ms)
        self._samples.append((rtt, peer_ms - (sent_ms + received_ms) / 2.0))
        del self._samples[:-self._window]

    @property
    def known(self) -> bool:
        return bool(self._samples)

    @property
    def offset_ms(self) -> float:
        return min(self._samples)[1] if self._samples else 0.0

    @property
    def rtt_ms(self) -> float | None:
        return self._samples[-1][0] if self._samples else None

    def to_local(self, peer_ts: float) -> float:
        """A peer timestamp expressed in the local clock."""
        return peer_ts - self.offset_ms

    def age_ms(self, peer_ts: float, local_now: float | None = None) -> float:
        """How old a message stamped ``peer_ts`` by the peer is, in local time."""
        return (now_ms() if local_now is None else local_now) - self.to_local(peer_ts)


if __name__ == '__main__':
    # Regenerate the web UI's copy: python -m havatar_relay.protocol > havatar_relay/web/protocol.json
    print(json.dumps(json_schema(), indent=1, sort_keys=True))
