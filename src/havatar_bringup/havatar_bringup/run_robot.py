"""The robot's nodes without ``ros2 launch`` (executable ``run_robot``).

For machines whose ROS 2 has no launch (the PyPI wheels) and for the systemd unit
``systemd/havatar-robot.service``: runs the graph of ``havatar_bringup.graph`` with the
arguments ``robot.launch.py`` takes, written the same way::

    run_robot [sim:=true] [serial_port:=...] [relay_url:=...] ...   (--show-args lists them)

Like the launch file it respawns every node (``respawn`` in the graph) 2 s after it exits,
the motor node and motor_guard after 0.2 s (``respawn_delay``); an entry without ``respawn``
exiting would stop everything with exit code 1 (systemd's ``Restart=always`` starts the robot
again). With ``one_process:=true`` the nodes run in one ``robot_container`` that respawns after
0.2 s and counts as hung when any node in it is. Its watchdog (``havatar_bringup.watchdog``)
also SIGKILLs a hung node (stopped, or no ``/diagnostics`` heartbeat for 5 s), writes STOP
to the motor port itself while the motor node is down (v1 firmware keeps its last PWM;
motor_guard does too), and reports restarts on ``/diagnostics`` (status ``run_robot: watchdog``,
which the web UI shows). Under systemd (``$NOTIFY_SOCKET``) it sends
``READY=1`` once every node runs and the local web UI answers. SIGINT, SIGTERM or SIGHUP
stops every node (SIGINT first, as ``ros2 launch`` does) and exits 0. Each node's output
goes to ``--log-dir`` (default ``$LOGS_DIRECTORY``, else ``~/.local/state/havatar/logs``).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import yaml

from havatar_common.sd_notify import notify

from .demo import StopRequested, StopSignals, say
from .graph import ARGUMENTS, GraphArgs, NodeEntry, command_line, dds_profile, default_params_file, \
    find_executable, robot_graph
from .processes import ManagedProcess, ProcessManager
from .watchdog import Watchdog, process_stopped, stop_motors
from .watchdog_topics import WatchdogTopics

STARTUP_TIMEOUT_S = 60.0
WATCH_PERIOD_S = 0.1  # how soon a dead or stopped node is noticed
MOTOR_NODE = 'motor_node'


def web_ui_url(args: GraphArgs) -> str:
    """Where the relay node's local web UI answers, from the parameter file."""
    data = yaml.safe_load(Path(args.params_file or default_params_file()).read_text()) or {}
    params = next((v.get('ros__parameters', {}) for k, v in data.items()
                   if k.rstrip('/').split('/')[-1] == 'relay_node'), {})
    host = str(params.get('http_host', '0.0.0.0'))
    host = '127.0.0.1' if host in ('0.0.0.0', '', '::') else host
    return f'http://{host}:{int(params.get("http_port", 8080))}/'


def parse_options(argv: Optional[list[str]]) -> tuple[argparse.Namespace, GraphArgs]:
    parser = argparse.ArgumentParser(prog='run_robot', description=__doc__.split('\n\n')[0])
    parser.add_argument('arguments', nargs='*', metavar='name:=value', help='launch arguments')
    parser.add_argument('--show-args', action='store_true', help='list the launch arguments')
    parser.add_argument('--log-dir', type=Path, help='where each node writes its output')
    options = parser.parse_args(argv)
    if options.show_args:
        for name, default, description in ARGUMENTS:
            print(f"  '{name}': {description}\n      (default: '{default}')")
        parser.exit(0)
    values = {}
    for item in options.arguments:
        name, sep, value = item.partition(':=')
        if not sep:
            parser.error(f'{item!r}: arguments are written name:=value')
        values[name] = value
    try:
        return options, GraphArgs.from_strings(values)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # not reached


