"""The original HTTP API's answers and its settings file without ROS, and the bridge that
brings a service's answer from the executor's thread to the server's loop.
"""
from __future__ import annotations

import asyncio
import json
import stat
import threading
from typing import Any, Callable, Optional

import pytest

from havatar_relay import protocol as p
from havatar_relay.robot_api import RobotHttpApi, SettingsRefused, SettingsStore
from havatar_relay.streaming_control import call_service


class Streaming:
    """The streaming node as the API sees it; records what it was asked."""

    def __init__(self) -> None:
        self.modes: list[str] = []
        self.parameters: list[dict[str, Any]] = []
        self.refuse: Optional[str] = None      # a parameter reason to refuse with
        self.unreachable = False

    async def set_mode(self, mode: str) -> tuple[bool, str]:
        self.modes.append(mode)
        return True, f'{mode} mode'

    async def set_parameters(self, values: dict[str, Any]) -> list[tuple[bool, str]]:
        if self.unreachable:
            raise RuntimeError('streaming_node/set_parameters is not available')
        self.parameters.append(values)
        return [(self.refuse is None, self.refuse or '')]  # atomically: one result

    async def get_parameters(self, names: tuple[str, ...]) -> dict[str, Any]:
        if self.unreachable:
            raise RuntimeError('streaming_node/get_parameters is not available')
        return {name: {'allow_unencrypted': True}.get(name, '') for name in names}


def make_api(tmp_path, connected: bool = False) -> tuple[RobotHttpApi, Streaming]:
    streaming = Streaming()
    status = p.Status(robot_id='robot1', stream=p.StreamState(requested='server', active='local',
                                                              fallback=True), ts=1.0)
    api = RobotHttpApi(SettingsStore(tmp_path / 'cfg' / 'server_mode.json'), streaming,
                       lambda: status, lambda: connected)
    return api, streaming


def test_status_names_the_server_in_use_when_nothing_was_saved(tmp_path):
    streaming = Streaming()
    status = p.Status(robot_id='robot1', stream=p.StreamState(requested='server', active='server'), ts=1.0)
    in_use = 'rtsps://set-at-launch.example.org:8322'  # streaming_node's parameter, no saved settings
    api = RobotHttpApi(SettingsStore(tmp_path / 'server_mode.json'), streaming, lambda: status,
                       lambda: True, lambda: in_use)
    reply = asyncio.run(api.server_status())
    assert reply['server_url'] == reply['status']['server_url'] == in_use
    api.server_url_in_use = lambda: ''  # the streaming node not heard from yet: the saved one
    asyncio.run(api.save_server_config({'server_url': 'rtsp://saved.example.org:8554'}))
    assert asyncio.run(api.server_status())['server_url'] == 'rtsp://saved.example.org:8554'


SETTINGS = {'enabled': True, 'server_url': 'rtsp://media.example.org:8554', 'stream_key': 'robot1',
            'stream_password': 'pw', 'fallback_to_local': False}


def test_saved_settings_are_merged_private_and_applied(tmp_path):
    api, streaming = make_api(tmp_path)
    reply = asyncio.run(api.save_server_config(SETTINGS))
    assert reply['ok'] and reply['msg'] == 'Server configuration updated'
    assert reply['success'] and reply['applied'] and reply['message'].startswith('server mode requested')
    assert reply['stream_password_set'] and 'pw' not in json.dumps(reply)
    path = tmp_path / 'cfg' / 'server_mode.json'
    assert json.loads(path.read_text()) == {'server_mode': SETTINGS}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert streaming.parameters == [{'mode': 'server', 'server_url': SETTINGS['server_url'],
                                     'stream_key': 'robot1', 'stream_password': 'pw',
                                     'fallback_to_local': False}]  # in one step
    reply = asyncio.run(api.save_server_config({'enabled': False, 'stream_password_set': True,
                                                'stream_password': '', 'fallback_to_local': True}))
    assert reply['server_url'] == SETTINGS['server_url'] and reply['stream_password_set']  # merged
    assert streaming.parameters[-1]['fallback_to_local'] is True and streaming.parameters[-1]['mode'] == 'local'
    assert reply['message'] == 'local mode'
    assert json.loads(path.read_text())['server_mode']['stream_password'] == 'pw'  # '' keeps it


def test_the_original_uis_https_address_is_mapped_before_it_is_saved(tmp_path):
    api, streaming = make_api(tmp_path)
    reply = asyncio.run(api.save_server_config({**SETTINGS, 'server_url': 'https://your-server.com'}))
    assert reply['ok'] and reply['server_url'] == 'rtsps://your-server.com:8322'
    assert streaming.parameters[0]['server_url'] == 'rtsps://your-server.com:8322'
    saved = json.loads((tmp_path / 'cfg' / 'server_mode.json').read_text())['server_mode']
    assert saved['server_url'] == 'rtsps://your-server.com:8322'
    with pytest.raises(ValueError, match='must be rtsps://host:port'):
        asyncio.run(api.save_server_config({'server_url': 'ftp://your-server.com'}))
    assert api.server_config()['server_url'] == 'rtsps://your-server.com:8322'


