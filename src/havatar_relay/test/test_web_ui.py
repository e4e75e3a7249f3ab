"""End to end in headless Chromium: the robot's web UI shows video and drives the simulator."""
from __future__ import annotations

import re
import time

import pytest

from havatar_testing import WORKSPACE, free_port

from havatar_testing.browser import PILL_TEXTS, PILLS_SHOWN, PageWatch
from havatar_testing.relay import LOCAL_TOKEN as TOKEN
from havatar_testing.streaming import start_mjpeg_camera

pytest.importorskip('playwright.sync_api')



def test_ui_shows_video_and_drives_with_the_keyboard(relay_robot, processes, chromium, tmp_path):
    mjpeg_port = free_port()
    start_mjpeg_camera(processes, mjpeg_port, TOKEN, fps=15.0)
    sim, base, _, _ = relay_robot(mjpeg_port=mjpeg_port)

    page = chromium.new_page(viewport={'width': 1280, 'height': 900}, accept_downloads=True)
    watch = PageWatch(page)  # nothing red in the console, no failed request
    page.goto(f'{base}/#robot=robot1&token={TOKEN}')
    page.wait_for_function("document.getElementById('connection').textContent === 'connected'",
                           timeout=15000)
    page.wait_for_function(PILLS_SHOWN, timeout=3000)  # every pill shows a value within 3 s
    assert re.fullmatch(r'rtt: \d+ ms', page.text_content('#stats')), page.evaluate(PILL_TEXTS)
    assert TOKEN not in page.url, 'the token is removed from the address bar'
    # video: the MJPEG image loads and keeps changing
    page.wait_for_function("document.getElementById('mjpeg').naturalWidth === 320", timeout=15000)
    first = page.locator('#mjpeg').screenshot()
    time.sleep(0.5)
    assert page.locator('#mjpeg').screenshot() != first, 'video frames keep arriving'
    with page.expect_download(timeout=10000) as download:  # the snapshot button saves a JPEG
        page.click('#snapshot')
    assert re.fullmatch(r'robot1-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.jpg', download.value.suggested_filename)
    assert open(download.value.path(), 'rb').read(3) == b'\xff\xd8\xff'

    page.locator('body').click(position={'x': 5, 'y': 5})
    pressed = time.time()
    page.keyboard.down('ArrowUp')
    _, line = sim.wait_for_line(lambda line: line.startswith('PWM') and line != 'PWM 0 0', after=pressed,
                                timeout=10)
    left, right = (int(v) for v in line.split()[1:])
    assert left > 0 and left == right, line  # forward
    page.wait_for_function("document.getElementById('stats').textContent.includes('ms')")
    shot = WORKSPACE / 'build' / 'test-artifacts' / 'ui.png'
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    page.screenshot(path=str(tmp_path / 'ui.png'))
    released = time.time()
    page.keyboard.up('ArrowUp')
    stop_time, _ = sim.wait_for_line(lambda line: line == 'STOP', after=released, timeout=5)
    assert stop_time - released < 0.6  # the UI sends stop on key-up

    # dwell: hovering a large button drives, leaving it stops at once
    page.fill('#dwell-ms', '300')
    box = page.locator('.dwell[data-dir=left]').bounding_box()
    page.mouse.move(box['x'] + box['width'] / 2, box['y'] + box['height'] / 2)
    dwelled = time.time()
    _, line = sim.wait_for_line(lambda line: line.startswith('PWM') and int(line.split()[1]) < 0,
                                after=dwelled, timeout=10)
    left_time = time.time()
    page.mouse.move(5, 5)
    stop_time, _ = sim.wait_for_line(lambda line: line == 'STOP', after=left_time, timeout=5)
    assert stop_time - left_time < 0.6
    assert watch.unexpected() == []
