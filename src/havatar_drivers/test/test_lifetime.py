"""Processes that die with their parent: the lifetime module, and the nodes and their ffmpeg."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from havatar_common import lifetime
from havatar_testing import find_program, ros_executable, wait_until

pytestmark = pytest.mark.skipif(not lifetime.supported(), reason='PR_SET_PDEATHSIG is Linux only')

GONE_WITHIN = 15.0  # seconds

# A parent that starts a long sleeper with the preexec and prints its pid.
PARENT = """
import signal, subprocess, sys, time
from havatar_common.lifetime import preexec
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],
                         preexec_fn=preexec(signal.SIGTERM))
print(child.pid, flush=True)
time.sleep(600)
"""


def gone(process: psutil.Process) -> bool:
    """Exited (a zombie waiting for init to reap it counts as exited)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def test_child_dies_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, '-c', PARENT], stdout=subprocess.PIPE)
    children: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        children.append(psutil.Process(int(parent.stdout.readline())))
        parent.kill()
        parent.wait()
        wait_until(lambda: gone(children[0]), GONE_WITHIN, 'the orphaned child to die')
    finally:
        parent.kill()
        parent.wait()
        kill_all(children)


def test_child_dies_at_once_when_its_parent_is_already_gone():
    """The race: the parent died between fork and prctl (simulated by naming another parent)."""
    child = subprocess.Popen(['sleep', '60'],
                             preexec_fn=lifetime.preexec(signal.SIGTERM, parent_pid=os.getppid()))
    try:
        assert child.wait(timeout=GONE_WITHIN) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()


def test_child_dies_with_the_thread_that_started_it():
    """The kernel's caveat, pinned down: the signal follows the forking thread, not the process."""
    started: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=lambda: started.append(
        subprocess.Popen(['sleep', '60'], preexec_fn=lifetime.preexec(signal.SIGKILL))))
    thread.start()
    thread.join()
    try:
        assert started[0].wait(timeout=GONE_WITHIN) == -signal.SIGKILL
    finally:
        for child in started:
            child.kill()
            child.wait()


def test_node_exits_at_once_when_its_launcher_is_already_gone(ros_env):
    """spin_node's race check: the launcher's pid in HAVATAR_PARENT_PID is not the parent."""
    node = subprocess.Popen(
        [ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p', 'source:=test_pattern'],
        env={**ros_env, lifetime.PARENT_PID_ENV: str(os.getppid())},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = node.communicate(timeout=30)
        assert node.returncode == -signal.SIGTERM, out.decode(errors='replace')
        assert b'publishing' not in out
    finally:
        node.kill()
        node.wait()


def test_node_dies_with_its_launcher_even_when_the_launcher_is_killed(processes):
    """A launcher that sets nothing up (no preexec): the node's own spin_node does it."""
    node_argv = [str(ros_executable('havatar_drivers', 'camera_node')), '--ros-args',
                 '-p', 'source:=test_pattern', '-p', 'width:=64', '-p', 'height:=48']
    launcher = processes.start('launcher', [sys.executable, '-c', (
        'import subprocess, sys, time\n'
        f'subprocess.Popen({node_argv!r})\n'
        'time.sleep(600)\n')])
    launcher.wait_for_output('publishing', timeout=30)
    nodes = psutil.Process(launcher.pid).children()
    try:
        assert len(nodes) == 1
        os.kill(launcher.pid, signal.SIGKILL)  # only the launcher, not its process group
        wait_until(lambda: gone(nodes[0]), GONE_WITHIN, 'the node to stop')
    finally:
        kill_all(nodes)


@pytest.fixture
def stalled_ffmpeg(tmp_path: Path) -> dict[str, str]:
    """An ``ffmpeg`` first on PATH: the real one, reading a device that never delivers
    (a FIFO nobody writes), like a camera that hangs. It never writes, so nothing but the
    parent-death signal can tell it its node is gone.
    """
    fifo = tmp_path / 'stalled-device'
    os.mkfifo(fifo)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    wrapper = bin_dir / 'ffmpeg'
    wrapper.write_text(
        '#!/bin/sh\n'
        '# skip the real input (up to and including "-i DEVICE"), read the FIFO instead\n'
        'while [ $# -gt 0 ] && [ "$1" != "-i" ]; do shift; done\n'
        'shift 2\n'
        f'exec {find_program("ffmpeg")} -hide_banner -nostdin -loglevel error '
        f'-f rawvideo -pix_fmt gray -video_size 16x16 -i {fifo} "$@"\n')
    wrapper.chmod(0o755)
    return {'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'}


@pytest.mark.parametrize('executable, params', [
    ('camera_node', ['source:=v4l2', 'device:=/dev/null', 'width:=64', 'height:=48']),
    ('microphone_node', ['source:=alsa', 'device:=hw:9,9']),
])
def test_ffmpeg_dies_when_its_node_is_killed(processes, stalled_ffmpeg, executable, params):
    argv = [ros_executable('havatar_drivers', executable), '--ros-args']
    for p in params:
        argv += ['-p', p]
    node = processes.start(executable, argv, env=stalled_ffmpeg)

    def ffmpeg() -> list[psutil.Process]:
        return [c for c in psutil.Process(node.pid).children() if c.name() == 'ffmpeg']
    children: list[psutil.Process] = node.wait_for(ffmpeg, 30, 'the node to start ffmpeg')  # type: ignore[assignment]
    try:
        os.kill(node.pid, signal.SIGKILL)  # only the node: ffmpeg is in its process group
        wait_until(lambda: all(gone(c) for c in children), GONE_WITHIN, 'ffmpeg to die')
    finally:
        kill_all(children)
