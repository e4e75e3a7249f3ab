"""Headless Chromium for the web UI tests, and a watcher of what a page would show red in
its console: errors, uncaught exceptions, failed requests and HTTP error answers.
"""
from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

CHROMIUM = '/usr/bin/chromium'
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
        '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required']
# a browser without WebRTC, as far as a page can tell
NO_WEBRTC = 'delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;'
# WebRTC whose media cannot get through (UDP blocked, no TURN): relay candidates only, and
# no relay server to get them from; signalling (WHEP over HTTP) still works
WEBRTC_BLOCKED = """(() => { const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (config) {
    return new Native({ ...(config || {}), iceTransportPolicy: 'relay' }); };
  window.RTCPeerConnection.prototype = Native.prototype; })();"""
# every indicator pill shows a value: none left at its "?" placeholder
PILLS_SHOWN = """() => [...document.querySelectorAll('.indicators .pill')]
    .filter((pill) => !pill.hidden).every((pill) => pill.textContent && !pill.textContent.includes('?'))"""
PILL_TEXTS = "() => [...document.querySelectorAll('.indicators .pill')].map((pill) => pill.textContent)"


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's), closed after the test."""
    playwright = pytest.importorskip('playwright.sync_api')
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """Collects a page's console errors, exceptions, failed requests and HTTP errors."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on('console', self._console)
        page.on('pageerror', lambda exc: self.problems.append(f'exception: {exc}'))
        page.on('requestfailed', lambda r: self.problems.append(f'failed: {r.method} {r.url} ({r.failure})'))
        page.on('response', self._response)

    def _console(self, message: Any) -> None:
        if message.type == 'error':
            self.problems.append(f"console: {message.text} at {message.location.get('url', '')}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f'HTTP {response.status}: {response.request.method} {response.url}')

    def unexpected(self, *allowed: str) -> list[str]:
        """Problems that match none of the ``allowed`` regular expressions."""
        return [p for p in self.problems if not any(re.search(a, p) for a in allowed)]
