"""MediaMTX's settings, written once, and the configurations made from them.

``SETTINGS`` is how Havatar runs MediaMTX: protocols, timeouts, logging, recording, the
robot paths. ``docker/mediamtx.yml`` ships them with the server's addresses, the relay
hook and RTSPS only (``rtsps_only``: robots elsewhere publish encrypted); ``local_config``
gives the demo and the tests the same settings on loopback ports, in clear RTSP unless
given ``rtsps_only``'s settings. A test keeps ``docker/mediamtx.yml`` equal to
``SETTINGS`` outside ``ADDRESS_KEYS``, ``AUTH_KEYS`` and ``TLS_KEYS``.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from .processes import find_program, free_port

ROBOT_PATH = '~^[A-Za-z0-9_-]{1,64}$'          # <robot id>: the robot's camera and microphone
TALK_PATH = '~^[A-Za-z0-9_-]{1,64}/talk$'      # <robot id>/talk: a browser's push-to-talk
# Robots encode only while someone reads (the relay tells them; havatar_relay's
# server/watchers.py). A robot path is "on demand" so that MediaMTX holds a reader that
# arrives while the robot is idle until the robot publishes (at most the start timeout)
# instead of answering 404. The relay's authentication hook is what wakes the robot; the
# command itself does nothing (the container's MediaMTX binary printing its version).
# The talk path is on demand too: the robot's talkback reader waits there for a browser to
# talk (under readTimeout) instead of starting a new ffmpeg every two seconds, which was
# most of an idle robot's CPU.
ON_DEMAND_COMMAND = '/mediamtx --version'
ON_DEMAND = {'runOnDemand': ON_DEMAND_COMMAND, 'runOnDemandStartTimeout': '8s',
             'runOnDemandCloseAfter': '10s'}
TALK_ON_DEMAND = ON_DEMAND

SETTINGS: dict[str, Any] = {
    'logLevel': 'info',
    'logDestinations': ['stdout'],
    'readTimeout': '10s',
    'writeTimeout': '10s',
    'api': True,
    'metrics': True,
    'pprof': False,
    'playback': True,   # serves recordings (list, get) to the relay, which has the admin token
    'rtsp': True,
    'rtspTransports': ['tcp'],
    'rtmp': False,
    'srt': False,
    'hls': True,
    'hlsVariant': 'lowLatency',
    'webrtc': True,
    # recording is off until the relay turns it on for one robot (a path of its own, whose
    # record setting MediaMTX changes without dropping the publisher); relative to
    # MediaMTX's working directory: /recordings in the container, the run dir in the demo
    'pathDefaults': {'record': False, 'recordPath': './recordings/%path/%Y-%m-%d_%H-%M-%S-%f'},
    'paths': {ROBOT_PATH: ON_DEMAND, TALK_PATH: TALK_ON_DEMAND},
}

# where it listens and whom it tells to connect where: differs per deployment
ADDRESS_KEYS = ('apiAddress', 'metricsAddress', 'playbackAddress', 'rtspAddress', 'rtspsAddress', 'hlsAddress',
                'hlsAllowOrigin',
                'webrtcAddress', 'webrtcAllowOrigin', 'webrtcLocalUDPAddress',
                'webrtcLocalTCPAddress', 'webrtcIPsFromInterfaces', 'webrtcAdditionalHosts',
                'webrtcICEServers2')
AUTH_KEYS = ('authMethod', 'authHTTPAddress', 'authHTTPExclude', 'authInternalUsers')
# whether robots publish encrypted, and with which certificate
TLS_KEYS = ('rtspEncryption', 'rtspServerKey', 'rtspServerCert')
CLEAR_RTSP: dict[str, Any] = {'rtspEncryption': 'no'}  # loopback only (robots refuse it elsewhere)
SHIPPED_CERT, SHIPPED_KEY = '/certs/server.crt', '/certs/server.key'  # docker/certs, mounted


def rtsps_only(cert: str = SHIPPED_CERT, key: str = SHIPPED_KEY) -> dict[str, Any]:
    """RTSPS only (on ``rtspsAddress``), with the PEM certificate and key at these paths
    (MediaMTX reloads them when they change).
    """
    return {'rtspEncryption': 'strict', 'rtspServerKey': str(key), 'rtspServerCert': str(cert)}


def relay_auth(hook_url: str) -> dict[str, Any]:
    """Authentication through the relay server's hook, the control API included: the hook
    admits it only with the relay's admin token (MediaMTX tells the hook neither the path
    nor the method of an API request, so no robot or user token may open it). Metrics
    (read-only) are left to the network: loopback here, the Compose network in docker/.
    """
    return {'authMethod': 'http', 'authHTTPAddress': hook_url,
            'authHTTPExclude': [{'action': 'metrics'}]}


@dataclass
class MediaMtxPorts:
    """Listener ports of one local instance, all on 127.0.0.1 (free ones by default)."""

    rtsp: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    hls: int = field(default_factory=free_port)
    playback: int = field(default_factory=free_port)
    webrtc: int = field(default_factory=free_port)
    webrtc_udp: int = field(default_factory=lambda: free_port(kind=socket.SOCK_DGRAM))
    rtsps: int = field(default_factory=free_port)  # listens only with rtsps_only's settings


def as_shipped(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its on-demand commands as the container runs them (``local_config``
    runs the MediaMTX binary found here instead).
    """
    paths = {name: {**conf, 'runOnDemand': ON_DEMAND_COMMAND} if 'runOnDemand' in conf else conf
             for name, conf in config.get('paths', {}).items()}
    return {**config, 'paths': paths} if 'paths' in config else config


