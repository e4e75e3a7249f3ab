"""Speaking from the web UI in headless Chromium (speech.js). On the robot's page: the
phrase board is edited, kept across a reload with the chosen language, and a phrase spoken
from it reaches relay_node's ``speech`` output; a word suggested for a Romanian prefix typed
with a cedilla is picked and spoken with comma-below letters. On the cloud page: each user's
board is kept on the relay, and a phrase reaches the robot through it.
"""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
from havatar_msgs.msg import Speech

from havatar_testing import WORKSPACE, wait_until
from havatar_testing.browser import PageWatch
from havatar_testing.relay import LOCAL_TOKEN as TOKEN

pytest.importorskip('playwright.sync_api')
CONNECTED = "document.getElementById('connection').textContent === 'connected'"


def board(page, selector: str = '#speech-phrases') -> list[str]:
    return page.eval_on_selector_all(f'{selector} .speech-phrase', 'bs => bs.map(b => b.textContent)')


def test_phrase_board_recent_phrases_and_suggestions(relay_robot, ros_node, chromium):
    _, base, settings, _ = relay_robot()
    said = ros_node.subscribe(Speech, 'speech')
    ros_node.wait_for_publishers('speech')

    page = chromium.new_page(viewport={'width': 1280, 'height': 900})
    watch = PageWatch(page)
    page.goto(f'{base}/#robot=robot1&token={TOKEN}')
    page.wait_for_function(CONNECTED, timeout=15000)
    page.wait_for_function("document.querySelectorAll('#speech-phrases button').length > 0", timeout=10000)
    assert 'I need help' in board(page)  # English defaults (the browser's language)

    # Romanian: the defaults follow the language
    page.click('#speech-langs button[data-lang=ro]')
    page.wait_for_function("[...document.querySelectorAll('#speech-phrases button')]"
                           ".some(b => b.textContent === 'Am nevoie de ajutor')", timeout=10000)
    # edit: change "Da" into a phrase of our own, remove "Nu", add one
    page.click('#speech-edit')
    page.click('#speech-phrases .speech-phrase:text-is("Da")')
    assert page.input_value('#speech-new') == 'Da'
    page.fill('#speech-new', 'Da, mulţumesc')  # cedilla: saved as comma-below
    page.click('#speech-save')
    page.wait_for_function("[...document.querySelectorAll('#speech-phrases .speech-phrase')]"
                           ".some(b => b.textContent === 'Da, mulțumesc')", timeout=10000)
    page.click('#speech-phrases .speech-remove[aria-label="Șterge: Nu"]')
    page.wait_for_function("![...document.querySelectorAll('#speech-phrases .speech-phrase')]"
                           ".some(b => b.textContent === 'Nu')", timeout=10000)
    page.fill('#speech-new', 'Vino la bucătărie')
    page.click('#speech-add')
    page.wait_for_function("[...document.querySelectorAll('#speech-phrases .speech-phrase')]"
                           ".some(b => b.textContent === 'Vino la bucătărie')", timeout=10000)
    page.click('#speech-edit')  # done
    assert (settings.parent / 'speech.json').exists()
    page.wait_for_selector('#speech-words[lang=ro] button', timeout=15000)  # Romanian words offered

    # reload: the language and the board are back
    page.reload()
    page.wait_for_function(CONNECTED, timeout=15000)
    page.wait_for_function("[...document.querySelectorAll('#speech-phrases button')]"
                           ".some(b => b.textContent === 'Vino la bucătărie')", timeout=10000)
    assert page.get_attribute('#speech-langs button[data-lang=ro]', 'aria-pressed') == 'true'
    phrases = board(page)
    assert 'Da, mulțumesc' in phrases and 'Nu' not in phrases and 'Da' not in phrases

    # speak a phrase: it reaches relay_node's speech output and is first of the recent ones
    clicked = time.time()
    page.click('#speech-phrases .speech-phrase:text-is("Vino la bucătărie")')
    said.wait_for(lambda m: m.text == 'Vino la bucătărie', what='the phrase on the speech topic')
    assert time.time() - clicked < 10
    assert board(page, '#speech-recent')[0] == 'Vino la bucătărie'

    # a suggested word: typed with a cedilla, suggested and spoken with comma-below
    page.click('#speech-text')
    page.keyboard.type('mulţu')
    assert page.input_value('#speech-text') == 'mulțu'
    page.wait_for_function("[...document.querySelectorAll('#speech-words button')]"
                           ".some(b => b.textContent === 'mulțumesc')", timeout=10000)
    page.click('#speech-words button:text-is("mulțumesc")')
    assert page.input_value('#speech-text') == 'mulțumesc '
    page.wait_for_function("document.querySelectorAll('#speech-words button').length > 0", timeout=10000)
    page.click('#speech-say')
    said.wait_for(lambda m: m.text == 'mulțumesc', what='the picked word on the speech topic')
    assert page.input_value('#speech-text') == ''
    # an empty box: the words that start a sentence (capitalised) are offered
    page.wait_for_function("document.querySelectorAll('#speech-words button').length > 0 && "
                           "[...document.querySelectorAll('#speech-words button')]"
                           ".every(b => b.textContent[0] === b.textContent[0].toUpperCase())", timeout=10000)

    # the recent phrases come from the robot after a reload, the newest first
    page.reload()
    page.wait_for_function("document.querySelectorAll('#speech-recent button').length === 2", timeout=10000)
    assert board(page, '#speech-recent') == ['mulțumesc', 'Vino la bucătărie']
    shot = WORKSPACE / 'build' / 'test-artifacts' / 'ui-speech.png'
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.locator('.speech').screenshot(path=str(shot))
    # no camera in this test: the MJPEG stream's refusals are expected, nothing else
    assert watch.unexpected(r'/stream\.mjpg', r'ERR_CONNECTION_REFUSED.*8081') == []


