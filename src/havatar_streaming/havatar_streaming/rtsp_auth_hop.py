"""A local hop that keeps the stream password out of ffmpeg's command line (ROS-free).

ffmpeg cannot take RTSP credentials but in its URL, and its command line is readable by
every local user (``ps``, ``/proc/<pid>/cmdline``). So ffmpeg talks RTSP to this hop on
``127.0.0.1`` with no credentials; the hop forwards every byte to the real server (over
TLS for ``rtsps://``) and adds ``Authorization: Basic`` to each RTSP request ffmpeg sends
(MediaMTX's default ``rtspAuthMethods: [basic]``). The password stays in this process.
The server's certificate is checked (trust store, or ``ca_file``, and host name) before a
byte of RTSP is sent; a failed check is kept in ``last_error``.
Only connections from this process's own user are served (the owner of a loopback
socket is in ``/proc/net/tcp``), so another local user cannot borrow the credentials.
"""
from __future__ import annotations

import asyncio
import base64
import os
import ssl
import threading
from typing import Optional
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
RTSP_PORT = 8554  # when an rtsp:// URL names none
RTSPS_PORT = 8322  # when an rtsps:// URL names none (MediaMTX's rtspsAddress)
START_TIMEOUT_S = 5.0
STOP_ROUNDS, STOP_ROUND_S = 100, 0.01  # closing connections at stop: 1 s at most
QUIET_ROUNDS = 3  # loop rounds without a task before the hop counts as closed
AUTHORIZATION = b'authorization:'


def add_authorization(head: bytes, authorization: bytes, local: bytes, upstream: bytes) -> bytes:
    """An RTSP request head (up to, without, the blank line) with ``authorization`` as its
    only Authorization header and the hop's address (``local``) in its request line
    replaced by the server's (``upstream``).
    """
    lines = [line for line in head.split(b'\r\n') if not line.lower().startswith(AUTHORIZATION)]
    lines[0] = lines[0].replace(local, upstream, 1)
    return b'\r\n'.join([lines[0], b'Authorization: ' + authorization, *lines[1:]])


def content_length(head: bytes) -> int:
    for line in head.split(b'\r\n')[1:]:
        name, _, value = line.partition(b':')
        if name.strip().lower() == b'content-length':
            return int(value.strip())
    return 0


def default_port(scheme: str) -> int:
    return RTSPS_PORT if scheme == 'rtsps' else RTSP_PORT


def tls_context(ca_file: str = '') -> ssl.SSLContext:
    """TLS that checks the server: its certificate chains to the system's trust store, or to
    ``ca_file`` (PEM) when given, and names the host. OSError when ``ca_file`` is unusable.
    """
    return ssl.create_default_context(cafile=ca_file or None)


