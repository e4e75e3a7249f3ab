"""robot.launch.py and the demo run one graph; config/robot.yaml covers every parameter."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

from havatar_bringup.container import split_nodes
from havatar_bringup.graph import ARGUMENTS, CONTAINER_EXECUTOR, MOTOR_RESPAWN_DELAY_S, GraphArgs, command_line, \
    motor_lock_file, parameter_arguments, robot_graph
from havatar_testing import flat_parameters

PACKAGE_DIR = Path(__file__).resolve().parents[1]
NODE_MODULES = {'motor_node': 'havatar_drivers.motor_node', 'camera_node': 'havatar_drivers.camera_node',
                'microphone_node': 'havatar_drivers.microphone_node',
                'speaker_node': 'havatar_drivers.speaker_node',
                'streaming_node': 'havatar_streaming.streaming_node',
                'relay_node': 'havatar_relay.relay_node', 'foxglove_node': 'havatar_relay.foxglove_node',
                'twist_mux': 'havatar_drivers.twist_mux_node',
                'incident_recorder': 'havatar_bringup.incident_recorder'}


class Recorded:
    """Stands in for a launch/launch_ros action and keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class FakeConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture
def fake_launch(monkeypatch):
    """Launch and launch_ros as recorders (they cannot be installed on this machine)."""
    modules = {
        'launch': dict(LaunchDescription=lambda actions: actions),
        'launch.actions': dict(DeclareLaunchArgument=Recorded, ExecuteProcess=Recorded,
                               OpaqueFunction=Recorded, SetEnvironmentVariable=Recorded,
                               IncludeLaunchDescription=Recorded),
        'launch.substitutions': dict(LaunchConfiguration=FakeConfiguration),
        'launch.launch_description_sources': dict(PythonLaunchDescriptionSource=Recorded),
        'launch_ros': {}, 'launch_ros.actions': dict(Node=Recorded),
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)


