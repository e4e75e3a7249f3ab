"""The robot's node graph, described once.

``robot.launch.py`` turns it into launch_ros ``Node`` actions; the demo (for machines
without ``ros2 launch``) runs the same entries as processes with ``command_line``, which
produces exactly the arguments ``ros2 launch`` passes. A test checks that both agree.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

PACKAGE = 'havatar_bringup'
# v1 firmware keeps its last PWM while the motor node is down: motor_guard writes STOP the
# moment it dies (so does run_robot's watchdog), and the respawned node writes STOP the
# moment it opens the port, so it comes back soon
MOTOR_RESPAWN_DELAY_S = 0.2
# the executor of one_process:=true (see container_benchmark.py for why)
CONTAINER_EXECUTOR = 'single'
EXECUTORS = ('single', 'multi')  # not the EventsExecutor: it has no guard conditions (Jazzy)
# the nodes one_process:=true runs in its container (executable: module:Class); others (a C++
# twist_mux) keep a process of their own
COMPOSABLE: dict[str, str] = {
    'motor_node': 'havatar_drivers.motor_node:MotorNode',
    'camera_node': 'havatar_drivers.camera_node:CameraNode',
    'microphone_node': 'havatar_drivers.microphone_node:MicrophoneNode',
    'speaker_node': 'havatar_drivers.speaker_node:SpeakerNode',
    'streaming_node': 'havatar_streaming.streaming_node:StreamingNode',
    'relay_node': 'havatar_relay.relay_node:RelayNode',
    'twist_mux': 'havatar_drivers.twist_mux_node:TwistMuxNode',
    'incident_recorder': 'havatar_bringup.incident_recorder:IncidentRecorder',
    'foxglove_node': 'havatar_relay.foxglove_node:FoxgloveNode',
}


def parameter_value(value: Any) -> str:
    """``value`` as ``-p name:=value`` and ``ros2 launch`` write it (YAML: ``true``, ``''``)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return value if value else "''"
    return repr(value) if isinstance(value, float) else str(value)


def parameter_arguments(parameters: Mapping[str, Any]) -> list[str]:
    """``['-p', 'name:=value', ...]``: parameters on a node's command line."""
    argv: list[str] = []
    for name, value in parameters.items():
        argv += ['-p', f'{name}:={parameter_value(value)}']
    return argv


@dataclass(frozen=True)
class NodeEntry:
    """One process of the graph. ``ros=False`` marks a plain program (the ESP32 simulator,
    motor_guard); a launcher waits for ``ready_output`` in its output before the next entry.
    """

    package: str
    executable: str
    name: str
    namespace: str = ''
    parameters: tuple[Any, ...] = ()          # parameter files (str) and override dicts
    remappings: tuple[tuple[str, str], ...] = ()
    respawn: bool = False
    arguments: tuple[str, ...] = ()
    ros: bool = True
    respawn_delay: float = 2.0  # seconds after it exited
    ready_output: str = ''
    members: tuple['NodeEntry', ...] = ()  # the nodes a robot_container runs


def _argument(default: Any, description: str) -> Any:
    """A launch argument: a field of ``GraphArgs`` with its description."""
    return field(default=default, metadata={'description': description})


@dataclass
class GraphArgs:
    """The launch arguments, each declared once here; ``robot.launch.py`` declares them
    from ``ARGUMENTS`` and parses them with ``from_strings``.
    """

    sim: bool = _argument(False, 'Simulated hardware: ESP32 simulator, test-pattern camera, '
                                 'tone microphone, silent speaker')
    serial_port: str = _argument('', "ESP32 serial port (path, by-id name fragment, or '' to scan)")
    camera_device: str = _argument('/dev/video0', 'V4L2 camera (path, by-id name or part of its name)')
    server_mode: bool = _argument(False, 'Start streaming in server mode (MediaMTX)')
    robot_id: str = _argument('robot', "The robot's id on the relay and MediaMTX")
    relay_url: str = _argument('', "Cloud relay WebSocket URL; '' = local mode only")
    namespace: str = _argument('', 'ROS namespace of all nodes')
    params_file: str = _argument('', "Parameter file; '' = the package's config/robot.yaml")
    sim_dir: str = _argument('/tmp/havatar-sim', 'Where the ESP32 simulator puts its port and record')
    foxglove: bool = _argument(False, 'Foxglove WebSocket server (foxglove_node, port 8765): every topic '
                                      'to Foxglove on the LAN, read only, no ROS tools needed')
    twist_mux: str = _argument('auto', "cmd_vel arbitration: 'auto' (ros-teleop's twist_mux where installed, "
                                       "else Havatar's), 'twist_mux', 'havatar' or 'off' (relay_node "
                                       "publishes cmd_vel itself)")
    incident_recorder: bool = _argument(True, 'Record the last 30 s of driving to an MCAP file when the robot '
                                              'stops on its own (deadman, watchdog, lock, link loss)')
    one_process: bool = _argument(False, "Run the robot's nodes in one process with one executor "
                                         '(robot_container) instead of a process each')
    container_executor: str = _argument(CONTAINER_EXECUTOR, "one_process's executor: 'single' "
                                        "(SingleThreadedExecutor) or 'multi' (MultiThreadedExecutor)")
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-node overrides, not an argument

    def __post_init__(self) -> None:
        if self.container_executor not in EXECUTORS:
            raise ValueError(f'container_executor must be one of {", ".join(EXECUTORS)}, '
                             f'not {self.container_executor!r}')

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> 'GraphArgs':
        """From launch-argument strings ('true'/'false' for flags)."""
        unknown = set(values) - {name for name, _, _ in ARGUMENTS}
        if unknown:
            raise ValueError(f'unknown arguments: {", ".join(sorted(unknown))}')
        parsed: dict[str, Any] = {}
        for f in _argument_fields():
            text = values.get(f.name)
            if text is not None:
                parsed[f.name] = (str(text).lower() in ('1', 'true', 'yes', 'on')
                                  if isinstance(f.default, bool) else text)
        return cls(**parsed)