def robot_online(relay: str) -> bool:
    request = urllib.request.Request(relay + '/api/status', headers={'Authorization': 'Bearer alice-token'})
    with urllib.request.urlopen(request, timeout=5) as response:
        return any(r['robot_id'] == 'robot1' and r['online'] for r in json.load(response)['robots'])


def test_cloud_page_keeps_each_users_board_on_the_relay(relay_server, relay_robot, ros_node, chromium, tmp_path):
    relay = relay_server(env={'HAVATAR_RELAY_DATA_DIR': str(tmp_path / 'relay-data')})
    relay_robot(relay_url=relay.replace('http', 'ws') + '/ws')
    wait_until(lambda: robot_online(relay), 20, 'the robot on the relay')
    said = ros_node.subscribe(Speech, 'speech')
    ros_node.wait_for_publishers('speech')

    alice = chromium.new_page(viewport={'width': 1280, 'height': 900})
    watch = PageWatch(alice)
    alice.goto(f'{relay}/#robot=robot1&token=alice-token')
    alice.wait_for_function(CONNECTED, timeout=15000)
    alice.click('#speech-langs button[data-lang=de]')
    alice.wait_for_function("[...document.querySelectorAll('#speech-phrases button')]"
                            ".some(b => b.textContent === 'Ich brauche Hilfe')", timeout=10000)
    alice.click('#speech-edit')
    alice.fill('#speech-new', 'Bitte öffne die Tür')
    alice.click('#speech-add')
    alice.wait_for_function("[...document.querySelectorAll('#speech-phrases .speech-phrase')]"
                            ".some(b => b.textContent === 'Bitte öffne die Tür')", timeout=10000)
    alice.click('#speech-edit')
    alice.click('#speech-phrases .speech-phrase:text-is("Bitte öffne die Tür")')
    said.wait_for(lambda m: m.text == 'Bitte öffne die Tür', what="alice's phrase on the robot's speech topic")
    assert (tmp_path / 'relay-data' / 'speech.json').exists()

    # bob, on his own page (another browser profile), has the defaults and no recent phrases
    bob = chromium.new_context(viewport={'width': 1280, 'height': 900}).new_page()
    bob.goto(f'{relay}/#robot=robot1&token=bob-token')
    bob.wait_for_function("document.querySelectorAll('#speech-phrases button').length > 0", timeout=15000)
    assert 'Bitte öffne die Tür' not in board(bob) and board(bob, '#speech-recent') == []
    # alice's page, reloaded, has hers
    alice.reload()
    alice.wait_for_function("document.querySelectorAll('#speech-recent button').length === 1", timeout=15000)
    assert board(alice, '#speech-recent') == ['Bitte öffne die Tür']
    assert 'Bitte öffne die Tür' in board(alice)
    # no video in this test (no MediaMTX): the page's WHEP and HLS tries fail, nothing else
    assert watch.unexpected(r'/whep', r'/hls/', r'\.m3u8', r'WebRTC|HLS') == []
