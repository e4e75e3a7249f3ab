"""The robot's web UI without hands, in headless Chromium: every control by dwell (the
pointer moves and waits, no clicks), the keyboard alone, the large-target layout at
1280x720, and axe-core's accessibility check in every state.
"""
from __future__ import annotations

import time

import pytest

from havatar_testing import WORKSPACE, free_port
from havatar_testing.axe import axe_violations
from havatar_testing.relay import LOCAL_TOKEN as TOKEN
from havatar_testing.streaming import start_mjpeg_camera

pytest.importorskip('playwright.sync_api')

DWELL_MS = 400
VIEWPORT = {'width': 1280, 'height': 720}
# every click the page gets that a person made (dwell.js's clicks are the page's own)
COUNT_CLICKS = """window.realClicks = 0;
  document.addEventListener('click', (e) => { if (e.isTrusted) window.realClicks += 1; }, true);"""
REMEMBERED = f"localStorage.setItem('havatar.dwellMs', '{DWELL_MS}');"
CONNECTED = "document.getElementById('connection').textContent === 'connected'"
DRIVER_IS_ME = "document.getElementById('driver').textContent === 'you are driving'"
# the ring's progress (0..1) over the control being dwelt on
RING_PROGRESS = """() => { const ring = document.getElementById('dwell-ring');
  if (!ring || ring.hidden) return -1;
  const c = ring.querySelector('.progress');
  return 1 - parseFloat(getComputedStyle(c).strokeDashoffset) / parseFloat(c.getAttribute('stroke-dasharray')); }"""
# visible controls: none outside the viewport, and which is the largest
CONTROLS = """() => [...document.querySelectorAll('button, summary, input, #joystick')]
  .filter((el) => el.checkVisibility({ visibilityProperty: true }))
  .map((el) => { const r = el.getBoundingClientRect();
    return { id: el.id || el.dataset.dir || el.textContent.trim().slice(0, 20), area: r.width * r.height,
             dwell: el.matches('button, summary'),
             inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth + 0.5 && r.bottom <= innerHeight + 0.5 }; })"""
VIDEO_INSIDE = """() => { const section = document.querySelector('.video').getBoundingClientRect();
  return [...document.querySelectorAll('#mjpeg, #webrtc')].filter((el) => !el.hidden).every((el) => {
    const r = el.getBoundingClientRect();
    return r.top >= section.top - 0.5 && r.bottom <= section.bottom + 0.5; }); }"""
SCROLLS = """() => { const s = document.scrollingElement;
  return s.scrollHeight > innerHeight || s.scrollWidth > innerWidth; }"""


