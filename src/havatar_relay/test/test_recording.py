"""Who may record and where the web UI finds MediaMTX: the relay's settings and accounts.

The recording itself, through a real MediaMTX behind the shipped Caddyfile, is tested in
test_web_ui_cloud.py.
"""
from __future__ import annotations

import pytest
import yaml

from havatar_relay.server.app import Settings, load_accounts, site_info
from havatar_relay.server.recording import START


def test_only_users_marked_record_may_record_and_only_their_robots(tmp_path):
    config = tmp_path / 'relay.yaml'
    config.write_text(yaml.safe_dump({
        'robots': {'robot1': {'token': 'r1'}, 'robot2': {'token': 'r2'}},
        'users': {'alice': {'token': 'a', 'robots': ['robot1'], 'record': True},
                  'bob': {'token': 'b', 'robots': ['robot1']},
                  'ops': {'token': 'o', 'robots': ['*'], 'record': True}}}))
    accounts = load_accounts(config)
    assert accounts.may_record('a', 'robot1') and not accounts.may_record('a', 'robot2')
    assert not accounts.may_record('b', 'robot1') and accounts.user('b', 'robot1') == 'bob'
    assert accounts.may_record('o', 'robot2') and not accounts.may_record('wrong', 'robot1')


@pytest.mark.parametrize('env, expected', [
    ({}, {'site': 'cloud', 'webrtc_url': '', 'hls_url': '', 'recording': False}),
    ({'HAVATAR_RELAY_WEBRTC_URL': 'http://127.0.0.1:8889/', 'HAVATAR_RELAY_HLS_URL': 'http://127.0.0.1:8888'},
     {'site': 'cloud', 'webrtc_url': 'http://127.0.0.1:8889', 'hls_url': 'http://127.0.0.1:8888',
      'recording': False}),
    ({'HAVATAR_RELAY_MEDIAMTX_API_URL': 'http://m:9997', 'HAVATAR_RELAY_MEDIAMTX_PLAYBACK_URL': 'http://m:9996'},
     {'site': 'cloud', 'webrtc_url': '', 'hls_url': '', 'recording': False}),  # no admin token
    ({'HAVATAR_RELAY_MEDIAMTX_API_URL': 'http://m:9997', 'HAVATAR_RELAY_MEDIAMTX_PLAYBACK_URL': 'http://m:9996',
      'HAVATAR_RELAY_ADMIN_TOKEN': 'x'},
     {'site': 'cloud', 'webrtc_url': '', 'hls_url': '', 'recording': True}),
])
def test_site_json_says_where_mediamtx_is_and_whether_recording_is_set_up(monkeypatch, env, expected):
    for key in ('WEBRTC_URL', 'HLS_URL', 'MEDIAMTX_API_URL', 'MEDIAMTX_PLAYBACK_URL', 'ADMIN_TOKEN'):
        monkeypatch.delenv(f'HAVATAR_RELAY_{key}', raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert site_info(Settings()) == expected


@pytest.mark.parametrize('start, ok', [
    ('2026-11-26T03:18:48.771914Z', True), ('2026-11-26T03:18:48Z', True),
    ('2026-11-26T03:18:48.771914+01:00', False), ('../../etc/passwd', False), ('', False),
])
def test_a_recording_is_named_by_its_utc_start_only(start, ok):
    assert bool(START.match(start)) is ok
