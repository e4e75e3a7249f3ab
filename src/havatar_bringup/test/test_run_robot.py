"""run_robot, the robot's graph without ``ros2 launch`` (what systemd/havatar-robot.service runs):
READY=1 to systemd once the web UI answers, nodes respawned, a clean stop on SIGTERM,
and its watchdog: killed or stopped nodes restarted and reported, the motors stopped meanwhile.
"""
from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import psutil
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist

from havatar_bringup.graph import default_params_file
from havatar_bringup.processes import http_answers
from havatar_drivers.esp32.simulator import read_record
from havatar_testing import free_port, ros_executable, wait_until
from havatar_testing.relay import Client
from havatar_testing.systemd import NotifySocket

FORWARD_PWM = 'PWM 128 128'  # 0.25 m/s with the default kinematics
V1_NO_WATCHDOG_BOUND_S = 2.0  # the bound: as soon as v2 firmware stops by itself
STOPPED_NODE_BOUND_S = 0.5    # what the watchdog reaches for a hung (SIGSTOPped) motor node


def params_file(tmp_path: Path) -> tuple[Path, int]:
    """robot.yaml with the web UI and MJPEG on free localhost ports; returns it and the UI port."""
    data = yaml.safe_load(Path(default_params_file()).read_text())
    ui, mjpeg = free_port(), free_port()
    data['/**/relay_node']['ros__parameters'].update(
        http_host='127.0.0.1', http_port=ui, mjpeg_port=mjpeg, settings_file=str(tmp_path / 'server_mode.json'))
    data['/**/streaming_node']['ros__parameters'].update(mjpeg_host='127.0.0.1', mjpeg_port=mjpeg,
                                                         settings_file=str(tmp_path / 'server_mode.json'))
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump(data))
    return path, ui


