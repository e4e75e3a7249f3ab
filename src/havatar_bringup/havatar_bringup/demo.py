"""The whole Havatar system on this machine, simulated hardware included (executable ``demo``).

Runs the robot graph of ``havatar_bringup.graph`` (the same nodes, parameters and
arguments as ``robot.launch.py sim:=true``) plus the server side: MediaMTX (authenticating
through the relay), Redis and the cloud relay server, all on localhost. Prints the URLs of
the robot's local web UI and the relay's web UI with a demo token; Ctrl-C, SIGTERM or
SIGHUP (the terminal closed) stops everything.

No process it starts outlives it: each gets SIGTERM from the kernel when the demo ends,
however it ends (even SIGKILL), and stops as on Ctrl-C. A closed stdout (``demo | tee log``
stopped by Ctrl-C) only silences the demo; it still stops everything.

    demo [--headless] [--duration SECONDS] [--run-dir DIR] [--one-process|--no-one-process]
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TextIO

import yaml

from .graph import CONTAINER_EXECUTOR, EXECUTORS, GraphArgs, NodeEntry, command_line, dds_profile, find_executable, \
    robot_graph
from .mediamtx import MediaMtxPorts, local_config, relay_auth, rtsps_only
from .processes import ProcessManager, find_program, free_port

ROBOT_ID = 'demo-robot'
STARTUP_TIMEOUT_S = 30.0
WATCH_PERIOD_S = 0.5
# The robot's nodes in one robot_container: the idle robot side takes 180 MiB against 871 MiB
# as a process per node, at about the same CPU (20.7 against 17.0 % of a core), and the image
# hop costs about 5 ms more (container_benchmark.py); --no-one-process runs a process per node.
DEMO_ONE_PROCESS = True


def any_status(status: int) -> bool:
    """Readiness for the demo's servers: any HTTP answer at all."""
    return True


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(Exception):
    """A stop signal arrived while the demo was starting."""


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set ``requested``; nothing is raised from the handler, so
    no signal can interrupt stopping. Start-up polls ``check`` to give up early.
    """

    def __init__(self) -> None:
        self.requested: Optional[int] = None
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested is None:
            self.requested = signum

    def check(self) -> None:
        if self.requested is not None:
            raise StopRequested(signal.Signals(self.requested).name)


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at /dev/null (what it still buffers goes there too)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def say(text: str, error: bool = False) -> None:
    """Print a line of the demo's output; never raises.

    The first failed write (EPIPE: the reader of a pipe went away; EIO: the terminal was
    closed) silences that stream for good, so output can never abort stopping the demo.
    """
    stream = sys.stderr if error else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except OSError:
        _silence(stream)


@dataclass
class Demo:
    """What the demo's processes share: where they listen, their secrets, their logs."""

    run_dir: Path
    domain_id: int
    ui: int = field(default_factory=lambda: free_port(8080))
    mjpeg: int = field(default_factory=lambda: free_port(8081))
    relay: int = field(default_factory=lambda: free_port(8090))
    redis: int = field(default_factory=lambda: free_port(6390))
    mediamtx: MediaMtxPorts = field(default_factory=lambda: MediaMtxPorts(
        rtsp=free_port(8554), api=free_port(9997), metrics=free_port(9998), hls=free_port(8888),
        playback=free_port(9996),
        webrtc=free_port(8889), webrtc_udp=free_port(8189, kind=socket.SOCK_DGRAM)))
    robot_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    user_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))  # MediaMTX's API
    media_cert: str = ''  # a PEM certificate (and its .key beside it): MediaMTX speaks RTSPS only

    def environment(self) -> dict[str, str]:
        """The demo's processes' environment: an isolated ROS domain and the secrets."""
        profile = dds_profile()
        env = {**os.environ, 'ROS_DOMAIN_ID': str(self.domain_id),
               'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PYTHONUNBUFFERED': '1',
               'FASTRTPS_DEFAULT_PROFILES_FILE': profile, 'FASTDDS_DEFAULT_PROFILES_FILE': profile,
               'HAVATAR_ACCESS_TOKEN': self.access_token, 'HAVATAR_ROBOT_TOKEN': self.robot_token,
               'HAVATAR_STREAM_PASSWORD': self.robot_token}
        if os.environ.get('ROS_DISTRO') == 'humble':
            env['ROS_LOCALHOST_ONLY'] = '1'
        return env

    def mediamtx_config(self) -> dict[str, Any]:
        """Havatar's MediaMTX settings on this demo's ports, authenticating through its relay."""
        tls = rtsps_only(self.media_cert, str(Path(self.media_cert).with_suffix('.key'))) if self.media_cert else None
        return local_config(self.mediamtx, relay_auth(f'http://127.0.0.1:{self.relay}/mediamtx/auth'), tls)

    @property
    def stream_url(self) -> str:
        """Where the robot publishes (RTSPS with ``media_cert``, trusted as its CA)."""
        if self.media_cert:
            return f'rtsps://127.0.0.1:{self.mediamtx.rtsps}'
        return f'rtsp://127.0.0.1:{self.mediamtx.rtsp}'

    @property
    def local_ui(self) -> str:
        return f'http://127.0.0.1:{self.ui}/#robot={ROBOT_ID}&token={self.access_token}'

    @property
    def server_ui(self) -> str:
        return f'http://127.0.0.1:{self.relay}/#robot={ROBOT_ID}&token={self.user_token}'