def _argument_fields() -> list[Field[Any]]:
    return [f for f in fields(GraphArgs) if 'description' in f.metadata]


# name, default, description: the launch arguments (all strings, as launch has them)
ARGUMENTS: list[tuple[str, str, str]] = [
    (f.name, str(f.default).lower() if isinstance(f.default, bool) else f.default,
     f.metadata['description']) for f in _argument_fields()]


def share_dir() -> Path:
    """The package's share directory (installed config files)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError):
        return Path(__file__).resolve().parents[1]


def default_params_file() -> str:
    return str(share_dir() / 'config' / 'robot.yaml')


def dds_profile() -> str:
    return str(share_dir() / 'config' / 'fastdds_shm.xml')


def motor_lock_file(args: GraphArgs) -> str:
    """The motor node's lock file, which motor_guard watches: private to the user.

    Under systemd ``$RUNTIME_DIRECTORY`` (``RuntimeDirectory=havatar``), else the user's
    ``$XDG_RUNTIME_DIR/havatar``, else a directory of the user's own in the temp dir; the
    simulated robot's is in ``sim_dir``.
    """
    if args.sim:
        return str(Path(args.sim_dir) / 'motor_node.lock')
    base = os.environ.get('RUNTIME_DIRECTORY') or (
        str(Path(os.environ['XDG_RUNTIME_DIR']) / 'havatar') if os.environ.get('XDG_RUNTIME_DIR')
        else str(Path(tempfile.gettempdir()) / f'havatar-{os.getuid()}'))
    instance = args.namespace.strip('/').replace('/', '.')
    return str(Path(base) / f'{instance + "." if instance else ""}motor_node.lock')


TWIST_MUX_CHOICES = ('auto', 'twist_mux', 'havatar', 'off')
WEB_CMD_VEL = 'cmd_vel/web'  # relay_node's cmd_vel under the mux: topics.web of /**/twist_mux


def package_installed(package: str) -> bool:
    try:
        from ament_index_python.packages import get_package_prefix
        get_package_prefix(package)
        return True
    except (ImportError, LookupError):
        return False


def twist_mux_package(choice: str) -> Optional[str]:
    """The package whose ``twist_mux`` executable arbitrates ``cmd_vel`` (None: no mux)."""
    if choice not in TWIST_MUX_CHOICES:
        raise ValueError(f'twist_mux:={choice!r} must be one of {", ".join(TWIST_MUX_CHOICES)}')
    if choice == 'auto':
        return 'twist_mux' if package_installed('twist_mux') else 'havatar_drivers'
    return {'twist_mux': 'twist_mux', 'havatar': 'havatar_drivers', 'off': None}[choice]


def robot_graph(args: GraphArgs) -> list[NodeEntry]:
    """The robot's nodes for ``args``."""
    params = args.params_file or default_params_file()
    ns = args.namespace

    def node(package: str, executable: str, overrides: dict[str, Any], respawn: bool = False,
             respawn_delay: float = 2.0) -> NodeEntry:
        overrides = {**overrides, **args.extra.get(executable, {})}
        return NodeEntry(package, executable, executable, ns, (params, overrides) if overrides else (params,),
                         respawn=respawn, respawn_delay=respawn_delay)

    sim_port = str(Path(args.sim_dir) / 'ttyESP32')
    entries: list[NodeEntry] = []
    if args.sim:
        entries.append(NodeEntry('havatar_drivers', 'esp32_sim', 'esp32_sim', ros=False, arguments=(
            '--dialect', 'v1', '--link', sim_port, '--record', str(Path(args.sim_dir) / 'record.jsonl'),
            '--control', str(Path(args.sim_dir) / 'control.sock')), ready_output='port:'))
    lock = motor_lock_file(args)
    mux = twist_mux_package(args.twist_mux)
    entries += [
        NodeEntry('havatar_drivers', 'motor_guard', 'motor_guard', ros=False, arguments=('--lock', lock),
                  respawn=True, respawn_delay=MOTOR_RESPAWN_DELAY_S, ready_output='motor_guard: guarding'),
        node('havatar_drivers', 'motor_node',
             {'serial_port': sim_port if args.sim else args.serial_port, 'lock_file': lock}, respawn=True,
             respawn_delay=MOTOR_RESPAWN_DELAY_S),
        node('havatar_drivers', 'camera_node',
             {'source': 'test_pattern'} if args.sim else {'source': 'v4l2', 'device': args.camera_device},
             respawn=True),
        node('havatar_drivers', 'microphone_node', {'source': 'tone'} if args.sim else {}, respawn=True),
        node('havatar_drivers', 'speaker_node', {'sink': 'null'} if args.sim else {}, respawn=True),
        node('havatar_streaming', 'streaming_node',
             {'mode': 'server' if args.server_mode else 'local', 'stream_key': args.robot_id}, respawn=True),
        node('havatar_relay', 'relay_node',
             {'robot_id': args.robot_id, **({'relay_url': args.relay_url} if args.relay_url else {})},
             respawn=True),
    ]
    if args.foxglove:
        entries.append(node('havatar_relay', 'foxglove_node', {}, respawn=True))
    if args.incident_recorder:
        entries.append(node('havatar_bringup', 'incident_recorder',
                            {'directory': str(Path(args.sim_dir) / 'incidents')} if args.sim else {},
                            respawn=True))
    if mux is not None:  # relay_node becomes one source of several; the mux owns cmd_vel
        relay = next(i for i, e in enumerate(entries) if e.executable == 'relay_node')
        entries[relay] = replace(entries[relay], remappings=(('cmd_vel', WEB_CMD_VEL),))
        entries.insert(relay, replace(
            node(mux, 'twist_mux', {}, respawn=True, respawn_delay=MOTOR_RESPAWN_DELAY_S),
            remappings=(('cmd_vel_out', 'cmd_vel'),)))
    if args.one_process:
        composed = [e for e in entries if e.ros and COMPOSABLE.get(e.executable, '').startswith(e.package + '.')]
        entries = [e for e in entries if e not in composed] + [container_entry(composed, args.container_executor)]
    return entries


