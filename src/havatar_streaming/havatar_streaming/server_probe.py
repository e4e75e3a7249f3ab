"""Test server-mode settings before they are saved: reach MediaMTX as the streaming node
would and say what failed (ROS-free, asyncio).

The steps, each with its own time limit: the address (``map_server_url``, and the same
encryption rules as the streaming node), the host name (DNS), a TCP connection to the RTSP
port (refused, timed out, unreachable), TLS for ``rtsps://`` (the certificate checked as
the streaming node checks it), then an RTSP ``OPTIONS`` (the server answers RTSP) and a
``DESCRIBE`` of the robot's path with its credentials (MediaMTX answers 401 for credentials it
refuses, within 2 s; 404 when nobody publishes there yet, which means the credentials passed;
an on-demand path -- Havatar's robot paths, see ``havatar_bringup.mediamtx`` -- holds a
DESCRIBE it let in until the robot publishes, so a DESCRIBE held past ``rtsp_timeout`` after
a prompt ``OPTIONS`` passed too), and, when the streaming node uses it, the MediaMTX API.
Nothing is published: a running stream on that path is not disturbed.
"""
from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

from .mediamtx_api import ApiError, MediaMtxApi
from .rtsp_auth_hop import default_port, tls_context
from .server_url import check_api_url, check_server_url, map_server_url
from .session_parts import ServerTarget

DNS_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 3.0
RTSP_TIMEOUT_S = 6.0  # MediaMTX waits 2 s before it answers refused credentials
MAX_HEAD_BYTES = 16 * 1024
HELD = 0  # _describe: the server holds the DESCRIBE (an on-demand path without its publisher)


@dataclass
class ProbeResult:
    """``ok`` and ``msg`` as the original API answers; ``error`` names the failed step:
    ``invalid``, ``dns``, ``refused``, ``timeout``, ``unreachable``, ``tls``, ``protocol``,
    ``unauthorized``, ``rtsp`` or ``api``.
    """

    ok: bool
    msg: str
    error: str = ''
    server_url: str = ''
    steps: list[str] = field(default_factory=list)  # what passed, in order

    def as_dict(self) -> dict[str, object]:
        return {'ok': self.ok, 'msg': self.msg, 'error': self.error, 'server_url': self.server_url,
                'steps': list(self.steps)}


class ProbeFailed(Exception):
    def __init__(self, error: str, msg: str) -> None:
        super().__init__(msg)
        self.error = error


@dataclass(frozen=True)
class ProbeSettings:
    """The entered settings and the streaming node's own that decide how it connects."""

    server_url: str
    stream_key: str
    password: str = field(repr=False, default='')
    user: str = ''                 # '' = the stream_key
    allow_unencrypted: bool = False
    api_url: str = ''              # as the streaming node's parameter
    ca_file: str = ''


async def probe(settings: ProbeSettings, dns_timeout: float = DNS_TIMEOUT_S,
                connect_timeout: float = CONNECT_TIMEOUT_S,
                rtsp_timeout: float = RTSP_TIMEOUT_S) -> ProbeResult:
    """Reach the server with ``settings``; never raises."""
    steps: list[str] = []
    url = settings.server_url
    try:
        url = map_server_url(settings.server_url)
        if not url:
            raise ProbeFailed('invalid', 'no server URL entered')
        if not settings.stream_key.strip('/ '):
            raise ProbeFailed('invalid', 'no stream key entered')
        user = settings.user or settings.stream_key
        target = ServerTarget(url, settings.stream_key, user, settings.password, settings.api_url)
        try:
            check_server_url(url, settings.allow_unencrypted)
            check_api_url(target.api_base(), settings.allow_unencrypted)
        except ValueError as exc:
            raise ProbeFailed('invalid', str(exc)) from None
        parts = urlsplit(url)
        host, port = parts.hostname or '', parts.port or default_port(parts.scheme)
        address = await _resolve(host, port, dns_timeout)
        steps.append(f'{host} is {address}')
        reader, writer = await _connect(host, address, port, parts.scheme == 'rtsps',
                                        settings.ca_file, connect_timeout)
        steps.append(f'connected to {host}:{port}' + (' (TLS certificate accepted)'
                                                     if parts.scheme == 'rtsps' else ''))
        try:
            netloc = f'[{host}]:{port}' if ':' in host else f'{host}:{port}'
            status = await _describe(reader, writer, f'{parts.scheme}://{netloc}',
                                     settings.stream_key.strip('/'), user, settings.password, rtsp_timeout)
        finally:
            writer.close()
        steps.append(f'RTSP credentials of {user!r} accepted' + {
            200: ' (the path is being published)',
            HELD: ' (the path waits for the robot to publish)'}.get(status, ''))
        base = target.api_base()
        if base is not None:
            await _check_api(base, user, settings.password, settings.ca_file)
            steps.append(f'MediaMTX API at {base} answers')
    except ProbeFailed as exc:
        return ProbeResult(False, str(exc), exc.error, url, steps)
    return ProbeResult(True, f'server reachable: {"; ".join(steps)}', '', url, steps)


