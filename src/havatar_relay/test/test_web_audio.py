"""In headless Chromium the person hears the robot: the page's WebAudio finds the microphone
node's tone at its frequency, on the robot's own page (/audio/ws) and on the cloud page in
server mode (the streaming node's WebRTC track through MediaMTX behind the shipped Caddyfile);
sound waits for the "Enable sound" control, and mute and volume are remembered.
"""
from __future__ import annotations

import pytest
from rclpy.qos import QoSDurabilityPolicy, QoSProfile

from havatar_msgs.msg import StreamStatus
from havatar_testing import WORKSPACE, ros_executable
from havatar_testing.audio import PEAK_JS, start_microphone, start_relay_node
from havatar_testing.browser import PageWatch
from havatar_testing.relay import LOCAL_TOKEN

pytest.importorskip('playwright.sync_api')
LATCHED = QoSProfile(depth=5, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


# the page's site.json answered 1.5 s late (a slow link): the page goes on loading while the
# test already looks at it (Playwright's looks count as user activation in Chromium)
SLOW_SITE = """(() => { const fetch = window.fetch;
  window.fetch = (url, options) => String(url).includes('site.json')
    ? new Promise((ok) => setTimeout(ok, 1500)).then(() => fetch(url, options)) : fetch(url, options); })();"""


def open_ui(browser, base: str, token: str = LOCAL_TOKEN, init_script: str = ''):
    """The robot's page, logged in; ``errors`` collects page errors and failures of the sound's
    requests (/audio/ws, /web/audio*.js; the rest of the page is other tests' business).
    """
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    if init_script:
        page.add_init_script(init_script)
    errors: list[str] = []
    page.on('pageerror', lambda exc: errors.append(str(exc)))
    page.on('response', lambda r: errors.append(f'{r.status} {r.url}') if r.status >= 400 and '/audio' in r.url
            else None)
    page.on('console', lambda m: errors.append(f"{m.text} {m.location['url']}")
            if m.type == 'error' and ('/audio' in m.location['url'] or 'audio' in m.text.lower()) else None)
    page.goto(f'{base}/#robot=robot1&token={token}')
    return page, errors


def test_local_mode_plays_the_robot_microphone(robot_microphone, launch_chromium):
    base, _ = robot_microphone(tone_hz=660.0)
    page, errors = open_ui(launch_chromium(autoplay=True), base)
    peak = page.wait_for_function(PEAK_JS, arg=660.0, timeout=20000).json_value()
    assert abs(peak['hz'] - 660) < 25
    assert page.text_content('#sound-state') == 'sound: robot (local)'
    stats = page.evaluate('window.havatarAudio.stats()')
    assert stats['depthMs'] <= 200 and stats['pushed'] > 0, stats
    page.wait_for_function("parseFloat(document.getElementById('robot-meter').dataset.level) > 0.3")
    assert not errors, errors


def test_sound_waits_for_enable_then_mutes_and_remembers(robot_microphone, launch_chromium):
    base, relay = robot_microphone(tone_hz=660.0)
    page, errors = open_ui(launch_chromium(autoplay=False), base, init_script=SLOW_SITE)
    page.wait_for_selector('#sound-enable', state='visible')
    page.wait_for_function('window.havatarAudio !== undefined')  # the page's sound is set up
    shot = WORKSPACE / 'build' / 'test-artifacts' / 'ui-sound-off.png'
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    box = page.locator('#sound-enable').bounding_box()
    assert box['width'] >= 200 and box['height'] >= 80 and box['y'] + box['height'] <= 900, box  # large, in view
    assert page.is_hidden('#sound-controls')
    assert page.evaluate('window.havatarAudio.context.state') == 'suspended'
    assert 'a browser listens' not in relay.output(), 'no audio is fetched before sound is on'

    page.click('#sound-enable')  # the user gesture the browser waits for
    page.wait_for_function(PEAK_JS, arg=660.0, timeout=20000)
    assert page.is_hidden('#sound-enable') and page.is_visible('#sound-controls')
    page.screenshot(path=str(shot.with_name('ui-sound-on.png')))

    # mute by eye-gaze dwell: resting the pointer on the button clicks it once
    page.fill('#dwell-ms', '300')
    box = page.locator('#sound-mute').bounding_box()
    assert box['width'] >= 80 and box['height'] >= 80, box  # a target as large as the dwell buttons
    page.mouse.move(box['x'] + box['width'] / 2, box['y'] + box['height'] / 2)
    page.wait_for_function("document.getElementById('sound-mute').getAttribute('aria-pressed') === 'true'")
    page.wait_for_function('window.havatarAudio.peakHz().db < -100', timeout=5000)  # silent
    page.mouse.move(5, 5)
    page.click('#sound-down')  # volume down also unmutes
    page.wait_for_function(PEAK_JS, arg=660.0, timeout=5000)
    assert page.evaluate("JSON.parse(localStorage.getItem('havatar.sound'))") == {
        'enabled': True, 'muted': False, 'volume': 0.7}

    page.click('#sound-mute')
    page.reload()  # the choice survives: muted, at 0.7, and still behind the enable control
    page.wait_for_selector('#sound-enable', state='visible')
    assert page.evaluate("JSON.parse(localStorage.getItem('havatar.sound'))")['muted'] is True
    assert page.get_attribute('#sound-mute', 'aria-pressed') == 'true'
    assert page.input_value('#sound-volume') == '0.7'
    assert not errors, errors


def test_cloud_page_plays_the_webrtc_audio_track(proxied_stack, fake_robot, streaming_node, ros_node,
                                                processes, launch_chromium):
    """Microphone node (550 Hz) -> streaming node -> MediaMTX (Opus; the relay authorizes) ->
    WHEP at the cloud page's own origin -> the page's WebAudio, with nothing red in its console.
    """
    camera = processes.start('camera_node', [
        ros_executable('havatar_drivers', 'camera_node'), '--ros-args', '-p', 'source:=test_pattern',
        '-p', 'width:=320', '-p', 'height:=240', '-p', 'fps:=15.0'])
    camera.wait_for_output('publishing', timeout=20)
    start_microphone(processes, tone_hz=550.0)  # not the 440 Hz of the stack's stand-in publisher
    robot, token = proxied_stack.robot_id, proxied_stack.tokens['robot']
    streaming_node(password=token, mode='server', server_url=f'rtsp://127.0.0.1:{proxied_stack.mediamtx.rtsp}',
                   api_url='none', stream_key=robot, stream_user=robot)
    status = ros_node.subscribe(StreamStatus, 'stream/status', LATCHED)
    status.wait_for(lambda m: m.active_mode == 'server', timeout=30, what='server mode active')
    page = launch_chromium(autoplay=True).new_page(viewport={'width': 1280, 'height': 900})
    watch = PageWatch(page)
    page.goto(f'{proxied_stack.public}/#robot={robot}&token={proxied_stack.tokens["user"]}')
    page.wait_for_function("document.getElementById('sound-state').textContent === 'sound: WebRTC'",
                           timeout=30000)
    peak = page.wait_for_function(PEAK_JS, arg=550.0, timeout=20000).json_value()
    assert abs(peak['hz'] - 550) < 25
    page.wait_for_function("parseFloat(document.getElementById('robot-meter').dataset.level) > 0.3")
    assert watch.unexpected() == []


def test_the_persons_own_microphone_shows_on_its_meter(processes, launch_chromium):
    """audio.js's meter(stream, canvas), as push-to-talk uses it, on Chromium's fake microphone."""
    base, _ = start_relay_node(processes)
    page, errors = open_ui(launch_chromium(autoplay=True), base)
    page.wait_for_function('window.havatarAudio !== undefined')
    page.evaluate("""async () => {
      const sound = await import('/web/audio.js');
      window.talkStream = await navigator.mediaDevices.getUserMedia({ audio: true });
      sound.meter(window.talkStream, document.getElementById('talk-meter'));
    }""")
    page.wait_for_function("parseFloat(document.getElementById('talk-meter').dataset.level) > 0.2", timeout=10000)
    page.evaluate('window.talkStream.getTracks().forEach((t) => t.stop())')  # talking ends
    page.wait_for_function("document.getElementById('talk-meter').dataset.level === '0'", timeout=5000)
    assert not errors, errors