def container_entry(nodes: list[NodeEntry], executor: str = CONTAINER_EXECUTOR) -> NodeEntry:
    """One ``robot_container`` process running ``nodes``, each with its own command line.

    It respawns as soon as the motor node would (it holds the motor node).
    """
    arguments = ['--executor', executor]
    for entry in nodes:
        arguments += command_line(entry, entry.executable) + ['--']
    motor = any(e.executable == 'motor_node' for e in nodes)
    return NodeEntry(PACKAGE, 'robot_container', 'robot_container', ros=False, arguments=tuple(arguments),
                     respawn=True, respawn_delay=MOTOR_RESPAWN_DELAY_S if motor else 2.0,
                     members=tuple(nodes))


def command_line(entry: NodeEntry, executable_path: str) -> list[str]:
    """The process arguments ``ros2 launch`` gives a ``launch_ros`` Node for this entry."""
    argv = [executable_path, *entry.arguments]
    if not entry.ros:
        return argv
    argv += ['--ros-args', '-r', f'__node:={entry.name}']
    if entry.namespace:
        argv += ['-r', f'__ns:=/{entry.namespace.strip("/")}']
    for item in entry.parameters:
        if isinstance(item, str):
            argv += ['--params-file', item]
        else:
            argv += parameter_arguments(item)
    for source, target in entry.remappings:
        argv += ['-r', f'{source}:={target}']
    return argv


def find_executable(entry: NodeEntry) -> Optional[str]:
    """Where ``ros2 run`` finds the entry's executable."""
    try:
        from ament_index_python.packages import get_package_prefix
    except ImportError:
        return None
    path = Path(get_package_prefix(entry.package)) / 'lib' / entry.package / entry.executable
    return str(path) if path.exists() else None
