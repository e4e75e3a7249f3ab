"""run_robot, the robot's graph without ``ros2 launch`` (what systemd/havatar-robot.service runs):
READY=1 to systemd once the web UI answers, hardware nodes respawned, a clean stop on SIGTERM.
"""
from __future__ import annotations

import signal
from pathlib import Path

import psutil
import yaml

from havatar_bringup.graph import default_params_file
from havatar_bringup.processes import http_answers
from havatar_testing import free_port, ros_executable, wait_until
from havatar_testing.systemd import NotifySocket


def params_file(tmp_path: Path) -> tuple[Path, int]:
    """robot.yaml with the web UI and MJPEG on free localhost ports; returns it and the UI port."""
    data = yaml.safe_load(Path(default_params_file()).read_text())
    ui, mjpeg = free_port(), free_port()
    data['/**/relay_node']['ros__parameters'].update(
        http_host='127.0.0.1', http_port=ui, mjpeg_port=mjpeg, settings_file=str(tmp_path / 'server_mode.json'))
    data['/**/streaming_node']['ros__parameters'].update(mjpeg_host='127.0.0.1', mjpeg_port=mjpeg)
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
