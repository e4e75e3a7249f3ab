"""Headless Chromium for the web UI tests and benchmarks (one executable, one set of
arguments, one launcher), and a watcher of what a page would show red in its console:
errors, uncaught exceptions, failed requests and HTTP error answers.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

CHROMIUM = '/usr/bin/chromium'  # Debian's
# fake media devices: getUserMedia gets Chromium's fake microphone (a beep) or a file, unasked
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
        '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream']
AUTOPLAY = '--autoplay-policy=no-user-gesture-required'  # sound starts without a user gesture
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


def chromium_args(autoplay: bool = True, microphone: Optional[Path] = None) -> list[str]:
    """The arguments of every test browser; ``autoplay``: sound may start without a user
    gesture; ``microphone``: a WAV file the fake microphone plays (in a loop) instead of its beep.
    """
    return ARGS + ([AUTOPLAY] if autoplay else []) + (
        [f'--use-file-for-fake-audio-capture={microphone}'] if microphone else [])


def launch(pw: Any, autoplay: bool = True, microphone: Optional[Path] = None) -> Any:
    """A headless Chromium from a running ``sync_playwright()`` ``pw`` (see ``chromium_args``)."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(autoplay, microphone))


@pytest.fixture
def launch_chromium() -> Iterator[Callable[..., Any]]:
    """``launch_chromium(autoplay=True, microphone=None)``: a new headless Chromium (see
    ``chromium_args``); every one is closed after the test.
    """
    playwright = pytest.importorskip('playwright.sync_api')
    with playwright.sync_playwright() as pw:
        browsers: list[Any] = []

        def start(autoplay: bool = True, microphone: Optional[Path] = None) -> Any:
            browsers.append(launch(pw, autoplay, microphone))
            return browsers[-1]
        try:
            yield start
        finally:
            for browser in browsers:
                browser.close()


@pytest.fixture
def chromium(launch_chromium: Callable[..., Any]) -> Any:
    """A headless Chromium with autoplay and the fake microphone, closed after the test."""
    return launch_chromium()


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
