// Havatar web UI: video (WHEP or MJPEG), driving (keys, dwell buttons, joystick, gamepad),
// talk (push-to-talk over WHIP, type-to-speak), mode and settings. No build step.
// Protocol constants come from protocol.json, generated from havatar_relay/protocol.py.
import * as sound from './audio.js';
import { initTalk } from './talk.js';
import { initSettings } from './settings.js';
import { initSpeech } from './speech.js';
import { initDwell } from './dwell.js';
import { Viewer, loadSite } from './viewer.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
const auth = {
  robot: params.get('robot') || sessionStorage.getItem('havatar.robot') || '',
  token: params.get('token') || sessionStorage.getItem('havatar.token') || '',
};
let P = null;          // protocol.json
let ws = null;
let status = null;
let sessionId = null;  // this page's /ws session (the welcome's), for /talk/ws
let seq = 0;
let driving = false;   // a non-zero command was sent since the last stop
const sources = { key: null, dwell: null, joystick: null, gamepad: null };
let site = null;       // /web/site.json: the robot's own page or the cloud's
let viewer = null;     // viewer.js: the camera
let pinger = null;     // round trips to the server that served the page

function setPill(id, text, ok) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('ok', ok === true);
  el.classList.toggle('bad', ok === false);
}

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

// ---- connection -------------------------------------------------------------------
function connect(delay = 500) {
  ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws.onopen = () => send({ type: 'hello', v: P.version, role: 'user', token: auth.token, robot_id: auth.robot, client: 'havatar web' });
  ws.onmessage = (event) => handle(JSON.parse(event.data));
  ws.onclose = () => {
    clearInterval(pinger);
    setPill('connection', 'disconnected — retrying', false);
    stopDriving();
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

function handle(m) {
  switch (m.type) {
    case 'welcome':
      sessionId = m.session_id;
      setPill('connection', m.robot_online ? 'connected' : 'robot offline', m.robot_online);
      setPill('driver', m.driver ? 'someone else drives' : 'nobody drives');
      if (!m.robot_online) { setPill('mode', 'mode: n/a', false); setPill('battery', 'battery: n/a'); }
      send({ type: 'get_status' });
      clearInterval(pinger);
      send({ type: 'ping', ts: Date.now() });
      pinger = setInterval(() => send({ type: 'ping', ts: Date.now() }), 2000);
      break;
    case 'ping': send({ type: 'pong', ts: m.ts, peer_ts: Date.now() }); break;
    case 'pong':  // our own ping: round trip to the server (acks of drive commands: to the robot)
      if (!driving) setPill('stats', `rtt: ${Math.round(Date.now() - m.ts)} ms`, true);
      break;
    case 'status': showStatus(m); break;
    case 'ack':
      if (m.sent_ts) setPill('stats', `rtt: ${Math.round(Date.now() - m.sent_ts)} ms${m.executed === false ? ' (dropped: ' + m.reason + ')' : ''}`, m.executed !== false);
      break;
    case 'control':
      setPill('driver', m.you ? 'you are driving' : (m.driver ? 'someone else drives' : 'nobody drives'), m.you);
      break;
    case 'error':
      if (m.code === 'unauthorized') { sessionStorage.removeItem('havatar.token'); showLogin(); }
      setPill('connection', `error: ${m.message}`, false);
      break;
  }
}

function showStatus(s) {
  viewer.onStatus(s);  // first: it points the media addresses at this site
  status = s;
  setPill('mode', `mode: ${s.stream.active}${s.stream.fallback ? ' (fallback)' : ''}`, !s.stream.fallback);
  const b = s.battery;
  setPill('battery', b.present ? `battery: ${b.voltage.toFixed(2)} V` : 'battery: n/a', b.present ? b.percentage > 0.2 : undefined);
  if (s.online === false) setPill('connection', 'robot offline', false);
  $('watchdog').hidden = !s.link.watchdog;  // "camera_node restarted at ... (stopped)"
  if (s.link.watchdog) setPill('watchdog', s.link.watchdog, false);
}

// ---- WebRTC signalling for push-to-talk (the camera: viewer.js) ------------------------
async function negotiate(peer, url) {
  await peer.setLocalDescription(await peer.createOffer());
  const r = await fetch(url, { method: 'POST', body: peer.localDescription.sdp,
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${auth.token}` } });
  if (r.status !== 201) throw new Error(`HTTP ${r.status}`);
  await peer.setRemoteDescription({ type: 'answer', sdp: await r.text() });
}

// ---- driving ------------------------------------------------------------------------
function speed() { return parseFloat($('speed').value); }

function command() {  // the first active source wins: key, dwell, joystick, gamepad
  for (const k of ['key', 'dwell', 'joystick', 'gamepad']) if (sources[k]) return sources[k];
  return null;
}

const DIRECTIONS = { forward: [1, 0], backward: [-1, 0], left: [0, 1], right: [0, -1], stop: [0, 0] };
function twistFor(dir) { const [l, a] = DIRECTIONS[dir]; return [l * speed() * P.max_linear_ui, a * speed() * P.max_angular_ui]; }

function stopDriving() {
  for (const k of Object.keys(sources)) sources[k] = null;
  document.querySelectorAll('.dwell.active, .dwell.dwelling').forEach((b) => b.classList.remove('active', 'dwelling'));
  if (driving) { send({ type: 'stop', ts: Date.now() }); driving = false; }
}

setInterval(() => {  // 20 Hz while moving
  pollGamepad();
  const c = command();
  if (c && (c[0] !== 0 || c[1] !== 0)) {
    send({ type: 'drive', seq: seq++, ts: Date.now(), linear: c[0], angular: c[1] });
    driving = true;
  } else if (driving) {
    send({ type: 'stop', ts: Date.now() });
    driving = false;
  }
}, 50);

const KEYS = { ArrowUp: 'forward', w: 'forward', ArrowDown: 'backward', s: 'backward', ArrowLeft: 'left', a: 'left', ArrowRight: 'right', d: 'right', ' ': 'stop' };
const held = new Set();
document.addEventListener('keydown', (e) => {
  const dir = KEYS[e.key];
  if (!dir || e.target.tagName === 'INPUT') return;
  e.preventDefault();
  if (dir === 'stop') { held.clear(); stopDriving(); return; }  // sticky: a held arrow drives again when pressed again
  held.add(dir);
  sources.key = combine(held);
});
document.addEventListener('keyup', (e) => {
  const dir = KEYS[e.key];
  if (!dir) return;
  held.delete(dir);
  sources.key = held.size ? combine(held) : null;
});
function combine(dirs) {
  let l = 0, a = 0;
  for (const d of dirs) { const [dl, da] = twistFor(d); l += dl; a += da; }
  return [l, a];
}
window.addEventListener('blur', () => { held.clear(); stopDriving(); });
document.addEventListener('visibilitychange', () => { if (document.hidden) { held.clear(); stopDriving(); } });
window.addEventListener('pagehide', stopDriving);
window.addEventListener('beforeunload', stopDriving);

// Large buttons: dwell (eye gaze) or press-and-hold (dwell.js). Leaving the button stops at once.
initDwell({ start: (dir) => { sources.dwell = twistFor(dir); }, end: () => { sources.dwell = null; }, stop: stopDriving });

// On-screen joystick.
(() => {
  const pad = $('joystick'), knob = $('knob');
  const move = (e) => {
    const r = pad.getBoundingClientRect();
    let x = (e.clientX - r.left) / r.width * 2 - 1, y = (e.clientY - r.top) / r.height * 2 - 1;
    const n = Math.hypot(x, y); if (n > 1) { x /= n; y /= n; }
    knob.style.left = `${(x + 1) * 50}%`; knob.style.top = `${(y + 1) * 50}%`;
    sources.joystick = [-y * speed() * P.max_linear_ui, -x * speed() * P.max_angular_ui];
  };
  const release = () => { knob.style.left = knob.style.top = '50%'; sources.joystick = null; };
  pad.addEventListener('pointerdown', (e) => { pad.setPointerCapture(e.pointerId); move(e); });
  pad.addEventListener('pointermove', (e) => { if (pad.hasPointerCapture(e.pointerId)) move(e); });
  pad.addEventListener('pointerup', release);
  pad.addEventListener('pointercancel', release);
  pad.addEventListener('lostpointercapture', release);
})();

function pollGamepad() {
  const gp = navigator.getGamepads ? [...navigator.getGamepads()].find((g) => g) : null;
  if (!gp) { sources.gamepad = null; return; }
  const dead = (v) => (Math.abs(v) < 0.15 ? 0 : v);
  const l = -dead(gp.axes[1] || 0), a = -dead(gp.axes[0] || 0);
  sources.gamepad = l || a ? [l * speed() * P.max_linear_ui, a * speed() * P.max_angular_ui] : null;
}

$('take-control').onclick = () => send({ type: 'take_control', force: true });

// ---- talk and mode ----------------------------------------------------------------
// type-to-speak, phrases and word suggestions: speech.js (started with the connection, below)

initTalk({ button: $('ptt'), status: () => status, token: () => auth.token, sessionId: () => sessionId,
  negotiate, site: () => site, onStream: (stream) => sound.meter(stream, $('talk-meter')),
  dwellMs: () => parseInt($('dwell-ms').value, 10) || 0 });

$('mode-toggle').onclick = () => {
  const next = status && status.stream.requested === 'server' ? 'local' : 'server';
  send({ type: 'set_mode', mode: next });
};

// ---- start ------------------------------------------------------------------------
function showLogin() {
  const form = $('login');
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    sessionStorage.setItem('havatar.robot', form.robot.value);
    sessionStorage.setItem('havatar.token', form.token.value);
    location.hash = '';
    location.reload();
  };
}

// the AudioContext at once, while the page loads: whether sound may start is decided before
// any click or key on the page (a later context would start on any earlier click, the
// "Enable sound" control never shown); prefs.enabled resumes it where the browser allows
sound.initSound();

(async () => {
  P = await (await fetch('/web/protocol.json')).json();
  P.max_linear_ui = Math.min(P.max_linear, 0.5);
  P.max_angular_ui = Math.min(P.max_angular, 2.0);
  if (!auth.robot || !auth.token) { showLogin(); return; }
  sessionStorage.setItem('havatar.robot', auth.robot);
  sessionStorage.setItem('havatar.token', auth.token);
  if (location.hash) history.replaceState(null, '', location.pathname);  // keep the token out of history
  $('robot-name').textContent = auth.robot;
  site = await loadSite();
  viewer = new Viewer(auth, site, sound.attachStream);
  if (site.site === 'robot') sound.listenToRobot(auth.token);  // its microphone over /audio/ws
  connect();
  initSpeech({ send, token: () => auth.token, maxChars: () => P.max_say_chars });
  initSettings(auth.token, site).catch(() => { document.querySelector('.settings').hidden = true; });
})();
