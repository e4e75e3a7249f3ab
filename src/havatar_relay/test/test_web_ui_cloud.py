"""The cloud web UI in headless Chromium, set up as docs/server-setup.md says: the shipped
Caddyfile in front of a real relay server and MediaMTX, nothing configured for the page.
It finds MediaMTX at its own origin, retries WebRTC, plays HLS without WebRTC, saves
snapshots, and shows nothing red in its console.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from havatar_testing import WORKSPACE
from havatar_testing.audio import PEAK_JS
from havatar_testing.browser import NO_WEBRTC, WEBRTC_BLOCKED, PILL_TEXTS, PILLS_SHOWN, PageWatch

pytest.importorskip('playwright.sync_api')

USER = 'alice-token'  # may watch robot1 (havatar_testing.relay.ACCOUNTS)
WEBRTC_PLAYING = """() => { const v = document.getElementById('webrtc');
    return !v.hidden && v.videoWidth > 0
        && document.getElementById('video-state').textContent.startsWith('WebRTC ') }"""
FRAMES = "() => document.getElementById('webrtc').getVideoPlaybackQuality().totalVideoFrames"
SNAPSHOT_NAME = r'^robot1-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.jpg$'


def open_ui(chromium, stack, init_script: str = ''):
    page = chromium.new_page(viewport={'width': 1280, 'height': 900}, accept_downloads=True)
    if init_script:
        page.add_init_script(init_script)
    watch = PageWatch(page)
    requests: list[str] = []
    page.on('request', lambda r: requests.append(r.url))
    page.goto(f'{stack.public}/#robot=robot1&token={USER}')
    page.wait_for_function("document.getElementById('connection').textContent === 'connected'",
                           timeout=15000)
    return page, watch, requests


def save_snapshot(page) -> tuple[str, bytes]:
    with page.expect_download(timeout=10000) as download:
        page.click('#snapshot')
    path = download.value.path()
    return download.value.suggested_filename, open(path, 'rb').read()


def test_cloud_ui_plays_webrtc_from_its_own_origin_with_a_clean_console(proxied_stack, fake_robot, chromium):
    proxied_stack.publish()
    page, watch, requests = open_ui(chromium, proxied_stack)
    connected = time.monotonic()
    page.wait_for_function(PILLS_SHOWN, timeout=3000)  # every pill shows a value within 3 s
    assert time.monotonic() - connected < 3.5, page.evaluate(PILL_TEXTS)
    assert re.fullmatch(r'rtt: \d+ ms', page.text_content('#stats')), page.text_content('#stats')
    page.wait_for_function(WEBRTC_PLAYING, timeout=20000)
    # the page's own origin, not the address the robot reported; no MJPEG from the cloud host
    assert any(url == f'{proxied_stack.public}/robot1/whep' for url in requests), requests
    assert not [url for url in requests if 'robot.invalid' in url or ':8081' in url], requests
    assert page.locator('.settings').is_hidden(), 'the robot settings exist only on its own page'
    name, jpeg = save_snapshot(page)
    assert re.match(SNAPSHOT_NAME, name), name
    assert jpeg[:3] == b'\xff\xd8\xff' and len(jpeg) > 1000
    assert watch.unexpected() == []


def test_cloud_ui_retries_webrtc_until_the_stream_is_there_and_after_it_returns(proxied_stack, fake_robot, chromium):
    # the robot says it streams, MediaMTX has nothing yet: WHEP fails, the page retries
    page, watch, _ = open_ui(chromium, proxied_stack)
    page.evaluate('window.sameDocument = true')
    page.wait_for_function("document.getElementById('video-state').textContent.includes('retrying')",
                           timeout=25000)  # MediaMTX holds the first WHEP up to 8 s (on demand)
    proxied_stack.publish()
    published = time.monotonic()
    page.wait_for_function(WEBRTC_PLAYING, timeout=30000)
    print(f'\nWebRTC video {time.monotonic() - published:.1f} s after the stream appeared (back-off retries)')
    first = page.evaluate(FRAMES)
    page.wait_for_function(f'() => ({FRAMES})() > {first}', timeout=10000)

    # the robot falls back to local mode and stops publishing: the page says so
    fake_robot.active = 'local'
    proxied_stack.unpublish()
    page.wait_for_function("document.getElementById('video-state').textContent.includes('local mode')",
                           timeout=10000)
    # and its stream returns: video again, the page never reloaded
    proxied_stack.publish()
    fake_robot.active = 'server'
    back = time.monotonic()
    page.wait_for_function(WEBRTC_PLAYING, timeout=20000)
    print(f'WebRTC video {time.monotonic() - back:.1f} s after the robot reported its stream back')
    first = page.evaluate(FRAMES)
    page.wait_for_function(f'() => ({FRAMES})() > {first}', timeout=10000)
    assert page.evaluate('window.sameDocument === true')
    # expected: MediaMTX's 404 for WHEP while nothing was published, or its 400 when the robot
    # path (on demand: a reader waits for the robot to publish) waited in vain, and their
    # console lines
    expected = (r'^HTTP (404|400): POST .*/robot1/whep$',
                r'^console: Failed to load resource: .* (404|400) .*/robot1/whep$')
    assert watch.unexpected(*expected) == []
    assert len(watch.problems) >= 1, 'the first attempts failed'


def test_cloud_ui_falls_back_to_hls_without_webrtc(proxied_stack, fake_robot, chromium):
    proxied_stack.publish()
    opened = time.monotonic()
    page, watch, requests = open_ui(chromium, proxied_stack, init_script=NO_WEBRTC)
    assert page.evaluate('typeof RTCPeerConnection') == 'undefined'
    page.wait_for_function("() => { const v = document.getElementById('webrtc'); return !v.hidden && v.currentTime > 1"
                           " && document.getElementById('video-state').textContent.startsWith('HLS ') }",
                           timeout=60000)
    print(f'\nHLS playing {time.monotonic() - opened:.1f} s after the page opened; '
          + page.text_content('#video-state'))
    # the robot's sound comes too (MediaMTX serves it as an audio rendition of its own)
    page.wait_for_function("document.getElementById('webrtc').webkitAudioDecodedByteCount > 0", timeout=10000)
    # autoplay allowed: sound runs at once (test_web_audio tests the Enable sound control)
    peak = page.wait_for_function(PEAK_JS, arg=440.0, timeout=20000).json_value()  # the stand-in's tone
    assert abs(peak['hz'] - 440) < 25, peak
    hls = [url for url in requests if url.startswith(f'{proxied_stack.public}/hls/robot1/')]
    assert hls and not [url for url in requests if '/whep' in url], requests
    name, jpeg = save_snapshot(page)
    assert re.match(SNAPSHOT_NAME, name) and jpeg[:3] == b'\xff\xd8\xff', name
    assert watch.unexpected() == []


def test_cloud_ui_turns_to_hls_when_webrtc_media_cannot_get_through(proxied_stack, fake_robot, chromium):
    proxied_stack.publish()
    opened = time.monotonic()
    page, watch, requests = open_ui(chromium, proxied_stack, init_script=WEBRTC_BLOCKED)
    page.wait_for_function("() => document.getElementById('webrtc').currentTime > 1 && document"
                           ".getElementById('video-state').textContent.startsWith('HLS (WebRTC could not connect)')",
                           timeout=90000)
    print(f'\nHLS playing {time.monotonic() - opened:.1f} s after the page opened (WebRTC blocked)')
    assert len([url for url in requests if url.endswith('/robot1/whep')]) == 2, 'two WebRTC tries first'
    assert watch.unexpected() == []


def test_recording_from_the_ui_through_mediamtx_with_the_relays_authorization(proxied_stack, fake_robot, chromium):
    proxied_stack.publish()
    page, watch, _ = open_ui(chromium, proxied_stack)
    page.wait_for_function(WEBRTC_PLAYING, timeout=20000)
    page.click('#record')  # alice may record (record: true in relay.yaml)
    page.wait_for_function("document.getElementById('record').getAttribute('aria-pressed') === 'true'")
    frames = page.evaluate(FRAMES)
    page.wait_for_function(f'() => ({FRAMES})() > {frames} + 20', timeout=15000)  # live video goes on
    page.click('#record')
    page.wait_for_function("document.getElementById('record').getAttribute('aria-pressed') === 'false'")
    assert proxied_stack.publisher.running and proxied_stack.published(), 'the robot was never dropped'
    page.click('#recordings summary', timeout=10000)  # the list shows once there is a file
    page.wait_for_selector('#recording-list li button', timeout=10000)
    with page.expect_download(timeout=60000) as download:
        with page.expect_response(lambda r: '/recordings/' in r.url, timeout=60000) as answer:
            page.click('#recording-list li button')
        # the relay's answer first, so that a refusal fails with its reason, not with a timeout
        assert answer.value.ok, (answer.value.status, answer.value.text())
    assert re.fullmatch(r'robot1-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.mp4', download.value.suggested_filename)
    mp4 = open(download.value.path(), 'rb').read()
    assert mp4[4:8] == b'ftyp' and len(mp4) > 10000, len(mp4)
    assert watch.unexpected() == []
    shot = WORKSPACE / 'build' / 'test-artifacts' / 'ui-cloud.png'
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))

    # the same authorization without the page: watch-only users list, only recorders record
    from havatar_testing.stack import fetch
    api = '/api/robots/robot1'
    status, body, _ = fetch(proxied_stack.caddy, 'GET', f'{api}/recordings', 'bob-token')
    assert status == 200 and json.loads(body)['may_record'] is False and json.loads(body)['files']
    start = json.loads(body)['files'][0]['start']
    on = json.dumps({'record': True})
    assert fetch(proxied_stack.caddy, 'POST', f'{api}/recording', 'bob-token', on)[0] == 403
    for token in ('', 'wrong-token', 'carol-token'):  # carol may not use robot1
        assert fetch(proxied_stack.caddy, 'GET', f'{api}/recordings', token)[0] == 401
        assert fetch(proxied_stack.caddy, 'POST', f'{api}/recording', token, on)[0] == 401
        assert fetch(proxied_stack.caddy, 'GET', f'{api}/recordings/{start}?duration=1', token)[0] == 401