def connect_error(host: str, port: int, exc: OSError) -> str:
    """What went wrong reaching ``host:port``, for ``last_error`` and the log."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f'TLS certificate of {host}:{port} not accepted: {exc.verify_message or exc}'
    if isinstance(exc, ssl.SSLError):
        return f'TLS with {host}:{port} failed: {exc.reason or exc}'
    return f'cannot reach {host}:{port}: {exc.strerror or exc}'


def socket_owner(host: str, port: int, table: str = '/proc/net/tcp') -> Optional[int]:
    """The uid owning the local IPv4 TCP socket ``host:port`` (None if not found)."""
    address = ''.join(f'{int(b):02X}' for b in reversed(host.split('.'))) + f':{port:04X}'
    try:
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == address:
                    return int(fields[7])
    except OSError:
        return None
    return None


class RtspAuthHop:
    """Serves ``url(path)`` on 127.0.0.1, forwarding to ``server_url`` as ``user``; for
    ``rtsps://`` over TLS checked against the system's trust store or ``ca_file``.
    """

    def __init__(self, server_url: str, user: str, password: str, ca_file: str = '') -> None:
        parts = urlsplit(server_url)
        self.host = parts.hostname or '127.0.0.1'
        self.port = parts.port or default_port(parts.scheme)
        self.tls = parts.scheme == 'rtsps'
        self.ca_file = ca_file
        token = base64.b64encode(f'{user}:{password}'.encode()).decode()
        self._authorization = f'Basic {token}'.encode() if user else b''
        host = f'[{self.host}]' if ':' in self.host else self.host
        self._upstream = f'{parts.scheme}://{host}:{self.port}'.encode()  # ffmpeg's request lines
        self._tls: Optional[ssl.SSLContext] = None  # made at start (reads ca_file)
        self.local_port = 0
        self.refused = 0  # connections from other users
        self.last_error = ''  # why the server could not be reached (certificate, network)
        self._loop: Optional[asyncio.AbstractEventLoop] = None  # one of its own, while started
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = False

    def url(self, path: str) -> str:
        """The credential-free URL ffmpeg uses for ``path`` on the server."""
        return f'rtsp://127.0.0.1:{self.local_port}/{path}'

    def start(self) -> None:
        """Listen on a free loopback port (``url`` names it), serving from a thread.
        OSError when ``ca_file`` cannot be read.
        """
        if self.tls:
            self._tls = tls_context(self.ca_file)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name='rtsp-hop', daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(START_TIMEOUT_S)

    def stop(self) -> None:
        """Close the port and every connection; end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(START_TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
            self._loop = self._thread = None

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, '127.0.0.1', 0)
        self.local_port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        """Close every connection until no handler is left (1 s at most), then the port.

        The port closes last, with no connection being accepted: an accept under way when
        the server closes leaks its socket (Python 3.11).
        """
        self._stopping = True  # a handler starting from now on closes its connection at once
        quiet = 0  # rounds without a task: a connection being accepted takes a few
        for _ in range(STOP_ROUNDS):
            for writer in list(self._writers):
                writer.close()
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if others:
                quiet = 0
                await asyncio.wait(others, timeout=STOP_ROUND_S)
            elif (quiet := quiet + 1) > QUIET_ROUNDS:
                break
            else:
                await asyncio.sleep(0)  # closed transports release their sockets here
        else:
            for task in others:
                task.cancel()
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        writers = [client_out]
        self._writers.add(client_out)
        try:
            peer_host, peer_port = client_out.get_extra_info('peername')[:2]
            if self._stopping:
                return
            if socket_owner(peer_host, peer_port) != os.getuid():
                self.refused += 1
                return
            try:
                server_in, server_out = await asyncio.open_connection(
                    self.host, self.port, ssl=self._tls,
                    server_hostname=self.host if self.tls else None)
            except OSError as exc:  # ssl.SSLError included: nothing was sent
                self.last_error = connect_error(self.host, self.port, exc)
                return
            self.last_error = ''
            writers.append(server_out)
            self._writers.add(server_out)
            if self._stopping:
                return
            upward = asyncio.ensure_future(self._requests(client_in, server_out))
            downward = asyncio.ensure_future(_copy(server_in, client_out))
            try:
                await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                upward.cancel()
                downward.cancel()
                await asyncio.gather(upward, downward, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                asyncio.CancelledError):  # the peer went, the request was bad, the hop stops
            pass
        finally:
            for writer in writers:
                writer.close()
                self._writers.discard(writer)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """From ffmpeg: RTSP requests get the credentials, interleaved data ($) passes."""
        local = f'rtsp://127.0.0.1:{self.local_port}'.encode()
        while True:
            first = await reader.readexactly(1)
            if first == b'$':  # interleaved frame: $, channel, 16-bit length, payload
                header = await reader.readexactly(3)
                writer.write(first + header + await reader.readexactly(int.from_bytes(header[1:], 'big')))
            else:
                head = first + await reader.readuntil(b'\r\n\r\n')
                if len(head) > MAX_HEADER_BYTES:
                    raise ValueError('RTSP request head too long')
                body = await reader.readexactly(content_length(head))
                if self._authorization:
                    head = add_authorization(head[:-4], self._authorization, local, self._upstream) + b'\r\n\r\n'
                writer.write(head + body)
            await writer.drain()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
