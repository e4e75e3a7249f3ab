"""Robot-to-person audio test tools: a microphone node and the relay node serving /audio/ws,
and the page's own WebAudio analyser (the browser: ``havatar_testing.browser``).
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

from havatar_bringup.graph import parameter_arguments
from havatar_bringup.processes import ManagedProcess, ProcessManager, free_port
from .relay import LOCAL_TOKEN
from .ros import ros_executable


def start_microphone(processes: ProcessManager, **params: Any) -> ManagedProcess:
    """The microphone node (a tone unless ``source`` says otherwise), once it captures."""
    mic = processes.start('microphone_node', [
        ros_executable('havatar_drivers', 'microphone_node'), '--ros-args',
        *parameter_arguments({'source': 'tone', **params})])
    mic.wait_for_output('capturing', timeout=20)
    return mic


def start_relay_node(processes: ProcessManager, token: str = LOCAL_TOKEN, **params: Any) -> tuple[str, ManagedProcess]:
    """A relay node without motors (its web UI, API and /audio/ws); returns (base URL, process)."""
    port = free_port()
    relay = processes.start('relay_node', [
        ros_executable('havatar_relay', 'relay_node'), '--ros-args', *parameter_arguments(
            {'robot_id': 'robot1', 'http_port': port, 'http_host': '127.0.0.1', **params})],
        env={'HAVATAR_ACCESS_TOKEN': token})
    relay.wait_for_output('web UI on', timeout=20)
    return f'http://127.0.0.1:{port}', relay


@pytest.fixture
def robot_microphone(processes) -> Callable[..., tuple[str, ManagedProcess]]:
    """Start a tone microphone (``tone_hz``) and a relay node; returns (base URL, relay process)."""
    def start(tone_hz: float = 660.0, **relay_params: Any) -> tuple[str, ManagedProcess]:
        start_microphone(processes, tone_hz=tone_hz)
        return start_relay_node(processes, **relay_params)
    return start


PEAK_JS = """(wanted) => {
  const a = window.havatarAudio;
  if (!a || a.context.state !== 'running') return false;
  const { hz, db } = a.peakHz();
  return Math.abs(hz - wanted) < 25 && db > -60 ? { hz, db } : false;
}"""  # the page's own output analyser (after volume and mute) hears the tone at ``wanted`` Hz