def test_invalid_settings_are_refused_and_not_saved(tmp_path):
    api, streaming = make_api(tmp_path)
    with pytest.raises(ValueError, match='server_url'):
        asyncio.run(api.save_server_config({'enabled': True, 'server_url': ''}))
    with pytest.raises(ValueError, match='unknown'):
        asyncio.run(api.save_server_config({'colour': 'red'}))
    assert not (tmp_path / 'cfg' / 'server_mode.json').exists()
    assert api.server_config() == {'enabled': False, 'server_url': '', 'stream_key': '',
                                   'fallback_to_local': True, 'stream_password_set': False}
    assert streaming.parameters == [] and streaming.modes == []


def test_settings_the_streaming_node_refuses_are_not_saved(tmp_path):
    api, streaming = make_api(tmp_path)
    streaming.refuse = 'parameter server_url is unencrypted RTSP to a host that is not loopback'
    with pytest.raises(SettingsRefused, match='unencrypted RTSP'):
        asyncio.run(api.save_server_config(SETTINGS))
    assert not (tmp_path / 'cfg' / 'server_mode.json').exists()


def test_settings_saved_while_the_streaming_node_is_down_are_saved_not_applied(tmp_path):
    api, streaming = make_api(tmp_path)
    streaming.unreachable = True
    reply = asyncio.run(api.save_server_config(SETTINGS))
    assert reply['ok'] and not reply['applied']
    assert reply['message'].startswith('saved, not applied: the streaming node cannot be reached')
    assert (tmp_path / 'cfg' / 'server_mode.json').exists()


def test_server_status_and_mode_switches(tmp_path):
    api, streaming = make_api(tmp_path, connected=True)
    reply = asyncio.run(api.set_server_mode(True))
    assert streaming.modes == ['server']
    original = {'server_mode_enabled': False, 'connected_to_server': False, 'video_streaming': False,
                'audio_streaming': False, 'server_url': ''}
    assert reply == {'ok': True, 'msg': 'server mode', 'success': True, 'message': 'server mode',
                     'status': {**original, 'stream_key': '', 'requested_mode': 'server', 'fallback': True,
                                'last_error': ''},
                     'enabled': True, 'active_mode': 'local',
                     'requested_mode': 'server', 'fallback': True, 'server_reachable': False,
                     'last_error': '', 'server_url': '', 'stream_key': '', 'relay_connected': True}
    health = api.system_status()
    assert {'cpu_percent', 'memory_percent', 'temperature_c', 'uptime_s'} <= set(health)
    assert health['server'] == {'available': True, **original}
    assert health['stream']['requested'] == 'server' and health['relay_connected']


class FakeFuture:
    """rclpy's Future as the executor completes it: callbacks on the executor's thread."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[['FakeFuture'], None]] = []
        self._result: Any = None
        self._exception: Optional[BaseException] = None
        self._done = False
        self._lock = threading.Lock()

    def add_done_callback(self, callback: Callable[['FakeFuture'], None]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def complete(self, result: Any = None, exception: Optional[BaseException] = None) -> None:
        with self._lock:
            self._result, self._exception, self._done = result, exception, True
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback(self)

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return False

    def exception(self) -> Optional[BaseException]:
        return self._exception

    def result(self) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result


class FakeClient:
    srv_name = '/stream/set_mode'

    def __init__(self, ready: bool = True, answer_after: Optional[float] = 0.05,
                 exception: Optional[BaseException] = None, lose_first: int = 0) -> None:
        self.ready, self.answer_after, self.exception = ready, answer_after, exception
        self.lose_first = lose_first  # responses lost as when discovery has not matched yet
        self.answered_on: Optional[threading.Thread] = None
        self.sent = 0
        self.removed: list[FakeFuture] = []

    def service_is_ready(self) -> bool:
        return self.ready

    def call_async(self, request: Any) -> FakeFuture:
        future = FakeFuture()
        self.sent += 1
        if self.answer_after is not None and self.sent > self.lose_first:
            def answer() -> None:
                self.answered_on = threading.current_thread()
                future.complete(f'answer to {request}', self.exception)
            threading.Timer(self.answer_after, answer).start()
        return future

    def remove_pending_request(self, future: FakeFuture) -> None:
        self.removed.append(future)


def test_a_service_answer_from_another_thread_reaches_the_loop():
    client = FakeClient()

    async def call() -> tuple[Any, threading.Thread]:
        return await call_service(client, 'req'), threading.current_thread()
    answer, loop_thread = asyncio.run(asyncio.wait_for(call(), 5))
    assert answer == 'answer to req'
    assert client.answered_on is not None and client.answered_on is not loop_thread


def test_an_already_answered_call_and_a_failed_one():
    client = FakeClient(answer_after=0.0)
    assert asyncio.run(call_service(client, 'now')) == 'answer to now'
    failing = FakeClient(exception=ValueError('bad request'))
    with pytest.raises(ValueError, match='bad request'):
        asyncio.run(call_service(failing, 'x'))


def test_a_request_whose_response_was_lost_is_sent_again_and_the_unanswered_one_forgotten():
    client = FakeClient(lose_first=2)
    assert asyncio.run(call_service(client, 'x', timeout=2.0, resend=0.1)) == 'answer to x'
    assert client.sent == 3 and len(client.removed) == 2


@pytest.mark.parametrize('client,error', [
    (FakeClient(ready=False), '/stream/set_mode is not available'),
    (FakeClient(answer_after=None), '/stream/set_mode did not answer'),
])
def test_a_missing_or_silent_service_raises_runtime_error(client, error):
    with pytest.raises(RuntimeError, match=error):
        asyncio.run(call_service(client, 'x', timeout=0.1))