class Robot:
    """The graph's processes, started in order, respawned as the graph says."""

    def __init__(self, args: GraphArgs, processes: ProcessManager, watchdog: Optional[Watchdog] = None,
                 motor_port: Callable[[], str] = lambda: '',
                 on_restart: Callable[[], None] = lambda: None) -> None:
        self.args = args
        self.processes = processes
        self.watchdog = watchdog or Watchdog()
        self.motor_port = motor_port  # the port the motor node last reported
        self.on_restart = on_restart
        self.running: dict[str, tuple[NodeEntry, ManagedProcess]] = {}
        self.respawn_at: dict[str, float] = {}
        self.down: dict[str, str] = {}  # node -> why, until respawned

    def start(self, entry: NodeEntry) -> ManagedProcess:
        executable = find_executable(entry)
        if executable is None:
            raise RuntimeError(f'{entry.package} {entry.executable} is not installed (colcon build)')
        process = self.processes.start(entry.name, command_line(entry, executable))
        self.running[entry.name] = (entry, process)
        for name in node_names(entry):
            self.watchdog.started(name, time.time())
        return process

    def process_of(self, node: str) -> ManagedProcess:
        """The running process of ``node`` (its own, or the robot_container holding it)."""
        return next(process for entry, process in self.running.values() if node in node_names(entry))

    def start_all(self) -> None:
        if self.args.sim:
            Path(self.args.sim_dir).mkdir(parents=True, exist_ok=True)
        for entry in robot_graph(self.args):
            self.processes.interrupt()
            process = self.start(entry)
            if entry.ready_output:  # the ESP32 simulator's port, motor_guard watching
                process.wait_for_output(entry.ready_output, timeout=STARTUP_TIMEOUT_S)
        relay_node = self.process_of('relay_node')
        relay_node.wait_for_http(web_ui_url(self.args), STARTUP_TIMEOUT_S)
        for name, (entry, process) in self.running.items():
            # a hardware node may be down (a camera unplugged): it respawns, and the web UI
            # stays up for the user meanwhile
            if not process.running() and not entry.respawn:
                raise RuntimeError(f'{name} exited during start-up; see {process.log_path}')

    def check(self, now: float) -> Optional[str]:
        """Kill hung nodes, respawn what is due; a node that ended and may not respawn, if any."""
        for name, (entry, process) in self.running.items():
            if name not in self.down:
                reason = self.hung(entry, process, now) if process.running() else \
                    f'exited ({process.popen.returncode})'
                if reason is None:
                    continue
                self.down[name] = reason
                say(f'run_robot: {name} {reason}', error=True)
                if process.running():
                    process.signal(signal.SIGKILL)
                    process.popen.wait()
                motor = next((e for e in (entry, *entry.members) if e.name == MOTOR_NODE), None)
                if motor is not None:
                    self.stop_motors(motor)
            if not entry.respawn:
                return name
            due = self.respawn_at.setdefault(name, now + entry.respawn_delay)
            if now >= due:
                reason = self.down.pop(name)
                del self.respawn_at[name]
                restart = self.watchdog.restarted(name, reason, time.time())
                say(f'run_robot: respawning {name} (restart {restart.count})', error=True)
                process.stop()  # its children, and its log file
                self.start(entry)  # replaces the value of an existing key: safe while iterating
                self.on_restart()
        return None

    def hung(self, entry: NodeEntry, process: ManagedProcess, now: float) -> Optional[str]:
        """Why a running node (or container: any of its nodes) counts as hung, if it does."""
        if process_stopped(process.pid):
            return 'stopped'
        for name in node_names(entry):
            silent = self.watchdog.silent(name, now)
            if silent is not None:
                return f'sent no heartbeat for {silent:.1f} s' + ('' if name == entry.name else f' ({name})')
        return None

    def stop_motors(self, entry: NodeEntry) -> None:
        """v1 firmware keeps its last PWM: write STOP to the port while the node is down."""
        configured = next((item.get('serial_port', '') for item in entry.parameters
                           if isinstance(item, dict)), '')
        port = self.motor_port() or (configured if configured.startswith('/') else '')
        if not port:
            say('run_robot: motor port unknown; could not write STOP', error=True)
            return
        error = stop_motors(port)
        say(f'run_robot: {error}' if error else f'run_robot: wrote STOP to {port}', error=bool(error))


def node_names(entry: NodeEntry) -> tuple[str, ...]:
    """The ROS nodes a process runs: the entry itself, or a robot_container's members."""
    return (entry.name, *(m.name for m in entry.members))


def main(argv: Optional[list[str]] = None) -> int:
    options, args = parse_options(argv)
    log_dir = options.log_dir or Path(os.environ.get('LOGS_DIRECTORY') or
                                      Path.home() / '.local' / 'state' / 'havatar' / 'logs')
    log_dir.mkdir(parents=True, exist_ok=True)
    profile = dds_profile()
    env = {**os.environ, 'PYTHONUNBUFFERED': '1',
           'FASTRTPS_DEFAULT_PROFILES_FILE': profile, 'FASTDDS_DEFAULT_PROFILES_FILE': profile}
    signals = StopSignals()
    # started from this (the main) thread, which ends only with run_robot: every node gets
    # SIGTERM from the kernel if run_robot dies without stopping them (PR_SET_PDEATHSIG)
    processes = ProcessManager(log_dir, env, die_with_parent=True, interrupt=signals.check)
    os.environ.update({k: env[k] for k in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')})
    watchdog = Watchdog()
    topics = WatchdogTopics(watchdog, args.namespace)
    robot = Robot(args, processes, watchdog, lambda: topics.motor_port, topics.publish)
    try:
        robot.start_all()
        notify('READY=1')
        say(f'run_robot: {len(robot.running)} nodes running; web UI {web_ui_url(args)}; logs in {log_dir}')
        while signals.requested is None:
            ended = robot.check(time.monotonic())
            if ended is not None:
                _, process = robot.running[ended]
                say(f'run_robot: {ended} stopped unexpectedly; its output:\n{process.tail()}', error=True)
                return 1
            time.sleep(WATCH_PERIOD_S)
        return 0
    except StopRequested as exc:
        say(f'run_robot: {exc} during start-up')
        return 0
    except (RuntimeError, OSError) as exc:  # a node missing, dead or not ready in time
        say(f'run_robot: {exc}', error=True)
        return 1
    finally:
        notify('STOPPING=1')
        processes.stop_all()
        topics.close()
        say('run_robot: stopped.')


if __name__ == '__main__':
    sys.exit(main())
