"""The whole Havatar system on this machine, simulated hardware included (executable ``demo``).

Runs the robot graph of ``havatar_bringup.graph`` (the same nodes, parameters and
arguments as ``robot.launch.py sim:=true``) plus the server side: MediaMTX (authenticating
through the relay), Redis and the cloud relay server, all on localhost. Prints the URLs of
the robot's local web UI and the relay's web UI with a demo token; Ctrl-C, SIGTERM or
SIGHUP (the terminal closed) stops everything.

No process it starts outlives it: each gets SIGTERM from the kernel when the demo ends,
however it ends (even SIGKILL), and stops as on Ctrl-C. A closed stdout (``demo | tee log``
stopped by Ctrl-C) only silences the demo; it still stops everything.

    demo [--headless] [--duration SECONDS] [--run-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, TextIO

import yaml

from havatar_common.lifetime import preexec

from .graph import GraphArgs, NodeEntry, command_line, dds_profile, find_executable, robot_graph

ROBOT_ID = 'demo-robot'


def free_port(preferred: int) -> int:
    """``preferred`` if it is free on localhost, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError('no free port')


def find_program(name: str, workspace: Optional[Path]) -> str:
    if workspace is not None and (workspace / 'tools' / 'bin' / name).exists():
        return str(workspace / 'tools' / 'bin' / name)
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f'{name} not found (run scripts/setup.sh)')
    return path


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequested(Exception):
    """A stop signal arrived while the demo was starting."""


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set ``requested``; nothing is raised from the handler, so
    no signal can interrupt stopping. Start-up polls ``check`` to give up early."""

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
class Running:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class Supervisor:
    """Starts programs in their own process groups and stops all of them.

    Each program gets SIGTERM from the kernel when the demo ends (``PR_SET_PDEATHSIG``); that
    signal follows the thread that forked, and ``start`` runs on the demo's main thread,
    which ends only with the demo.
    """

    def __init__(self, run_dir: Path, env: dict[str, str],
                 check_stop: Callable[[], None] = lambda: None) -> None:
        self.run_dir = run_dir
        self.env = env
        self.check_stop = check_stop  # raises StopRequested to abort a wait
        self.running: list[Running] = []

    def start(self, name: str, argv: list[str], env: Optional[dict[str, str]] = None) -> Running:
        log = self.run_dir / f'{name}.log'
        with open(log, 'wb') as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**self.env, **(env or {})},
                                       start_new_session=True, preexec_fn=preexec(signal.SIGTERM))
        entry = Running(name, process, log)
        self.running.append(entry)
        return entry

    def wait_for(self, entry: Running, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in entry.log.read_text(errors='replace'):
            self.check_stop()
            if entry.process.poll() is not None or time.monotonic() > deadline:
                tail = entry.log.read_text(errors='replace')[-2000:]
                raise RuntimeError(f'{entry.name} did not start (see {entry.log}):\n{tail}')
            time.sleep(0.1)

    def check(self) -> Optional[str]:
        """The name of a program that died, if any."""
        return next((r.name for r in self.running if r.process.poll() is not None), None)

    def stop_all(self) -> None:
        """Stop in reverse order of start (the robot before the servers it talks to)."""
        for r in reversed(self.running):
            for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
                if r.process.poll() is not None:
                    break
                try:
                    os.killpg(r.process.pid, sig)
                    r.process.wait(wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
            try:  # children left in its group (ffmpeg under a node)
                os.killpg(r.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_http(url: str, timeout: float = 30.0, check_stop: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        check_stop()
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f'no answer from {url}') from None
            time.sleep(0.2)


def main(args: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--headless', action='store_true', help='do not open a browser')
    parser.add_argument('--duration', type=float, help='stop after this many seconds')
    parser.add_argument('--run-dir', type=Path, help='logs and state (default: a new temp dir)')
    parser.add_argument('--domain-id', type=int, default=int(os.environ.get('ROS_DOMAIN_ID', '42')))
    options = parser.parse_args(args)

    workspace = Path(os.environ['HAVATAR_WORKSPACE']) if 'HAVATAR_WORKSPACE' in os.environ else None
    run_dir = options.run_dir or Path(tempfile.mkdtemp(prefix='havatar-demo-'))
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port(default) for name, default in (
        ('ui', 8080), ('mjpeg', 8081), ('relay', 8090), ('rtsp', 8554), ('webrtc', 8889),
        ('webrtc_udp', 8189), ('api', 9997), ('redis', 6390))}
    robot_token, user_token, access_token = (secrets.token_urlsafe(16) for _ in range(3))
    profile = dds_profile()
    env = {**os.environ, 'ROS_DOMAIN_ID': str(options.domain_id),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PYTHONUNBUFFERED': '1',
           'FASTRTPS_DEFAULT_PROFILES_FILE': profile, 'FASTDDS_DEFAULT_PROFILES_FILE': profile,
           'HAVATAR_ACCESS_TOKEN': access_token, 'HAVATAR_ROBOT_TOKEN': robot_token,
           'HAVATAR_STREAM_PASSWORD': robot_token}
    if os.environ.get('ROS_DISTRO') == 'humble':
        env['ROS_LOCALHOST_ONLY'] = '1'
    signals = StopSignals()
    sup = Supervisor(run_dir, env, signals.check)

    try:
        # --- the server side
        (run_dir / 'relay.yaml').write_text(yaml.safe_dump({
            'robots': {ROBOT_ID: {'token': robot_token}},
            'users': {'demo': {'token': user_token, 'robots': [ROBOT_ID]}}}))
        redis = sup.start('redis', [find_program('redis-server', workspace), '--port', str(ports['redis']),
                                    '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                                    '--dir', str(run_dir)])
        sup.wait_for(redis, 'Ready to accept connections')
        relay_server = find_executable(NodeEntry('havatar_relay', 'relay_server', 'relay_server'))
        if relay_server is None:
            raise RuntimeError('havatar_relay relay_server is not installed (colcon build)')
        # installable alone, the relay server imports no Havatar package: the preexec's
        # PR_SET_PDEATHSIG (kept across exec) is all it needs to die with the demo
        sup.start('relay_server', [relay_server, '--config', str(run_dir / 'relay.yaml'),
                                   '--host', '127.0.0.1', '--port', str(ports['relay']),
                                   '--redis-url', f'redis://127.0.0.1:{ports["redis"]}/0',
                                   '--instance-id', 'demo'])
        wait_http(f'http://127.0.0.1:{ports["relay"]}/health', check_stop=signals.check)
        mediamtx_config = {
            'logLevel': 'warn', 'authMethod': 'http',
            'authHTTPAddress': f'http://127.0.0.1:{ports["relay"]}/mediamtx/auth',
            'authHTTPExclude': [{'action': 'api'}, {'action': 'metrics'}],
            'api': True, 'apiAddress': f'127.0.0.1:{ports["api"]}',
            'rtsp': True, 'rtspTransports': ['tcp'], 'rtspAddress': f'127.0.0.1:{ports["rtsp"]}',
            'rtmp': False, 'srt': False, 'hls': False, 'playback': False,
            'webrtc': True, 'webrtcAddress': f'127.0.0.1:{ports["webrtc"]}',
            'webrtcLocalUDPAddress': f'127.0.0.1:{ports["webrtc_udp"]}',
            'webrtcIPsFromInterfaces': False, 'webrtcAdditionalHosts': ['127.0.0.1'],
            'webrtcAllowOrigin': '*', 'paths': {'all_others': {}}}
        (run_dir / 'mediamtx.yml').write_text(yaml.safe_dump(mediamtx_config))
        sup.start('mediamtx', [find_program('mediamtx', workspace), str(run_dir / 'mediamtx.yml')])
        wait_http(f'http://127.0.0.1:{ports["api"]}/v3/paths/list', check_stop=signals.check)

        # --- the robot: the same graph as robot.launch.py sim:=true
        graph_args = GraphArgs(sim=True, server_mode=True, robot_id=ROBOT_ID,
                               relay_url=f'ws://127.0.0.1:{ports["relay"]}/ws',
                               sim_dir=str(run_dir / 'sim'))
        graph_args.extra = {
            'streaming_node': {'mjpeg_port': ports['mjpeg'], 'mjpeg_host': '127.0.0.1',
                               'server_url': f'rtsp://127.0.0.1:{ports["rtsp"]}',
                               'api_url': f'http://127.0.0.1:{ports["api"]}',
                               'stream_user': ROBOT_ID},
            'relay_node': {'http_port': ports['ui'], 'http_host': '127.0.0.1',
                           'mjpeg_port': ports['mjpeg'],
                           'whep_base_url': f'http://127.0.0.1:{ports["webrtc"]}',
                           'settings_file': str(run_dir / 'server_mode.json')},
        }
        (run_dir / 'sim').mkdir(exist_ok=True)
        for entry in robot_graph(graph_args):
            signals.check()
            executable = find_executable(entry)
            if executable is None:
                raise RuntimeError(f'{entry.package} {entry.executable} is not installed (colcon build)')
            started = sup.start(entry.name, command_line(entry, executable))
            if not entry.ros:
                sup.wait_for(started, 'port:')
        wait_http(f'http://127.0.0.1:{ports["ui"]}/', check_stop=signals.check)

        local_ui = f'http://127.0.0.1:{ports["ui"]}/#robot={ROBOT_ID}&token={access_token}'
        server_ui = f'http://127.0.0.1:{ports["relay"]}/#robot={ROBOT_ID}&token={user_token}'
        say('\nHavatar demo running (simulated robot + MediaMTX + Redis + relay server).\n'
            f'  robot web UI (local mode):  {local_ui}\n'
            f'  relay web UI (server mode): {server_ui}\n'
            f'  demo user token: {user_token}\n'
            f'  logs: {run_dir}\n'
            'Press Ctrl-C to stop.')
        if not options.headless and (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
            import webbrowser
            webbrowser.open(local_ui)
        deadline = time.monotonic() + options.duration if options.duration else None
        while signals.requested is None and (deadline is None or time.monotonic() < deadline):
            dead = sup.check()
            if dead:
                say(f'demo: {dead} stopped unexpectedly; see {run_dir / (dead + ".log")}', error=True)
                return 1
            time.sleep(0.5)
        return 0  # asked to stop (by a signal or --duration): a normal end
    except StopRequested as exc:
        say(f'demo: {exc} during start-up')
        return 0
    except RuntimeError as exc:
        say(f'demo: {exc}', error=True)
        return 1
    finally:
        say('stopping the demo...')
        sup.stop_all()
        say('stopped.')


if __name__ == '__main__':
    sys.exit(main())