def centre(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box, f'{selector} is not shown'
    return box['x'] + box['width'] / 2, box['y'] + box['height'] / 2


def rest_on(page, selector: str) -> None:
    """The pointer moves onto ``selector`` (scrolled into view) and stays there."""
    page.locator(selector).scroll_into_view_if_needed()
    page.mouse.move(*centre(page, selector), steps=4)


def open_page(chromium, base: str, large: bool = False):
    page = chromium.new_page(viewport=VIEWPORT)
    page.add_init_script(COUNT_CLICKS + REMEMBERED + ("localStorage.setItem('havatar.largeTargets', '1');"
                                                      if large else ''))
    page.goto(f'{base}/#robot=robot1&token={TOKEN}')
    page.wait_for_function(CONNECTED, timeout=15000)
    return page


def twists(ros_node):
    from geometry_msgs.msg import Twist
    from havatar_msgs.msg import Speech
    return ros_node.subscribe(Twist, 'cmd_vel'), ros_node.subscribe(Speech, 'speech')


def test_dwell_only_takes_control_drives_forward_speaks_and_stops(relay_robot, ros_node, chromium):
    cmd_vel, say = twists(ros_node)
    _, base, _, _ = relay_robot()
    page = open_page(chromium, base)
    assert page.input_value('#dwell-ms') == str(DWELL_MS), 'the dwell time is remembered'
    page.mouse.move(5, 5)

    rest_on(page, '#take-control')
    page.wait_for_function(f'() => ({RING_PROGRESS})() > 0.2', timeout=10000)  # the ring fills
    page.wait_for_function(DRIVER_IS_ME, timeout=10000)

    page.fill('#speech-text', 'hello from the gaze wonderf')  # typed (the text box is no dwell target); may scroll
    suggestion = '#speech-words button >> text=/^wonderf/ >> nth=0'  # a completion, picked by a dwell
    page.wait_for_selector(suggestion, timeout=10000)
    word = page.locator(suggestion).text_content()
    rest_on(page, suggestion)
    page.wait_for_function(f"document.getElementById('speech-text').value.includes({word!r})", timeout=10000)
    page.mouse.move(5, 5)  # before the next suggestions come under the pointer
    rest_on(page, '.dwell[data-dir=forward]')
    rested = time.monotonic()
    cmd_vel.wait_for(lambda m: m.linear.x > 0 and m.angular.z == 0, timeout=10, what='forward from relay_node')
    moving = next(t for t, m in cmd_vel.timed if m.linear.x > 0) - rested
    assert page.locator('.dwell[data-dir=forward]').get_attribute('class').split().count('active') == 1

    cmd_vel.clear()
    page.mouse.move(5, 5)  # the pointer leaves "forward"
    left = time.monotonic()
    cmd_vel.wait_for(lambda m: m.linear.x == 0 and m.angular.z == 0, timeout=5, what='a stop on leaving')
    stopped = next(t for t, m in cmd_vel.timed if m.linear.x == 0) - left
    rest_on(page, '#speech-say')
    message = say.wait_for(lambda m: f'hello from the gaze {word}' in m.text, timeout=10,
                           what='the typed text and the predicted word spoken')
    assert stopped < 0.6, stopped  # at once: no dwell to leave
    print(f'\ndwell {DWELL_MS} ms: forward on cmd_vel {moving * 1000:.0f} ms after the pointer came to rest; '
          f'stop {stopped * 1000:.0f} ms after it left')
    # no forward command after the stop, while the pointer rests on Speak
    time_after = cmd_vel.timed[-1][0]
    page.wait_for_timeout(300)
    assert all(m.linear.x == 0 for t, m in cmd_vel.timed if t >= time_after), 'still driving'
    assert page.evaluate('window.realClicks') == 0, 'nothing was clicked'
    assert word.startswith('wonderf') and message.language == 'en'


def test_every_control_and_later_buttons_take_a_dwell(relay_robot, chromium):
    _, base, _, _ = relay_robot()
    page = open_page(chromium, base)
    # record dwell clicks, and keep them from acting (no mode switch, no downloads here)
    page.evaluate("""() => { window.dwelt = [];
      document.addEventListener('click', (e) => { const el = e.target.closest('button, summary');
        if (el && !e.isTrusted) {
          window.dwelt.push(el.id || el.tagName); e.preventDefault(); e.stopImmediatePropagation(); }
      }, true);
      const b = document.createElement('button'); b.id = 'added-later'; b.textContent = 'Later';
      document.querySelector('.talk').appendChild(b); }""")
    wanted = ['#take-control', '#mode-toggle', '#snapshot', '#sound-enable', '#large-layout', '#dwell-more',
              '.settings summary', '#speech-say', '#added-later']
    for selector in wanted:
        if not page.locator(selector).is_visible():
            continue
        page.mouse.move(5, 5)
        before = page.evaluate('window.dwelt.length')
        rest_on(page, selector)
        try:
            page.wait_for_function(f'window.dwelt.length > {before}', timeout=10000)
        except Exception as exc:
            raise AssertionError(f'no dwell click on {selector}') from exc
    dwelt = page.evaluate('window.dwelt')
    assert 'added-later' in dwelt and 'take-control' in dwelt and 'SUMMARY' in dwelt, dwelt
    # one dwell, one click: the pointer resting on a button does not repeat it
    page.wait_for_timeout(DWELL_MS * 2)
    assert page.evaluate('window.dwelt').count('added-later') == 1
    assert page.evaluate('window.realClicks') == 0


def test_what_slides_under_a_resting_pointer_takes_no_dwell(relay_robot, chromium):
    """A control that a layout change brings under a pointer at rest (as the recordings list
    appearing moved the record button) is not activated until the pointer moves.
    """
    _, base, _, _ = relay_robot()
    page = open_page(chromium, base)
    page.mouse.move(640, 5, steps=2)
    page.evaluate("""() => { const b = document.createElement('button'); b.id = 'slid-in';
        b.textContent = 'slid in'; window.slidClicks = 0; b.onclick = () => { window.slidClicks += 1; };
        Object.assign(b.style, { position: 'fixed', left: '600px', top: '-60px', width: '80px', height: '40px' });
        document.body.append(b); }""")
    page.wait_for_timeout(100)
    page.evaluate("document.getElementById('slid-in').style.top = '0px'")  # now under the pointer
    page.wait_for_timeout(3 * DWELL_MS)
    assert page.evaluate('window.slidClicks') == 0, 'a dwell began without the pointer moving'
    page.mouse.move(641, 6)  # the gaze moves a little: now it dwells
    page.wait_for_function('window.slidClicks === 1', timeout=5 * DWELL_MS)
    assert page.evaluate('window.realClicks') == 0


def test_keyboard_only_drives_speaks_a_phrase_and_stops(relay_robot, ros_node, chromium):
    cmd_vel, say = twists(ros_node)
    _, base, _, _ = relay_robot()
    page = open_page(chromium, base)

    def tab_to(selector: str) -> None:
        for _ in range(60):
            page.keyboard.press('Tab')
            if page.evaluate(f'document.activeElement === document.querySelector({selector!r})'):
                return
        raise AssertionError(f'Tab never reaches {selector}')

    tab_to('#take-control')
    page.keyboard.press('Enter')
    page.wait_for_function(DRIVER_IS_ME, timeout=10000)
    tab_to('#speech-text')
    page.keyboard.type('typed by keys')
    page.keyboard.press('Enter')
    say.wait_for(lambda m: 'typed by keys' in m.text, timeout=10, what='the typed text spoken')
    phrase = '#speech-phrases button >> nth=0'
    page.wait_for_selector(phrase, timeout=10000)
    tab_to('#speech-phrases button')
    page.keyboard.press('Enter')
    spoken = page.locator(phrase).text_content().strip()
    say.wait_for(lambda m: m.text == spoken, timeout=10, what='a phrase of the board spoken')
    page.keyboard.press('Tab')  # off the text box: the arrows drive
    page.keyboard.down('ArrowUp')
    cmd_vel.wait_for(lambda m: m.linear.x > 0, timeout=10, what='forward')
    cmd_vel.clear()
    page.keyboard.press(' ')  # Space stops, the arrow still held
    cmd_vel.wait_for(lambda m: m.linear.x == 0 and m.angular.z == 0, timeout=5, what='a stop')
    page.wait_for_timeout(300)
    assert cmd_vel.messages[-1].linear.x == 0, 'Space stopped the robot for good'
    page.keyboard.up('ArrowUp')
    # the driving buttons: Enter drives while held
    tab_to('.dwell[data-dir=left]')
    cmd_vel.clear()
    page.keyboard.down('Enter')
    cmd_vel.wait_for(lambda m: m.angular.z > 0, timeout=10, what='a left turn')
    cmd_vel.clear()
    page.keyboard.up('Enter')
    cmd_vel.wait_for(lambda m: m.angular.z == 0 and m.linear.x == 0, timeout=5, what='a stop on release')


def largest_target(controls: list[dict]) -> str:
    """The id of the largest dwell target (buttons, summaries) among ``controls``."""
    return max((c for c in controls if c['dwell']), key=lambda c: c['area'])['id']


def check_large_layout(page, shot) -> None:
    """The large layout at 1280x720: no scrolling, every control on screen, stop the largest."""
    page.wait_for_function("document.body.classList.contains('large')")
    page.mouse.move(5, 5)  # no dwell ring in the picture
    page.wait_for_selector('#dwell-ring', state='hidden')
    page.screenshot(path=str(shot))
    artifact = WORKSPACE / 'build' / 'test-artifacts' / shot.name  # kept after the test
    artifact.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifact))
    assert not page.evaluate(SCROLLS), 'the large layout scrolls at 1280x720'
    controls = page.evaluate(CONTROLS)
    outside = [c['id'] for c in controls if not c['inside']]
    assert outside == [], outside
    assert page.evaluate(VIDEO_INSIDE), 'the camera image stays inside its section'
    assert largest_target(controls) == 'stop', controls


