"""Which server addresses the streaming node accepts (ROS-free): what crosses a network is
encrypted. Plain ``rtsp://`` (and the MediaMTX API over ``http://``) carry the stream
password and the video in clear, so they are refused for a host that is not loopback
unless ``allow_unencrypted`` says so. Only the address's literal host counts: a name
other than ``localhost`` is not resolved, so it counts as remote.
"""
from __future__ import annotations

import ipaddress
from typing import Optional
from urllib.parse import urlsplit

RTSP_SCHEMES = ('rtsp', 'rtsps')
ENCRYPTED_SCHEMES = ('rtsps', 'https')
# the Flask robot's UI took the server's web address; it published to the same host
WEB_TO_RTSP = {'https': ('rtsps', 8322), 'http': ('rtsp', 8554)}  # MediaMTX's default ports


def is_loopback(host: Optional[str]) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def in_clear(url: str) -> bool:
    """True when ``url`` is unencrypted to a host that is not loopback."""
    parts = urlsplit(url)
    return parts.scheme not in ENCRYPTED_SCHEMES and not is_loopback(parts.hostname)


def check_server_url(value: str, allow_unencrypted: bool) -> str:
    """``value`` if it is a usable ``server_url``; ValueError naming the parameter."""
    parts = urlsplit(value)
    if parts.scheme not in RTSP_SCHEMES or not parts.hostname:
        raise ValueError(f'parameter server_url={value!r} must be rtsp://host:port or '
                         'rtsps://host:port')
    if in_clear(value) and not allow_unencrypted:
        raise ValueError(
            f'parameter server_url={value!r} is unencrypted RTSP to a host that is not loopback '
            '(the stream password and video would cross the network in clear): use '
            f'rtsps://{parts.hostname}:<rtspsAddress port> (server_ca_file to trust a private '
            'CA), or set allow_unencrypted: true')
    return value


def check_api_url(api_base: Optional[str], allow_unencrypted: bool) -> None:
    """ValueError naming ``api_url`` when the API (``api_base``, None = none) would get the
    stream password in clear over the network.
    """
    if api_base is not None and in_clear(api_base) and not allow_unencrypted:
        raise ValueError(
            f'parameter api_url: the MediaMTX API at {api_base} would get the stream password '
            "in clear; set api_url to an https:// address or 'none', or set "
            'allow_unencrypted: true')


def map_server_url(value: str) -> str:
    """``value`` as an RTSP(S) ``server_url``: ``https://host[:port][/...]`` (as the Flask
    robot's UI wrote it) becomes ``rtsps://host:8322``, ``http://host`` ``rtsp://host:8554``;
    ``rtsp(s)://`` and ``''`` are kept. ValueError with what is accepted for anything else.
    """
    value = value.strip()
    if not value:
        return ''
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise ValueError(f'server_url {value!r} is not a valid address: {exc}') from None
    if parts.scheme in RTSP_SCHEMES and host:
        return value
    if parts.scheme in WEB_TO_RTSP and host:
        scheme, port = WEB_TO_RTSP[parts.scheme]
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    raise ValueError(f'server_url {value!r} must be rtsps://host:port (or rtsp://), or the '
                     "server's https:// address (published to as rtsps://host:8322)")
