"""What a server session is made of, built for a target: MediaMTX's API, the RTSP session
(ffmpeg publishing), the talkback reader; and the target itself, the server settings that
may change while running. The supervisor uses the ``Protocol`` types, so tests can pass
their own parts.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Protocol
from urllib.parse import urlsplit

from .mediamtx_api import MediaMtxApi, PathState
from .rtsp_auth_hop import RtspAuthHop
from .rtsp_session import PublishSettings, RtspSession
from .talkback import TalkbackReader

MEDIAMTX_API_PORT = 9997  # MediaMTX's default API port, used when api_url is ''
NO_API = 'none'  # api_url when the robot cannot reach the API


@dataclass(frozen=True)
class ServerTarget:
    """Where and as whom to publish: the server settings that may change while running."""

    server_url: str  # rtsp://host:port or rtsps://host:port
    stream_key: str  # the robot's path
    user: str
    password: str = field(repr=False)
    api_url: str = ''  # '' = http://<server host>:MEDIAMTX_API_PORT; NO_API = none

    def api_base(self) -> Optional[str]:
        if self.api_url == NO_API:
            return None
        host = urlsplit(self.server_url).hostname or '127.0.0.1'
        return self.api_url or f'http://{host}:{MEDIAMTX_API_PORT}'

    def talk_path(self) -> str:
        """Where browsers publish talkback for this robot."""
        return f'{self.stream_key}/talk'


class Session(Protocol):
    """What the supervisor needs of an RTSP session (``RtspSession``)."""

    settings: PublishSettings
    last_progress: float
    frames_written: int
    fps: float
    bitrate_kbps: float

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def alive(self) -> bool: ...
    @property
    def exit_reason(self) -> str: ...


class Api(Protocol):
    def check(self) -> None: ...
    def path(self, name: str) -> PathState: ...


class Talkback(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class SessionParts:
    """Builds a session's parts for a target: MediaMTX's API, the RTSP session, talkback."""

    def __init__(self, publish: PublishSettings, talkback: bool,
                 on_talk: Callable[[bytes], None]) -> None:
        self.publish = publish  # encoder settings; the target replaces the server fields
        self.with_talkback = talkback
        self.on_talk = on_talk

    def api(self, target: ServerTarget) -> Optional[Api]:
        base = target.api_base()
        return None if base is None else MediaMtxApi(base, target.user, target.password,
                                                      ca_file=self.publish.ca_file)

    def session(self, target: ServerTarget) -> Session:
        return RtspSession(replace(self.publish, server_url=target.server_url,
                                   path=target.stream_key, user=target.user,
                                   password=target.password))

    def talkback(self, target: ServerTarget) -> Optional[Talkback]:
        if not self.with_talkback:
            return None
        hop = RtspAuthHop(target.server_url, target.user, target.password, self.publish.ca_file)
        return TalkbackReader(hop, target.talk_path(), self.on_talk)
