"""pytest fixtures shared by every Havatar package's tests.

- ``ros_env``: a ROS_DOMAIN_ID of the test's own (locked machine-wide) and localhost-only
  discovery, as an environment for subprocesses.
- ``processes``: starts subprocesses with that environment; stops them all after the test,
  also when it fails, and prints their output tails when it failed.
- ``ros_node``: an rclpy node of the test, in the same domain.
- ``mediamtx_factory``: real MediaMTX instances on free localhost ports.
- ``start_sim``, ``start_motor_node``: the ESP32 simulator and the motor node.
- ``sources``, ``streaming_node``: simulated camera/microphone and the streaming node.
- ``redis_url``, ``relay_server``, ``relay_robot``: Redis, relay servers, the robot's relay node.
- ``cloud_robot``: the robot behind relay instances sharing Redis, for the fault suite.
- ``robot_microphone``: a tone microphone node and a relay node serving /audio/ws.
- ``toxiproxy``: a Toxiproxy server of the test, for network faults between real processes.
- ``chromium``, ``launch_chromium``: a headless Chromium (autoplay, fake microphone) and a
  launcher of more (``autoplay``, ``microphone`` file) for web UI tests; ``browser.PageWatch``
  collects what would show red in a page's console.
- ``proxied_stack``, ``fake_robot``: the shipped Caddyfile in front of a relay server and
  MediaMTX, and a robot1 on it whose stream mode the test sets.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .audio import robot_microphone  # noqa: F401  (fixture)
from .faults import cloud_robot  # noqa: F401  (fixture)
from havatar_bringup.processes import ProcessManager, free_port
from .isolation import DomainLease, clean_dds_shared_memory, ros_environment
from .mediamtx import MediaMtxServer, MediaMtxUser
from .ros import RosTestNode
from .relay import redis_url, relay_robot, relay_server  # noqa: F401  (fixtures)
from .robot import start_motor_node, start_sim  # noqa: F401  (fixtures)
from .browser import chromium, launch_chromium  # noqa: F401  (fixtures)
from .stack import fake_robot, proxied_stack  # noqa: F401  (fixtures)
from .streaming import sources, streaming_node  # noqa: F401  (fixtures)
from .toxiproxy import ToxiproxyServer


def pytest_sessionstart(session: pytest.Session) -> None:
    clean_dds_shared_memory()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    clean_dds_shared_memory()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if 'processes' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    manager = getattr(item, '_havatar_processes', None)
    if report.failed and manager is not None and manager.processes:
        report.sections.append(('havatar processes', manager.report()))


@pytest.fixture
def ros_domain() -> Iterator[int]:
    """A ROS_DOMAIN_ID that no other test on this machine uses at the same time."""
    lease = DomainLease()
    try:
        yield lease.domain_id
    finally:
        lease.release()


@pytest.fixture
def ros_env(ros_domain: int, tmp_path: Path) -> dict[str, str]:
    """The full environment for a subprocess of this test (ROS isolation included).

    ``XDG_CONFIG_HOME`` is the test's own, so no node reads or writes the developer's saved
    settings or access token (``~/.config/havatar``).
    """
    env = dict(os.environ)
    env.update(ros_environment(ros_domain))
    env['XDG_CONFIG_HOME'] = str(tmp_path / 'xdg-config')
    return env


@pytest.fixture
def processes(request: pytest.FixtureRequest, ros_env: dict[str, str],
              tmp_path: Path) -> Iterator[ProcessManager]:
    """Start subprocesses for this test; all are stopped when it ends."""
    log_dir = tmp_path / 'logs'
    log_dir.mkdir()
    manager = ProcessManager(log_dir, ros_env)
    request.node._havatar_processes = manager
    try:
        yield manager
    finally:
        manager.stop_all()


@pytest.fixture
def ros_node(ros_domain: int) -> Iterator[RosTestNode]:
    """An rclpy node of the test process, in the test's domain."""
    os.environ.update(ros_environment(ros_domain))  # discovery range is read from the environment
    node = RosTestNode(ros_domain)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def free_tcp_port() -> Callable[[], int]:
    """A function returning a free TCP port on 127.0.0.1 at each call."""
    return free_port


@pytest.fixture
def mediamtx_factory(processes: ProcessManager,
                     tmp_path: Path) -> Callable[..., MediaMtxServer]:
    """Make and start MediaMTX instances: ``mediamtx_factory(users=[...], overrides={...})``."""
    count = 0

    def make(users: list[MediaMtxUser], overrides: dict[str, Any] | None = None,
             start: bool = True) -> MediaMtxServer:
        nonlocal count
        count += 1
        work_dir = tmp_path / f'mediamtx-{count}'
        work_dir.mkdir()
        server = MediaMtxServer(processes, work_dir, users, overrides)
        return server.start() if start else server

    return make


@pytest.fixture
def toxiproxy(processes: ProcessManager) -> Iterator[ToxiproxyServer]:
    """A started Toxiproxy server of this test: ``toxiproxy.proxy('redis', port)``."""
    server = ToxiproxyServer(processes).start()
    try:
        yield server
    finally:
        server.stop()
