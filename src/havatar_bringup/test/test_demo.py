"""The demo, headless: the UI loads with video, the simulated robot drives, nothing is left behind."""
from __future__ import annotations

import asyncio
import re
import time

import psutil
import pytest

from havatar_drivers.esp32.simulator import read_record
from havatar_testing import ros_executable, wait_until
from havatar_testing.browser import PILLS_SHOWN, PageWatch, launch
from havatar_testing.relay import Client

playwright = pytest.importorskip('playwright.sync_api')


def descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def command_line(pid: int) -> str:
    """The program and first argument of ``pid`` ('' once it has ended)."""
    try:
        return ' '.join(psutil.Process(pid).cmdline()[:2])
    except psutil.Error:
        return ''


def test_demo_runs_drives_and_stops_cleanly(processes, ros_domain, tmp_path):
    run_dir = tmp_path / 'demo'
    demo = processes.start('demo', [ros_executable('havatar_bringup', 'demo'), '--headless',
                                    '--run-dir', run_dir, '--domain-id', str(ros_domain)])
    printed = demo.wait_for_output(r'relay web UI \(server mode\): (\S+)', timeout=90)
    local_ui = re.search(r'robot web UI \(local mode\):\s+(\S+)', demo.output()).group(1)
    server_ui = printed.group(1)
    children = descendants(demo.pid)
    # the servers, the simulator and the robot's nodes in one robot_container (the default)
    names = ' '.join(command_line(pid) for pid in children)
    for program in ('mediamtx', 'redis-server', 'relay_server', 'robot_container', 'motor_guard'):
        assert program in names, (program, names)

    with playwright.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            watch = PageWatch(page)
            page.goto(local_ui)
            page.wait_for_function("document.getElementById('mjpeg').naturalWidth > 0", timeout=30000)
            relay_page = browser.new_page()
            relay_watch = PageWatch(relay_page)
            relay_page.goto(server_ui)
            relay_page.wait_for_function(
                "document.getElementById('connection').textContent === 'connected'", timeout=30000)
            relay_page.wait_for_function(PILLS_SHOWN, timeout=3000)
            # server mode: WebRTC (WHEP) video from MediaMTX, authorized by the relay
            relay_page.wait_for_function("document.getElementById('webrtc').videoWidth > 0",
                                         timeout=30000)
            page.wait_for_function(PILLS_SHOWN, timeout=3000)
            # nothing red in either console: no WHEP with the local token, no /server/config
            # asked of the relay
            assert (watch.unexpected(), relay_watch.unexpected()) == ([], [])
        finally:
            browser.close()

    base = local_ui.split('/#')[0]
    token = re.search(r'token=([^&]+)', local_ui).group(1)
    record = run_dir / 'sim' / 'record.jsonl'

    async def drive() -> None:
        user = await Client.connect(base, 'user', token, 'demo-robot')
        for i in range(40):
            await user.send({'type': 'drive', 'seq': i, 'ts': time.time() * 1000,
                             'linear': 0.25, 'angular': 0.0})
            await asyncio.sleep(0.05)
        await user.close()
    asyncio.run(drive())
    wait_until(lambda: any(line.startswith('PWM') and line != 'PWM 0 0'
                           for _, line in read_record(record)), 10, 'PWM lines at the simulator')

    demo.signal(2)  # Ctrl-C
    assert demo.wait_exit(timeout=60) == 0
    assert 'stopped.' in demo.output()
    left = [pid for pid in children if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not left, [psutil.Process(p).cmdline() for p in left]
