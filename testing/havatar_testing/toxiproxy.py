"""Toxiproxy for tests: a real ``toxiproxy-server``, proxies on loopback, network faults.

A ``Proxy`` sits between a client and a server (the robot and the relay, the relay and
Redis); toxics added to it act on the live connections and on new ones. ``stream`` is the
direction a toxic acts on: ``'upstream'`` is client -> server, ``'downstream'`` is
server -> client (Toxiproxy's default), ``'both'`` adds one toxic per direction.

Toxiproxy behaviours worth knowing (v2.12.0):
- ``black_hole`` (timeout toxic with timeout 0) drops data and never closes; *removing* it
  closes the connections it held (upstream's cleanup does so), new ones then pass.
- ``reset_peer`` sends a TCP reset only on connections opened after it was added; on older
  connections it closes with a normal FIN.
- ``disable`` closes every connection and refuses new ones; ``enable`` listens again on the
  same port.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal

from havatar_bringup.processes import ManagedProcess, ProcessManager, find_program, free_port

Stream = Literal['upstream', 'downstream', 'both']
HOST = '127.0.0.1'


class ToxiproxyError(RuntimeError):
    """The Toxiproxy API refused a request (the message is the server's)."""


class ToxiproxyServer:
    """One ``toxiproxy-server`` on a free loopback port, started through ``processes``."""

    def __init__(self, processes: ProcessManager, port: int | None = None) -> None:
        self.port = port or free_port()
        self._processes = processes
        self.process: ManagedProcess | None = None

    def start(self, timeout: float = 10.0) -> 'ToxiproxyServer':
        """Start and wait until the API answers ``/version``."""
        self.process = self._processes.start(
            'toxiproxy', [find_program('toxiproxy-server'), '-host', HOST, '-port', str(self.port)],
            env={'LOG_LEVEL': 'info'})
        self.process.wait_for_http(self.url('/version'), timeout=timeout,
                                   ok=lambda status: status == 200)
        self.version()  # something else answering on the port would fail here
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def url(self, path: str) -> str:
        return f'http://{HOST}:{self.port}{path}'

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; the decoded JSON answer, or None for an empty one."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url(path), data=data, method=method,
                                         headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raise ToxiproxyError(f'{method} {path} -> {exc.code}: '
                                 f'{exc.read().decode(errors="replace").strip()}') from None
        return json.loads(text) if text.strip() else None

    def version(self) -> str:
        return str(self.request('GET', '/version')['version'])

    def proxy(self, name: str, upstream_port: int, upstream_host: str = HOST) -> 'Proxy':
        """A new enabled proxy to ``upstream_host:upstream_port`` on a free loopback port."""
        answer = self.request('POST', '/proxies', {
            'name': name, 'listen': f'{HOST}:0', 'upstream': f'{upstream_host}:{upstream_port}',
            'enabled': True})
        port = int(answer['listen'].rsplit(':', 1)[1])  # Toxiproxy picked it and listens
        return Proxy(self, name, port, answer['upstream'])

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request('POST', '/reset')


@dataclass
class Toxic:
    """Toxics added by one call (one per direction); ``remove`` takes them all away."""

    proxy: 'Proxy'
    names: list[str]

    def update(self, **attributes: Any) -> None:
        """Change attributes (``latency=...``, ``rate=...``) on the live toxics."""
        for name in self.names:
            self.proxy.server.request('PATCH', self.proxy.path(f'/toxics/{name}'),
                                      {'attributes': attributes})

    def remove(self) -> None:
        for name in self.names:
            self.proxy.remove_toxic(name)


@dataclass
class Proxy:
    """A proxy listening on ``HOST:port``; clients connect there instead of upstream."""

    server: ToxiproxyServer
    name: str
    port: int
    upstream: str
    _count: int = field(default=0, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def path(self, suffix: str = '') -> str:
        return f'/proxies/{self.name}{suffix}'

    # -- toxics -------------------------------------------------------------------------
    def add_toxic(self, kind: str, attributes: dict[str, Any], stream: Stream = 'downstream',
                  toxicity: float = 1.0) -> Toxic:
        """Add a toxic of type ``kind``; ``toxicity`` is the share of connections hit."""
        streams = ('upstream', 'downstream') if stream == 'both' else (stream,)
        names = []
        for direction in streams:
            self._count += 1
            name = f'{kind}_{direction}_{self._count}'
            self.server.request('POST', self.path('/toxics'), {
                'name': name, 'type': kind, 'stream': direction, 'toxicity': toxicity,
                'attributes': attributes})
            names.append(name)
        return Toxic(self, names)

    def remove_toxic(self, name: str) -> None:
        self.server.request('DELETE', self.path(f'/toxics/{name}'))

    def toxics(self) -> list[dict[str, Any]]:
        return list(self.server.request('GET', self.path('/toxics')))

    def latency(self, ms: int, jitter: int = 0, stream: Stream = 'downstream') -> Toxic:
        """Delay data by ``ms`` +- ``jitter`` milliseconds."""
        return self.add_toxic('latency', {'latency': ms, 'jitter': jitter}, stream)

    def bandwidth(self, kilobytes_per_s: int, stream: Stream = 'downstream') -> Toxic:
        """Limit the rate to ``kilobytes_per_s`` (Toxiproxy's KB: 1000 bytes)."""
        return self.add_toxic('bandwidth', {'rate': kilobytes_per_s}, stream)

    def black_hole(self, stream: Stream = 'both') -> Toxic:
        """Drop all data and keep connections open (a silent network partition)."""
        return self.add_toxic('timeout', {'timeout': 0}, stream)

    def timeout(self, ms: int, stream: Stream = 'both') -> Toxic:
        """Drop all data and close each connection ``ms`` milliseconds after it starts."""
        return self.add_toxic('timeout', {'timeout': ms}, stream)

    def reset_peer(self, after_ms: int = 0, stream: Stream = 'downstream') -> Toxic:
        """Reset (TCP RST) a connection ``after_ms`` after data first arrives on it.

        The reset reaches connections opened after this call; older ones get a FIN.
        """
        return self.add_toxic('reset_peer', {'timeout': after_ms}, stream)

    def slow_close(self, delay_ms: int, stream: Stream = 'downstream') -> Toxic:
        """Delay the close of a connection by ``delay_ms``."""
        return self.add_toxic('slow_close', {'delay': delay_ms}, stream)

    def slicer(self, average_size: int, size_variation: int = 0, delay_us: int = 0,
               stream: Stream = 'downstream') -> Toxic:
        """Cut data into pieces of about ``average_size`` bytes, ``delay_us`` apart."""
        return self.add_toxic('slicer', {'average_size': average_size,
                                         'size_variation': size_variation,
                                         'delay': delay_us}, stream)

    def limit_data(self, max_bytes: int, stream: Stream = 'downstream') -> Toxic:
        """Close a connection once ``max_bytes`` have passed in ``stream``."""
        return self.add_toxic('limit_data', {'bytes': max_bytes}, stream)

    # -- the proxy itself ---------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return dict(self.server.request('GET', self.path()))

    def disable(self) -> None:
        """Close every connection and stop listening (the service is down)."""
        self.server.request('PATCH', self.path(), {'enabled': False})

    def enable(self) -> None:
        """Listen again on the same port."""
        self.server.request('PATCH', self.path(), {'enabled': True})

    def clear(self) -> None:
        """Remove every toxic and enable the proxy: a clean pipe again."""
        for toxic in self.toxics():
            self.remove_toxic(toxic['name'])
        if not self.info()['enabled']:
            self.enable()

    def delete(self) -> None:
        self.server.request('DELETE', self.path())
