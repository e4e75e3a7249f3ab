"""The settings form in headless Chromium: "Test connection" says what failed before
anything is saved, "Save" applies the settings to the running streaming node.
"""
from __future__ import annotations

import json

import pytest

from havatar_testing import free_port
from havatar_testing.relay import LOCAL_TOKEN as TOKEN
from havatar_testing.streaming import ROBOT, USERS

pytest.importorskip('playwright.sync_api')


@pytest.fixture
def page(chromium):
    return chromium.new_page(viewport={'width': 1280, 'height': 900})


def state_after(page, click: str, expected: str) -> str:
    """Click ``click`` and return the form's state once it reads ``expected...``."""
    page.click(click)
    page.wait_for_function(
        f"document.getElementById('settings-state').textContent.startsWith({json.dumps(expected)})",
        timeout=20000)
    return page.locator('#settings-state').text_content()


def test_test_connection_then_save_from_the_form(relay_robot, sources, streaming_node, mediamtx_factory,
                                                 page):
    server = mediamtx_factory(users=USERS)
    sources()
    streaming, _ = streaming_node(api_url='none', stream_user=ROBOT.user)
    _, base, settings, _ = relay_robot()
    problems: list[str] = []  # of the settings form (the video and the rest are tested elsewhere)
    page.on('pageerror', lambda exc: problems.append(str(exc)))
    page.on('response', lambda r: problems.append(f'{r.url}: {r.status}')
            if '/server/' in r.url and r.status >= 400 else None)
    page.on('requestfailed', lambda r: problems.append(f'{r.url}: {r.failure}') if '/server/' in r.url else None)
    page.goto(f'{base}/#robot=robot1&token={TOKEN}')
    page.click('.settings summary')
    page.wait_for_function("document.querySelector('#settings [name=stream_password]').placeholder === "
                           "'(none saved)'", timeout=15000)

    url = f'rtsp://127.0.0.1:{server.ports.rtsp}'
    page.fill('#settings [name=server_url]', f'rtsp://127.0.0.1:{free_port()}')
    page.fill('#settings [name=stream_key]', ROBOT.path)
    assert 'refused the connection' in state_after(page, '#settings-test', 'connection failed (refused)')
    page.fill('#settings [name=server_url]', url)
    page.fill('#settings [name=stream_password]', 'not-the-password')
    assert '401' in state_after(page, '#settings-test', 'connection failed (unauthorized)')
    page.fill('#settings [name=stream_password]', ROBOT.password)
    assert 'accepted' in state_after(page, '#settings-test', 'connection works')
    assert not settings.exists(), 'testing saves nothing'

    page.fill('#settings [name=server_url]', 'https://media.example.org')  # as the original UI took it
    state_after(page, '#settings button[type=submit]', 'saved and applied')
    assert page.input_value('#settings [name=server_url]') == 'rtsps://media.example.org:8322'

    page.fill('#settings [name=server_url]', url)
    page.fill('#settings [name=stream_password]', ROBOT.password)
    page.check('#settings [name=enabled]')
    state_after(page, '#settings button[type=submit]', 'saved and applied: server mode requested')
    streaming.wait_for_output('server mode active', timeout=30)
    assert json.loads(settings.read_text())['server_mode']['server_url'] == url
    assert page.get_attribute('#settings [name=stream_password]', 'placeholder') == '(unchanged)'
    assert not problems, problems