def load_launch_file(name: str = 'robot.launch.py'):
    spec = importlib.util.spec_from_file_location(name.split('.')[0] + '_launch',
                                                  PACKAGE_DIR / 'launch' / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node_command_line(node: Recorded) -> list[str]:
    """What launch_ros passes to a Node's process for these arguments."""
    from havatar_bringup.graph import NodeEntry
    k = node.kwargs
    entry = NodeEntry(k['package'], k['executable'], k['name'], k['namespace'],
                      tuple(k['parameters']), tuple(k['remappings']), k['respawn'])
    return command_line(entry, k['executable'])


@pytest.mark.parametrize('arguments', [
    {'sim': 'true'},
    {'sim': 'false', 'serial_port': '/dev/ttyUSB0', 'camera_device': 'C920', 'server_mode': 'true',
     'robot_id': 'tank', 'namespace': 'tank', 'relay_url': 'wss://relay.example.org/ws'},
    {'sim': 'true', 'one_process': 'true'},
])
def test_launch_file_and_demo_run_the_same_graph(fake_launch, arguments):
    description = load_launch_file().generate_launch_description()
    declared = {a.args[0] for a in description
                if isinstance(a, Recorded) and 'default_value' in a.kwargs}
    assert declared == {name for name, _, _ in ARGUMENTS}
    env = {a.args[0]: a.args[1] for a in description
           if isinstance(a, Recorded) and len(a.args) == 2}
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('fastdds_shm.xml')
    opaque = next(a for a in description if 'function' in a.kwargs)
    context = {name: arguments.get(name, default) for name, default, _ in ARGUMENTS}
    actions = opaque.kwargs['function'](context)

    graph = robot_graph(GraphArgs.from_strings(arguments))
    launched = [a for a in actions if 'package' in a.kwargs]
    assert [a.kwargs['executable'] for a in launched] == [e.executable for e in graph if e.ros]
    for action, entry in zip(launched, [e for e in graph if e.ros]):
        assert node_command_line(action) == command_line(entry, entry.executable)
        assert action.kwargs['respawn'] == entry.respawn
        assert action.kwargs['respawn_delay'] == entry.respawn_delay
    processes = [a for a in actions if 'cmd' in a.kwargs]
    plain = [e for e in graph if not e.ros]
    assert [a.kwargs['cmd'][1:] for a in processes] == [list(e.arguments) for e in plain]
    assert [a.kwargs['respawn'] for a in processes] == [e.respawn for e in plain]
    assert [e.executable for e in plain] == (['esp32_sim'] if arguments['sim'] == 'true' else []) + \
        ['motor_guard'] + (['robot_container'] if arguments.get('one_process') == 'true' else [])


@pytest.mark.parametrize('namespace', ['', 'tank'])
def test_one_process_runs_the_same_nodes_with_the_same_command_lines_in_a_container(namespace):
    separate = robot_graph(GraphArgs(sim=True, namespace=namespace))
    composed = robot_graph(GraphArgs(sim=True, namespace=namespace, one_process=True))
    assert composed[:-1] == [e for e in separate if not e.ros], 'the simulator and motor_guard as before'
    container = composed[-1]
    assert container.executable == 'robot_container' and not container.ros and container.respawn
    assert container.respawn_delay == MOTOR_RESPAWN_DELAY_S, 'it holds the motor node'
    assert list(container.members) == [e for e in separate if e.ros]
    groups = split_nodes(list(container.arguments[2:]))
    assert container.arguments[:2] == ('--executor', CONTAINER_EXECUTOR)
    assert [name for name, _ in groups] == [e.executable for e in container.members]
    for (_, args), entry in zip(groups, container.members):  # what each node would get as a process
        assert args == command_line(entry, entry.executable)[1:] + ['--']


def test_hardware_nodes_respawn_and_sim_uses_simulated_sources():
    sim = {e.executable: e for e in robot_graph(GraphArgs(sim=True))}
    assert sim['camera_node'].parameters[1] == {'source': 'test_pattern'}
    assert sim['motor_node'].parameters[1]['serial_port'].endswith('ttyESP32')
    assert 'esp32_sim' in sim and not sim['esp32_sim'].ros
    real = {e.executable: e for e in robot_graph(GraphArgs(camera_device='/dev/video2'))}
    assert 'esp32_sim' not in real
    assert real['camera_node'].parameters[1] == {'source': 'v4l2', 'device': '/dev/video2'}
    assert all(real[n].respawn for n in ('motor_node', 'camera_node', 'microphone_node', 'speaker_node'))


def test_the_foxglove_server_runs_only_when_asked():
    assert 'foxglove_node' not in {e.executable for e in robot_graph(GraphArgs())}
    entry, = [e for e in robot_graph(GraphArgs.from_strings({'foxglove': 'true'})) if e.executable == 'foxglove_node']
    assert (entry.package, entry.ros, entry.respawn) == ('havatar_relay', True, True)


def test_motor_guard_watches_the_lock_file_the_motor_node_holds(monkeypatch, tmp_path):
    for args in (GraphArgs(sim=True, sim_dir=str(tmp_path)), GraphArgs(namespace='tank')):
        graph = {e.executable: e for e in robot_graph(args)}
        guard, motor = graph['motor_guard'], graph['motor_node']
        assert guard.respawn and not guard.ros and guard.ready_output
        assert [e.executable for e in robot_graph(args)].index('motor_guard') < \
            [e.executable for e in robot_graph(args)].index('motor_node'), 'watching before it runs'
        assert guard.arguments == ('--lock', motor.parameters[1]['lock_file'])
    assert motor_lock_file(GraphArgs(sim=True, sim_dir=str(tmp_path))) == str(tmp_path / 'motor_node.lock')
    monkeypatch.setenv('RUNTIME_DIRECTORY', '/run/user/1000/havatar')  # systemd's RuntimeDirectory=
    assert motor_lock_file(GraphArgs(namespace='/tank/')) == '/run/user/1000/havatar/tank.motor_node.lock'
    monkeypatch.delenv('RUNTIME_DIRECTORY')
    monkeypatch.setenv('XDG_RUNTIME_DIR', '/run/user/1000')
    assert motor_lock_file(GraphArgs()) == '/run/user/1000/havatar/motor_node.lock'


def test_command_line_matches_ros2_launch_conventions():
    entry = next(e for e in robot_graph(GraphArgs(namespace='tank', sim=True)) if e.executable == 'motor_node')
    argv = command_line(entry, '/x/motor_node')
    assert argv[:6] == ['/x/motor_node', '--ros-args', '-r', '__node:=motor_node', '-r', '__ns:=/tank']
    assert argv[6] == '--params-file' and argv[7].endswith('robot.yaml')


def test_robot_yaml_has_every_parameter_of_every_node_and_no_other():
    config = yaml.safe_load((PACKAGE_DIR / 'config' / 'robot.yaml').read_text())
    assert set(config) == {f'/**/{name}' for name in NODE_MODULES}
    for name, module in NODE_MODULES.items():
        table = importlib.import_module(module).PARAMETERS
        declared = {p[0]: p[1] for p in table}
        given = flat_parameters(config[f'/**/{name}']['ros__parameters'])
        assert set(given) == set(declared), name
        for key, default in declared.items():
            assert given[key] == default, f'{name}.{key}: {given[key]!r} != default {default!r}'


def test_unknown_launch_argument_is_refused():
    with pytest.raises(ValueError, match='serial'):
        GraphArgs.from_strings({'serial': '/dev/ttyUSB0'})
    with pytest.raises(ValueError, match='container_executor'):
        GraphArgs.from_strings({'container_executor': 'threads'})
    executor = robot_graph(GraphArgs(one_process=True, container_executor='multi'))[-1].arguments[:2]
    assert executor == ('--executor', 'multi')


def test_launch_arguments_are_the_fields_of_graph_args(fake_launch):
    """Each argument is written once (a GraphArgs field); the launch file declares exactly
    those, with their defaults and descriptions, and parsing no strings gives the defaults.
    """
    declared = [(a.args[0], a.kwargs['default_value'], a.kwargs['description'])
                for a in load_launch_file().generate_launch_description()
                if isinstance(a, Recorded) and 'default_value' in a.kwargs]
    assert declared == ARGUMENTS
    assert [name for name, _, _ in ARGUMENTS] == [
        f for f in GraphArgs.__dataclass_fields__ if f != 'extra']
    assert GraphArgs.from_strings({}) == GraphArgs()
    assert GraphArgs.from_strings({name: default for name, default, _ in ARGUMENTS}) == GraphArgs()
    assert dict((name, default) for name, default, _ in ARGUMENTS)['sim'] == 'false'


def test_sim_launch_file_includes_the_robot_with_sim_true(fake_launch):
    include, = load_launch_file('sim.launch.py').generate_launch_description()
    source, = include.args
    assert source.args[0].endswith('robot.launch.py')
    forwarded = dict(include.kwargs['launch_arguments'])
    assert forwarded == {'sim': 'true'} and set(forwarded) <= {name for name, _, _ in ARGUMENTS}
    assert GraphArgs.from_strings(forwarded).sim


@pytest.mark.parametrize('value,text', [
    (True, 'true'), (False, 'false'), ('', "''"), ('tank', 'tank'), (2, '2'), (2.0, '2.0'),
    (0.5, '0.5'), (Path('/tmp/x'), '/tmp/x'),
])
def test_parameters_are_formatted_as_ros2_launch_passes_them(value, text):
    assert parameter_arguments({'p': value}) == ['-p', f'p:={text}']


def test_the_mux_owns_cmd_vel_and_the_relay_publishes_on_its_web_source(monkeypatch):
    from havatar_bringup import graph
    config = yaml.safe_load((PACKAGE_DIR / 'config' / 'robot.yaml').read_text())
    mux_params = config['/**/twist_mux']['ros__parameters']
    assert mux_params['topics']['web']['topic'] == graph.WEB_CMD_VEL
    assert mux_params['topics']['teleop']['priority'] > mux_params['topics']['web']['priority'] \
        > mux_params['topics']['autonomy']['priority']
    assert mux_params['locks']['e_stop']['priority'] == 255

    monkeypatch.setattr(graph, 'package_installed', lambda package: False)
    nodes = [e.executable for e in robot_graph(GraphArgs(sim=True))]
    assert nodes.index('motor_node') < nodes.index('twist_mux') < nodes.index('relay_node')
    entries = {e.executable: e for e in robot_graph(GraphArgs(sim=True))}
    assert entries['twist_mux'].package == 'havatar_drivers' and entries['twist_mux'].respawn
    assert entries['twist_mux'].remappings == (('cmd_vel_out', 'cmd_vel'),)
    assert entries['relay_node'].remappings == (('cmd_vel', 'cmd_vel/web'),)
    assert '-r' in command_line(entries['relay_node'], 'relay_node')[-2:-1]

    monkeypatch.setattr(graph, 'package_installed', lambda package: package == 'twist_mux')
    assert {e.executable: e for e in robot_graph(GraphArgs())}['twist_mux'].package == 'twist_mux'
    assert {e.executable: e for e in robot_graph(GraphArgs(twist_mux='havatar'))}['twist_mux'].package \
        == 'havatar_drivers'

    assert entries['incident_recorder'].parameters[1]['directory'].endswith('incidents')
    assert 'incident_recorder' not in [e.executable for e in robot_graph(GraphArgs(incident_recorder=False))]

    off = {e.executable: e for e in robot_graph(GraphArgs(twist_mux='off'))}
    assert 'twist_mux' not in off and off['relay_node'].remappings == ()
    with pytest.raises(ValueError, match='twist_mux'):
        robot_graph(GraphArgs(twist_mux='yes'))