def start_servers(demo: Demo, processes: ProcessManager) -> None:
    """Redis, the cloud relay server and MediaMTX (authenticating through the relay)."""
    run_dir = demo.run_dir
    (run_dir / 'relay.yaml').write_text(yaml.safe_dump({
        'robots': {ROBOT_ID: {'token': demo.robot_token}},
        'users': {'demo': {'token': demo.user_token, 'robots': [ROBOT_ID], 'record': True}}}))
    redis = processes.start('redis', [find_program('redis-server'), '--port', str(demo.redis),
                                      '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                                      '--dir', run_dir])
    redis.wait_for_output('Ready to accept connections', timeout=STARTUP_TIMEOUT_S)
    relay_server = find_executable(NodeEntry('havatar_relay', 'relay_server', 'relay_server'))
    if relay_server is None:
        raise RuntimeError('havatar_relay relay_server is not installed (colcon build)')
    # installable alone, the relay server imports no Havatar package: the preexec's
    # PR_SET_PDEATHSIG (kept across exec) is all it needs to die with the demo
    relay = processes.start('relay_server', [
        relay_server, '--config', run_dir / 'relay.yaml', '--host', '127.0.0.1',
        '--port', str(demo.relay), '--redis-url', f'redis://127.0.0.1:{demo.redis}/0',
        '--instance-id', 'demo'],
        # no proxy in front: the web UI finds MediaMTX's WebRTC and HLS servers here
        env={'HAVATAR_RELAY_WEBRTC_URL': f'http://127.0.0.1:{demo.mediamtx.webrtc}',
             'HAVATAR_RELAY_HLS_URL': f'http://127.0.0.1:{demo.mediamtx.hls}',
             # recording from the web UI: MediaMTX's API and playback with the admin token
             'HAVATAR_RELAY_ADMIN_TOKEN': demo.admin_token,
             'HAVATAR_RELAY_MEDIAMTX_API_URL': f'http://127.0.0.1:{demo.mediamtx.api}',
             'HAVATAR_RELAY_MEDIAMTX_PLAYBACK_URL': f'http://127.0.0.1:{demo.mediamtx.playback}'})
    relay.wait_for_http(f'http://127.0.0.1:{demo.relay}/health', STARTUP_TIMEOUT_S, any_status)
    (run_dir / 'mediamtx.yml').write_text(yaml.safe_dump(demo.mediamtx_config()))
    mediamtx = processes.start('mediamtx', [find_program('mediamtx'), run_dir / 'mediamtx.yml'],
                               cwd=run_dir)  # recordings: <run dir>/recordings
    mediamtx.wait_for_http(f'http://127.0.0.1:{demo.mediamtx.api}/v3/paths/list',
                           STARTUP_TIMEOUT_S, any_status)


def start_robot(demo: Demo, processes: ProcessManager, one_process: bool = DEMO_ONE_PROCESS,
                executor: str = CONTAINER_EXECUTOR) -> None:
    """The robot: the same graph as ``robot.launch.py sim:=true``, in server mode."""
    mtx = demo.mediamtx
    graph_args = GraphArgs(sim=True, server_mode=True, robot_id=ROBOT_ID,
                           relay_url=f'ws://127.0.0.1:{demo.relay}/ws',
                           sim_dir=str(demo.run_dir / 'sim'), one_process=one_process,
                           container_executor=executor)
    graph_args.extra = {
        'streaming_node': {'mjpeg_port': demo.mjpeg, 'mjpeg_host': '127.0.0.1',
                           'server_url': demo.stream_url,
                           'api_url': 'none',  # the API needs the admin token, as on a server
                           'stream_user': ROBOT_ID,
                           'settings_file': str(demo.run_dir / 'server_mode.json'),
                           **({'server_ca_file': demo.media_cert} if demo.media_cert else {})},
        'relay_node': {'http_port': demo.ui, 'http_host': '127.0.0.1',
                       'mjpeg_port': demo.mjpeg,
                       'whep_base_url': f'http://127.0.0.1:{mtx.webrtc}',
                       'settings_file': str(demo.run_dir / 'server_mode.json')},
    }
    (demo.run_dir / 'sim').mkdir(exist_ok=True)
    for entry in robot_graph(graph_args):
        processes.interrupt()
        executable = find_executable(entry)
        if executable is None:
            raise RuntimeError(f'{entry.package} {entry.executable} is not installed (colcon build)')
        started = processes.start(entry.name, command_line(entry, executable))
        if entry.ready_output:
            started.wait_for_output(entry.ready_output, timeout=STARTUP_TIMEOUT_S)
    relay_node = next(p for p in processes.processes if p.name in ('relay_node', 'robot_container'))
    relay_node.wait_for_http(f'http://127.0.0.1:{demo.ui}/', STARTUP_TIMEOUT_S, any_status)


def announce(demo: Demo, headless: bool) -> None:
    say('\nHavatar demo running (simulated robot + MediaMTX + Redis + relay server).\n'
        f'  robot web UI (local mode):  {demo.local_ui}\n'
        f'  relay web UI (server mode): {demo.server_ui}\n'
        f'  demo user token: {demo.user_token}\n'
        f'  logs: {demo.run_dir}\n'
        'Press Ctrl-C to stop.')
    if not headless and (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        import webbrowser
        webbrowser.open(demo.local_ui)


def watch(processes: ProcessManager, signals: StopSignals, duration: Optional[float]) -> int:
    """Until a stop signal or the end of ``duration``: 0; 1 if a process died first."""
    deadline = time.monotonic() + duration if duration else None
    while signals.requested is None and (deadline is None or time.monotonic() < deadline):
        dead = processes.exited()
        if dead is not None:
            say(f'demo: {dead.name} stopped unexpectedly; see {dead.log_path}', error=True)
            return 1
        time.sleep(WATCH_PERIOD_S)
    return 0  # asked to stop (by a signal or --duration): a normal end


def parse_options(args: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--headless', action='store_true', help='do not open a browser')
    parser.add_argument('--duration', type=float, help='stop after this many seconds')
    parser.add_argument('--run-dir', type=Path, help='logs and state (default: a new temp dir)')
    parser.add_argument('--domain-id', type=int, default=int(os.environ.get('ROS_DOMAIN_ID', '42')))
    parser.add_argument('--one-process', action=argparse.BooleanOptionalAction, default=DEMO_ONE_PROCESS,
                        help="the robot's nodes in one process (launch argument one_process)")
    parser.add_argument('--container-executor', choices=EXECUTORS, default=CONTAINER_EXECUTOR,
                        help="that process's executor (launch argument container_executor)")
    return parser.parse_args(args)


def main(args: Optional[list[str]] = None) -> int:
    options = parse_options(args)
    run_dir = options.run_dir or Path(tempfile.mkdtemp(prefix='havatar-demo-'))
    run_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(run_dir, options.domain_id)
    signals = StopSignals()
    # every process is started on this (the main) thread, which ends only with the demo:
    # the kernel's SIGTERM on the demo's end (PR_SET_PDEATHSIG) follows the forking thread
    processes = ProcessManager(run_dir, demo.environment(), die_with_parent=True,
                               interrupt=signals.check)
    try:
        start_servers(demo, processes)
        start_robot(demo, processes, options.one_process, options.container_executor)
        announce(demo, options.headless)
        return watch(processes, signals, options.duration)
    except StopRequested as exc:
        say(f'demo: {exc} during start-up')
        return 0
    except (RuntimeError, OSError) as exc:  # a program missing, dead or not ready in time
        say(f'demo: {exc}', error=True)
        return 1
    finally:
        say('stopping the demo...')
        processes.stop_all()
        say('stopped.')


if __name__ == '__main__':
    sys.exit(main())