def local_config(ports: MediaMtxPorts, auth: dict[str, Any],
                 tls: dict[str, Any] | None = None) -> dict[str, Any]:
    """``SETTINGS`` listening only on 127.0.0.1 at ``ports``, with ``auth`` (``AUTH_KEYS``)
    and ``tls`` (``TLS_KEYS``; default: clear RTSP, loopback being the only listener).

    WebRTC offers loopback candidates only (no STUN, no TCP listener); browsers of any
    origin may connect, as the demo's two web UIs are on other ports than MediaMTX.
    """
    host = '127.0.0.1'
    unknown = set(auth) - set(AUTH_KEYS)
    if unknown:
        raise ValueError(f'not authentication settings: {", ".join(sorted(unknown))}')
    tls = CLEAR_RTSP if tls is None else tls
    if set(tls) - set(TLS_KEYS):
        raise ValueError(f'not TLS settings: {", ".join(sorted(set(tls) - set(TLS_KEYS)))}')
    addresses: dict[str, Any] = {
        'apiAddress': f'{host}:{ports.api}', 'metricsAddress': f'{host}:{ports.metrics}',
        'playbackAddress': f'{host}:{ports.playback}',
        'rtspAddress': f'{host}:{ports.rtsp}', 'rtspsAddress': f'{host}:{ports.rtsps}',
        'hlsAddress': f'{host}:{ports.hls}',
        'hlsAllowOrigin': '*', 'webrtcAddress': f'{host}:{ports.webrtc}',
        'webrtcAllowOrigin': '*', 'webrtcLocalUDPAddress': f'{host}:{ports.webrtc_udp}',
        'webrtcLocalTCPAddress': '', 'webrtcIPsFromInterfaces': False,
        'webrtcAdditionalHosts': [host], 'webrtcICEServers2': [],
    }
    # the on-demand command as the container's, with the MediaMTX found here
    command = ON_DEMAND_COMMAND.replace('/mediamtx', str(find_program('mediamtx')), 1)
    paths = {name: {**conf, 'runOnDemand': command} if 'runOnDemand' in conf else conf
             for name, conf in SETTINGS['paths'].items()}
    return {**SETTINGS, **addresses, **auth, **tls, 'paths': paths}
