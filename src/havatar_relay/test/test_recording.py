"""Who may record and where the web UI finds MediaMTX: the relay's settings and accounts.

The recording itself, through a real MediaMTX behind the shipped Caddyfile, is tested here
for the downloads' ranges and in test_web_ui_cloud.py from the web UI.
"""
from __future__ import annotations

import json
import subprocess
from urllib.parse import quote

import pytest
import yaml

from havatar_relay.server.app import Settings, load_accounts, site_info
from havatar_relay.server.recording import START
from havatar_testing import find_program
from havatar_testing.stack import fetch

USER = 'alice-token'  # may watch and record robot1 (havatar_testing.relay.ACCOUNTS)


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


def test_a_track_without_samples_does_not_take_mediamtx_down(proxied_stack, tmp_path):
    """MediaMTX 1.14's MP4 muxer panics, and its whole process exits, when a track of the
    range has no sample (as in a recording stopped within a second on a loaded machine); the
    relay asks for fragmented MP4, which writes only the tracks that have samples.
    """
    folder = tmp_path / 'recordings' / proxied_stack.robot_id  # MediaMTX's recordPath, in its cwd
    folder.mkdir(parents=True)
    subprocess.run([find_program('ffmpeg'), '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10',
                    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
                    '-filter_complex', '[1:a]atrim=end=0[a]', '-map', '0:v', '-map', '[a]', '-t', '2',
                    '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'libopus',
                    '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
                    str(folder / '2026-11-26_10-00-00-000000.mp4')], check=True, timeout=60)
    robot = f'/api/robots/{proxied_stack.robot_id}'
    files = json.loads(fetch(proxied_stack.caddy, 'GET', f'{robot}/recordings', USER)[1])['files']
    assert [f['start'][:19] for f in files] == ['2026-11-26T10:00:00'], files
    for duration in (2.0, 0.5):  # (MediaMTX lists ffmpeg's fragments with no duration)
        status, body, headers = fetch(proxied_stack.caddy, 'GET',
                                      f"{robot}/recordings/{quote(files[0]['start'])}?duration={duration}", USER)
        assert status == 200 and body[4:8] == b'ftyp' and headers['Content-Type'] == 'video/mp4', \
            (duration, status, body[:200])
        assert fetch(proxied_stack.mediamtx.api, 'GET', '/v3/paths/list', proxied_stack.tokens['admin'])[0] == 200, \
            'MediaMTX is gone'
    probe = subprocess.run([find_program('ffprobe'), '-v', 'error', '-count_frames', '-select_streams', 'v',
                            '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', '-'],
                           input=body, capture_output=True, timeout=30)
    assert int(probe.stdout) >= 4, probe  # half a second of the 10 Hz video plays