def test_robot_page_passes_axe_in_every_state_and_the_large_layout_fits(relay_robot, processes, chromium,
                                                                       tmp_path):
    mjpeg_port = free_port()
    start_mjpeg_camera(processes, mjpeg_port, TOKEN, fps=10.0)
    _, base, _, node = relay_robot(mjpeg_port=mjpeg_port)
    page = open_page(chromium, base)
    page.wait_for_function("document.getElementById('mjpeg').naturalWidth === 320", timeout=15000)
    # axe sees what it is here for: the joystick without its slider value (as it once was)
    values = page.evaluate("""() => { const j = document.getElementById('joystick');
      const kept = [...j.attributes].filter((a) => a.name.startsWith('aria-value')).map((a) => [a.name, a.value]);
      kept.forEach(([name]) => j.removeAttribute(name)); return kept; }""")
    assert any(v.startswith('aria-required-attr') for v in axe_violations(page))
    page.evaluate("(values) => values.forEach(([n, v]) => document.getElementById('joystick').setAttribute(n, v))",
                  values)
    found = {}
    controls = page.evaluate(CONTROLS)
    assert largest_target(controls) == 'stop', controls
    found['connected'] = axe_violations(page)
    page.click('.settings summary')
    page.wait_for_function("document.querySelector('.settings').open")
    found['settings open'] = axe_violations(page)
    rest_on(page, '.dwell[data-dir=forward]')
    page.wait_for_selector('.dwell[data-dir=forward].active', timeout=10000)
    found['driving'] = axe_violations(page)
    page.mouse.move(5, 5)
    page.evaluate("document.querySelector('.settings').open = false")
    rest_on(page, '#large-layout')  # the setting by dwell; remembered
    check_large_layout(page, tmp_path / 'large-layout.png')
    print(f'\nlarge-target layout: {tmp_path / "large-layout.png"}')
    found['large layout'] = axe_violations(page)
    page.reload()
    page.wait_for_function(CONNECTED, timeout=15000)
    assert page.evaluate("document.body.classList.contains('large')"), 'the large layout is remembered'
    node.stop()
    page.wait_for_function("document.getElementById('connection').textContent.startsWith('disconnected')",
                           timeout=10000)
    found['disconnected'] = axe_violations(page)
    assert {state: v for state, v in found.items() if v} == {}


