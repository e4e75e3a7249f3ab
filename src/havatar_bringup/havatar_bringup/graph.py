"""The robot's node graph, described once.

``robot.launch.py`` turns it into launch_ros ``Node`` actions; the demo (for machines
without ``ros2 launch``) runs the same entries as processes with ``command_line``, which
produces exactly the arguments ``ros2 launch`` passes. A test checks that both agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

PACKAGE = 'havatar_bringup'

# name, default, description: the launch arguments (all strings, as launch has them)
ARGUMENTS: list[tuple[str, str, str]] = [
    ('sim', 'false', 'Simulated hardware: ESP32 simulator, test-pattern camera, tone '
     'microphone, silent speaker'),
    ('serial_port', '', "ESP32 serial port (path, by-id name fragment, or '' to scan)"),
    ('camera_device', '/dev/video0', 'V4L2 camera (path, by-id name or part of its name)'),
    ('server_mode', 'false', 'Start streaming in server mode (MediaMTX)'),
    ('robot_id', 'robot', "The robot's id on the relay and MediaMTX"),
    ('relay_url', '', "Cloud relay WebSocket URL; '' = local mode only"),
    ('namespace', '', 'ROS namespace of all nodes'),
    ('params_file', '', "Parameter file; '' = the package's config/robot.yaml"),
    ('sim_dir', '/tmp/havatar-sim', 'Where the ESP32 simulator puts its port and record'),
]


@dataclass(frozen=True)
class NodeEntry:
    """One process of the graph. ``ros=False`` marks a plain program (the ESP32 simulator)."""

    package: str
    executable: str
    name: str
    namespace: str = ''
    parameters: tuple[Any, ...] = ()          # parameter files (str) and override dicts
    remappings: tuple[tuple[str, str], ...] = ()
    respawn: bool = False
    arguments: tuple[str, ...] = ()
    ros: bool = True


@dataclass
class GraphArgs:
    sim: bool = False
    serial_port: str = ''
    camera_device: str = '/dev/video0'
    server_mode: bool = False
    robot_id: str = 'robot'
    relay_url: str = ''
    namespace: str = ''
    params_file: str = ''
    sim_dir: str = '/tmp/havatar-sim'
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-node overrides

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> 'GraphArgs':
        """From launch-argument strings ('true'/'false' for flags)."""
        flag = lambda v: str(v).lower() in ('1', 'true', 'yes', 'on')  # noqa: E731
        known = {name for name, _, _ in ARGUMENTS}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown arguments: {", ".join(sorted(unknown))}')
        v = {name: values.get(name, default) for name, default, _ in ARGUMENTS}
        return cls(sim=flag(v['sim']), serial_port=v['serial_port'],
                   camera_device=v['camera_device'], server_mode=flag(v['server_mode']),
                   robot_id=v['robot_id'], relay_url=v['relay_url'], namespace=v['namespace'],
                   params_file=v['params_file'], sim_dir=v['sim_dir'])


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


def robot_graph(args: GraphArgs) -> list[NodeEntry]:
    """The robot's nodes for ``args``."""
    params = args.params_file or default_params_file()
    ns = args.namespace

    def node(package: str, executable: str, overrides: dict[str, Any], respawn: bool = False) -> NodeEntry:
        overrides = {**overrides, **args.extra.get(executable, {})}
        return NodeEntry(package, executable, executable, ns, (params, overrides) if overrides else (params,),
                         respawn=respawn)

    sim_port = str(Path(args.sim_dir) / 'ttyESP32')
    entries: list[NodeEntry] = []
    if args.sim:
        entries.append(NodeEntry('havatar_drivers', 'esp32_sim', 'esp32_sim', ros=False, arguments=(
            '--dialect', 'v1', '--link', sim_port, '--record', str(Path(args.sim_dir) / 'record.jsonl'),
            '--control', str(Path(args.sim_dir) / 'control.sock'))))
    entries += [
        node('havatar_drivers', 'motor_node',
             {'serial_port': sim_port if args.sim else args.serial_port}, respawn=True),
        node('havatar_drivers', 'camera_node',
             {'source': 'test_pattern'} if args.sim else {'source': 'v4l2', 'device': args.camera_device},
             respawn=True),
        node('havatar_drivers', 'microphone_node', {'source': 'tone'} if args.sim else {}, respawn=True),
        node('havatar_drivers', 'speaker_node', {'sink': 'null'} if args.sim else {}, respawn=True),
        node('havatar_streaming', 'streaming_node',
             {'mode': 'server' if args.server_mode else 'local', 'stream_key': args.robot_id}),
        node('havatar_relay', 'relay_node',
             {'robot_id': args.robot_id, **({'relay_url': args.relay_url} if args.relay_url else {})}),
    ]
    return entries


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return value if value else "''"
    return repr(value) if isinstance(value, float) else str(value)


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
            for key, value in item.items():
                argv += ['-p', f'{key}:={_value(value)}']
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
