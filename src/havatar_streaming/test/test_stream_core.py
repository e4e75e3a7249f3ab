"""The mode state machine and the server_mode configuration (pure code)."""
from __future__ import annotations

import json
from collections import deque

import pytest
import yaml

from havatar_streaming.convert_server_config import main as convert_main
from havatar_streaming.mode import Action, ModeMachine
from havatar_streaming.rtsp_session import AUDIO_QUEUE_MAX, PublishSettings, ffmpeg_argv, trim_backlog
from havatar_streaming.server_settings import ServerModeConfig, read_settings_file
from havatar_streaming.server_url import map_server_url


def test_server_request_starts_and_confirms():
    m = ModeMachine()
    assert m.request('server', 0.0) == [Action.START_SERVER]
    assert m.active == 'local' and m.starting
    assert m.request('server', 0.1) == []  # already on its way
    m.started(1.0)
    assert (m.active, m.fallback) == ('server', False)


def test_failures_fall_back_and_retry_with_backoff():
    m = ModeMachine(backoff_min=1.0, backoff_max=4.0)
    m.request('server', 0.0)
    assert m.failed('refused', 0.5) == [Action.STOP_SERVER]
    assert (m.active, m.fallback, m.retry_at) == ('local', True, 1.5)
    assert m.tick(1.0) == []
    assert m.tick(1.5) == [Action.START_SERVER]
    m.failed('refused', 2.0)
    assert m.retry_at == 4.0       # 2 s
    m.tick(4.0)
    m.failed('refused', 4.0)
    assert m.retry_at == 8.0       # 4 s, the maximum
    m.tick(8.0)
    m.failed('refused', 8.0)
    assert m.retry_at == 12.0
    m.tick(12.0)
    m.started(12.5)
    m.failed('dropped', 20.0)
    assert m.retry_at == 21.0      # back-off reset after a success


def test_local_request_cancels_everything():
    m = ModeMachine()
    m.request('server', 0.0)
    m.failed('x', 1.0)
    assert m.request('local', 1.5) == []
    assert (m.requested, m.active, m.fallback, m.retry_at) == ('local', 'local', False, None)
    assert m.tick(100.0) == []
    with pytest.raises(ValueError):
        m.request('cloud', 0.0)


def test_no_retry_without_fallback_to_local():
    m = ModeMachine(fallback_to_local=False)
    m.request('server', 0.0)
    m.failed('x', 1.0)
    assert m.retry_at is None and m.tick(1000.0) == []


def test_each_start_is_a_new_attempt_and_stale_reports_are_ignored():
    m = ModeMachine()
    m.request('server', 0.0)
    first = m.wanted_attempt
    assert first is not None
    m.request('local', 0.1)
    assert m.wanted_attempt is None
    assert m.failed('late error of the first start', 0.2, first) == []
    assert (m.fallback, m.last_error) == (False, '')
    m.request('server', 0.3)
    second = m.wanted_attempt
    assert second != first
    m.started(0.4, first)  # the first start's session became ready: too late
    assert m.active == 'local' and m.starting
    m.started(0.5, second)
    assert m.active == 'server' and m.wanted_attempt == second


def test_restart_starts_a_new_attempt_only_when_server_mode_is_wanted():
    m = ModeMachine()
    assert m.restart(0.0) == [] and m.wanted_attempt is None  # local: nothing to restart
    m.request('server', 0.0)
    m.started(1.0)
    running = m.wanted_attempt
    assert m.restart(2.0) == [Action.STOP_SERVER, Action.START_SERVER]
    assert m.active == 'local' and m.starting and m.wanted_attempt != running
    m.failed('refused', 3.0)
    assert m.retry_at is not None
    assert m.restart(3.5) == [Action.START_SERVER]  # new settings: try them now
    assert m.starting and m.retry_at is None


def test_publish_url_and_encoder_choice():
    s = PublishSettings('rtsp://example.org:8554', 'robot1', 'robot1', 'p@ss:word',
                        encoder='h264_v4l2m2m')
    assert s.url() == 'rtsp://robot1:p%40ss%3Aword@example.org:8554/robot1'
    assert s.url(with_password=False) == 'rtsp://robot1:***@example.org:8554/robot1'
    argv = ffmpeg_argv(s, 'rtsp://127.0.0.1:4242/robot1', '/tmp/audio')
    assert argv[-1] == 'rtsp://127.0.0.1:4242/robot1' and not any('p%40ss' in a for a in argv)
    assert argv[argv.index('-c:v') + 1] == 'h264_v4l2m2m' and '-preset' not in argv
    assert argv[argv.index('-c:a') + 1] == 'libopus'
    # one input is read without a thread queue: ffmpeg 5.1 polls threaded inputs every 10 ms
    assert '-thread_queue_size' in argv
    assert '-thread_queue_size' not in ffmpeg_argv(s, 'rtsp://127.0.0.1:4242/robot1', None)