async def _resolve(host: str, port: int, timeout: float) -> str:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except asyncio.TimeoutError:
        raise ProbeFailed('dns', f'the name {host} did not resolve within {timeout:g} s (DNS)') from None
    except socket.gaierror as exc:
        raise ProbeFailed('dns', f'the name {host} cannot be resolved (DNS): {exc.strerror}') from None
    return str(infos[0][4][0])


async def _connect(host: str, address: str, port: int, tls: bool, ca_file: str,
                   timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        context: Optional[ssl.SSLContext] = tls_context(ca_file) if tls else None
    except OSError as exc:
        raise ProbeFailed('tls', f'the CA file {ca_file} cannot be loaded: {exc.strerror or exc}') from None
    try:
        return await asyncio.wait_for(asyncio.open_connection(
            address, port, ssl=context, server_hostname=host if tls else None), timeout)
    except asyncio.TimeoutError:
        raise ProbeFailed('timeout', f'{host}:{port} did not answer within {timeout:g} s '
                                     '(a firewall, or the wrong host or port)') from None
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailed('tls', f'the TLS certificate of {host}:{port} is not accepted: '
                                 f'{exc.verify_message or exc}') from None
    except ssl.SSLError as exc:
        raise ProbeFailed('tls', f'TLS with {host}:{port} failed: {exc.reason or exc} '
                                 '(is it an RTSPS port?)') from None
    except ConnectionRefusedError:
        raise ProbeFailed('refused', f'{host}:{port} refused the connection (nothing listens '
                                     'there: MediaMTX down, or the wrong port)') from None
    except OSError as exc:
        raise ProbeFailed('unreachable', f'cannot reach {host}:{port}: {exc.strerror or exc}') from None


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str,
                   timeout: float) -> Optional[tuple[int, str]]:
    """Send one RTSP request ``head``; its status and status line, None when none came in
    ``timeout``.
    """
    writer.write(head.encode())
    try:
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), timeout)
    except asyncio.TimeoutError:
        return None
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        raise ProbeFailed('protocol', 'the server closed the connection: not an RTSP server '
                                      '(the wrong port?)') from None
    line = answer[:MAX_HEAD_BYTES].split(b'\r\n', 1)[0].decode('latin-1')
    version, _, rest = line.partition(' ')
    code = rest.split(' ', 1)[0]
    if not version.startswith('RTSP/') or not code.isdigit():
        raise ProbeFailed('protocol', f'the server did not answer in RTSP ({line[:60]!r}): '
                                      'the wrong port?')
    return int(code), line[len(version) + 1:]


async def _describe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, base: str,
                    path: str, user: str, password: str, timeout: float) -> int:
    """The status of an RTSP DESCRIBE of ``path`` with Basic credentials (200, 404, or
    ``HELD``: an on-demand path waits for its publisher), after an OPTIONS.
    """
    common = 'RTSP/1.0\r\nUser-Agent: havatar-probe\r\n'
    if await _request(reader, writer, f'OPTIONS {base}/{path} {common}CSeq: 1\r\n\r\n', timeout) is None:
        raise ProbeFailed('timeout', f'the server did not answer RTSP within {timeout:g} s')
    credentials = base64.b64encode(f'{user}:{password}'.encode()).decode()
    answer = await _request(reader, writer, f'DESCRIBE {base}/{path} {common}CSeq: 2\r\n'
                            f'Accept: application/sdp\r\nAuthorization: Basic {credentials}\r\n\r\n',
                            timeout)
    if answer is None:  # refused credentials are answered within 2 s: these passed
        return HELD
    status, line = answer
    if status == 401:
        raise ProbeFailed('unauthorized', f'the server refused the stream key {user!r} with '
                                          'this password (RTSP 401)')
    if status not in (200, 404):
        raise ProbeFailed('rtsp', f'the server answered {line!r} for path {path!r}')
    return status


async def _check_api(base: str, user: str, password: str, ca_file: str) -> None:
    api = MediaMtxApi(base, user, password, timeout=CONNECT_TIMEOUT_S, ca_file=ca_file)
    try:
        await asyncio.get_running_loop().run_in_executor(None, api.check)
    except ApiError as exc:
        raise ProbeFailed('api', f"{exc} (set the streaming node's api_url to 'none' when the API "
                                 'is not reachable from the robot)') from None