CLOUD_USER = 'alice-token'  # may watch robot1 (havatar_testing.relay.ACCOUNTS)


def test_cloud_page_passes_axe_in_every_state_and_the_large_layout_fits(proxied_stack, fake_robot, chromium,
                                                                       tmp_path):
    proxied_stack.publish()
    page = chromium.new_page(viewport=VIEWPORT)
    page.add_init_script(REMEMBERED)
    page.goto(f'{proxied_stack.public}/#robot=robot1&token={CLOUD_USER}')
    page.wait_for_function(CONNECTED, timeout=15000)
    page.wait_for_function("() => { const v = document.getElementById('webrtc'); "
                           "return !v.hidden && v.videoWidth > 0 }", timeout=20000)
    found = {'connected': axe_violations(page)}
    assert largest_target(page.evaluate(CONTROLS)) == 'stop'
    rest_on(page, '.dwell[data-dir=forward]')
    page.wait_for_selector('.dwell[data-dir=forward].active', timeout=10000)
    found['driving'] = axe_violations(page)
    page.mouse.move(5, 5)
    rest_on(page, '#large-layout')
    check_large_layout(page, tmp_path / 'large-layout-cloud.png')
    found['large layout'] = axe_violations(page)
    fake_robot.stop()
    page.wait_for_function("document.getElementById('connection').textContent === 'robot offline'",
                           timeout=15000)
    found['robot offline'] = axe_violations(page)
    assert {state: v for state, v in found.items() if v} == {}