LEGACY = {'server_mode': {'enabled': True, 'server_url': 'rtsp://example.org:8554',
                          'stream_key': 'robot1', 'stream_password': 'pw',
                          'fallback_to_local': False}}


def test_legacy_json_converts_to_a_parameter_file(tmp_path, capsys):
    path = tmp_path / 'avatar_tank_config.json'
    path.write_text(json.dumps(LEGACY))
    assert convert_main([str(path)]) == 0
    params = yaml.safe_load(capsys.readouterr().out)['streaming_node']['ros__parameters']
    assert params == {'mode': 'server', 'server_url': 'rtsp://example.org:8554',
                      'stream_key': 'robot1', 'fallback_to_local': False}
    out = tmp_path / 'streaming.yaml'
    assert convert_main([str(path), '-o', str(out), '--include-password']) == 0
    assert yaml.safe_load(out.read_text())['streaming_node']['ros__parameters']['stream_password'] == 'pw'
    assert out.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize('bad', [{'server_mode': []}, {'server_mode': {'enabled': True}},
                                 {'server_mode': {'enabeld': True}}])
def test_bad_legacy_config_is_refused(bad):
    with pytest.raises(ValueError):
        ServerModeConfig.from_legacy(bad)


def test_fallback_to_local_changes_while_running():
    m = ModeMachine(fallback_to_local=False, backoff_min=1.0)
    m.request('server', 0.0)
    m.failed('refused', 1.0)
    assert m.fallback and m.retry_at is None and m.tick(100.0) == []  # given up
    m.set_fallback_to_local(True, 100.0)
    assert m.retry_at == 101.0 and m.tick(101.0) == [Action.START_SERVER]
    m.failed('refused', 102.0)
    assert m.retry_at is not None
    m.set_fallback_to_local(False, 102.5)
    assert m.retry_at is None and m.tick(1000.0) == []


@pytest.mark.parametrize('entered,used', [
    ('https://your-server.com', 'rtsps://your-server.com:8322'),
    ('https://media.example.org:443/some/page', 'rtsps://media.example.org:8322'),
    ('http://10.0.0.5', 'rtsp://10.0.0.5:8554'),
    ('https://[2001:db8::1]', 'rtsps://[2001:db8::1]:8322'),
    ('rtsps://media.example.org:9322', 'rtsps://media.example.org:9322'),
    (' rtsp://127.0.0.1:8554 ', 'rtsp://127.0.0.1:8554'),
    ('', ''),
])
def test_the_original_uis_web_address_maps_to_rtsp(entered, used):
    assert map_server_url(entered) == used


@pytest.mark.parametrize('bad', ['your-server.com', 'ftp://x.org', 'https://', 'rtsp://host:99999'])
def test_an_address_that_is_no_server_is_refused_with_what_is_accepted(bad):
    with pytest.raises(ValueError, match='server_url'):
        map_server_url(bad)


def test_the_settings_file_reads_back_mapped_and_names_itself_when_broken(tmp_path):
    path = tmp_path / 'server_mode.json'
    assert read_settings_file(path) is None
    path.write_text(json.dumps({'server_mode': {**LEGACY['server_mode'], 'server_url': 'https://example.org'}}))
    assert read_settings_file(path).server_url == 'rtsps://example.org:8322'
    path.write_text('{not json')
    with pytest.raises(ValueError, match=str(path)):
        read_settings_file(path)


def test_settings_without_a_server_or_password_leave_the_nodes_own():
    config = ServerModeConfig.from_legacy({'server_mode': {'enabled': False, 'fallback_to_local': False}})
    assert config.applied_parameters() == {'mode': 'local', 'fallback_to_local': False}
    full = ServerModeConfig.from_legacy(LEGACY)
    assert full.applied_parameters() == {'mode': 'server', 'server_url': 'rtsp://example.org:8554',
                                         'stream_key': 'robot1', 'fallback_to_local': False,
                                         'stream_password': 'pw'}
def test_a_microphone_backlog_is_dropped_not_kept_as_delay():
    queue = deque(bytes([i]) for i in range(10))  # 200 ms queued while ffmpeg was starting
    assert trim_backlog(queue) == 10 - AUDIO_QUEUE_MAX
    assert list(queue) == [bytes([i]) for i in range(10 - AUDIO_QUEUE_MAX, 10)]  # the newest stay
    assert trim_backlog(queue) == 0