def nodes_named(root: psutil.Process, name: str) -> list[psutil.Process]:
    found = []
    for child in root.children(recursive=True):
        try:
            if f'__node:={name}' in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_run_robot_is_ready_for_systemd_respawns_hardware_nodes_and_stops_cleanly(processes, tmp_path):
    params, ui = params_file(tmp_path)
    systemd = NotifySocket(tmp_path / 'notify')
    try:
        robot = processes.start('run_robot', [
            ros_executable('havatar_bringup', 'run_robot'), 'sim:=true', f'params_file:={params}',
            f'sim_dir:={tmp_path / "sim"}', '--log-dir', tmp_path / 'robot-logs'],
            env={**systemd.env, 'HOME': str(tmp_path), 'HAVATAR_ACCESS_TOKEN': 'test-token'})
        systemd.wait_for('READY=1', timeout=120, alive=robot.running)
        assert http_answers(f'http://127.0.0.1:{ui}/'), 'the web UI answers once READY=1 is sent'
        root = psutil.Process(robot.pid)
        everything = root.children(recursive=True)

        (camera,) = nodes_named(root, 'camera_node')
        camera.kill()  # a hardware node dies: it comes back, the robot stays up
        wait_until(lambda: [p for p in nodes_named(root, 'camera_node') if p.pid != camera.pid], 20,
                   'a respawned camera_node')
        assert robot.running()
        everything += root.children(recursive=True)

        robot.signal(signal.SIGTERM)  # systemctl stop (KillMode=mixed: the main process only)
        assert robot.wait_exit(timeout=60) == 0, robot.tail()
        systemd.wait_for('STOPPING=1', timeout=5)
        left = [p for p in everything if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, [p.cmdline() for p in left]
    finally:
        systemd.close()


def wait_for_sim_line(record: Path, wanted: str, after: float, timeout: float = 30.0) -> float:
    """The simulator's time of the first line ``wanted`` received after ``after``."""
    def find() -> float | None:
        return next((t for t, line in read_record(record) if t > after and line == wanted), None)
    return wait_until(find, timeout, f'{wanted!r} at the simulator')  # type: ignore[return-value]


def respawned(root: psutil.Process, name: str, old: psutil.Process) -> psutil.Process:
    found = wait_until(lambda: [p for p in nodes_named(root, name) if p.pid != old.pid], 30,
                       f'a respawned {name}')
    return found[0]  # type: ignore[index]


def test_watchdog_restarts_killed_and_stopped_nodes_stops_the_motors_and_reports(
        processes, tmp_path, ros_node):
    params, ui = params_file(tmp_path)
    sim_dir = tmp_path / 'sim'
    record = sim_dir / 'record.jsonl'
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    robot = processes.start('run_robot', [
        ros_executable('havatar_bringup', 'run_robot'), 'sim:=true', f'params_file:={params}',
        f'sim_dir:={sim_dir}', '--log-dir', tmp_path / 'robot-logs'],
        env={'HOME': str(tmp_path), 'HAVATAR_ACCESS_TOKEN': 'test-token'})
    robot.wait_for_http(f'http://127.0.0.1:{ui}/', timeout=120)
    root = psutil.Process(robot.pid)
    forward = Twist()
    forward.linear.x = 0.25
    cmd_vel = ros_node.node.create_publisher(Twist, 'cmd_vel', 10)
    ros_node.node.create_timer(0.05, lambda: cmd_vel.publish(forward))  # an operator driving

    since = 0.0
    for sig, bound in ((signal.SIGKILL, V1_NO_WATCHDOG_BOUND_S), (signal.SIGSTOP, STOPPED_NODE_BOUND_S)):
        (motor,) = nodes_named(root, 'motor_node')
        wait_for_sim_line(record, FORWARD_PWM, after=since)  # driving (v1 keeps it without us)
        # the motor node must have told the watchdog its port (its first heartbeat) first
        diagnostics.wait_for(lambda m: any(s.name == 'motor_node: ESP32 link' and s.level == DiagnosticStatus.OK
                                           for s in m.status), timeout=30, what='motor connected')
        signalled = time.time()
        motor.send_signal(sig)
        stopped = wait_for_sim_line(record, 'STOP', after=signalled)
        assert stopped - signalled < bound, f'{sig.name}: STOP after {stopped - signalled:.3f} s'
        respawned(root, 'motor_node', motor)
        again = wait_for_sim_line(record, 'STOP', after=stopped)  # motor_guard's, the watchdog's or the node's
        print(f'{sig.name} of the motor node: STOP at the simulator after {stopped - signalled:.3f} s '
              f'(motor_guard or the watchdog), the next after {again - signalled:.3f} s')
        wait_for_sim_line(record, FORWARD_PWM, after=stopped)  # back and driving again
        since = stopped
        diagnostics.clear()

    for sig in (signal.SIGKILL, signal.SIGSTOP):  # dead, then hung: killed and respawned
        (camera,) = nodes_named(root, 'camera_node')
        camera.send_signal(sig)
        respawned(root, 'camera_node', camera)
    report = diagnostics.wait_for(
        lambda m: any(s.name == 'run_robot: watchdog' and s.message.startswith('camera_node restarted')
                      and s.message.endswith('(stopped)') for s in m.status),
        timeout=30, what='the camera restarts on /diagnostics')
    values = {kv.key: kv.value for kv in report.status[0].values}
    assert values['motor_node'].startswith('2 restart(s)') and values['motor_node'].endswith(': stopped')
    assert values['camera_node'].startswith('2 restart(s)') and values['camera_node'].endswith(': stopped')
    assert robot.running()

    async def shown_in_the_web_ui() -> str:  # the relay node forwards it in its status
        user = await Client.connect(f'http://127.0.0.1:{ui}', 'user', 'test-token', 'robot')
        try:
            while not (status := await user.next('status', timeout=10))['link']['watchdog']:
                pass
            return status['link']['watchdog']
        finally:
            await user.close()
    assert asyncio.run(asyncio.wait_for(shown_in_the_web_ui(), 30)).startswith('camera_node restarted')

    robot.signal(signal.SIGTERM)
    assert robot.wait_exit(timeout=60) == 0, robot.tail()


def test_watchdog_respawns_killed_and_stopped_relay_and_streaming_nodes(processes, tmp_path, ros_node):
    params, ui = params_file(tmp_path)
    mjpeg = yaml.safe_load(params.read_text())['/**/streaming_node']['ros__parameters']['mjpeg_port']
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics')
    robot = processes.start('run_robot', [
        ros_executable('havatar_bringup', 'run_robot'), 'sim:=true', f'params_file:={params}',
        f'sim_dir:={tmp_path / "sim"}', '--log-dir', tmp_path / 'robot-logs'],
        env={'HOME': str(tmp_path), 'HAVATAR_ACCESS_TOKEN': 'test-token'})
    robot.wait_for_http(f'http://127.0.0.1:{ui}/', timeout=120)
    root = psutil.Process(robot.pid)
    serves = {'relay_node': f'http://127.0.0.1:{ui}/', 'streaming_node': f'http://127.0.0.1:{mjpeg}/stats'}

    for name, url in serves.items():
        for sig in (signal.SIGKILL, signal.SIGSTOP):  # dead, then hung: killed and respawned
            # its heartbeat (the relay node's too), which would also reveal a hang of its own
            diagnostics.wait_for(lambda m: any(s.name.startswith(f'{name}: ') for s in m.status),
                                 timeout=30, what=f'a heartbeat of {name}')
            (node,) = nodes_named(root, name)
            node.send_signal(sig)
            respawned(root, name, node)
            wait_until(lambda: http_answers(url), 60, f'{url} answering again')
            diagnostics.clear()

    report = diagnostics.wait_for(
        lambda m: any(s.name == 'run_robot: watchdog' and s.message.startswith('streaming_node restarted')
                      for s in m.status), timeout=30, what='the restarts on /diagnostics')
    values = {kv.key: kv.value for kv in report.status[0].values}
    for name in serves:
        assert values[name].startswith('2 restart(s)') and values[name].endswith(': stopped'), values
    assert robot.running()
    robot.signal(signal.SIGTERM)
    assert robot.wait_exit(timeout=60) == 0, robot.tail()
