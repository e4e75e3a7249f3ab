// Eye-gaze dwell for every control: the pointer resting on a button (or a <summary>, a
// checkbox, anything marked data-dwell) for the dwell time activates it, with a progress
// ring over it. Event delegation on the document, so buttons added later dwell too.
// Driving buttons (.dwell[data-dir]) drive while the pointer rests on them and stop as it
// leaves; press-and-hold and Enter drive them too. The dwell time (#dwell-ms) and the
// large-target layout (#large-layout) are remembered per browser.

const $ = (id) => document.getElementById(id);
const KEY_MS = 'havatar.dwellMs';
const KEY_LARGE = 'havatar.largeTargets';
const TARGETS = 'button, summary, input[type=checkbox], input[type=radio], label:has(> input[type=checkbox]), [data-dwell]';
const DRIVING = '.dwell[data-dir]';
// controls with a dwell of their own (talk.js: talk toggles; audio.js: sound): the ring only
const OWN_DWELL = '#ptt, .sound .gaze';
const RING_R = 42;
const RING_C = 2 * Math.PI * RING_R;

let ring = null;     // the progress ring, moved over the control being dwelt on
let current = null;  // { el, timer, anim, driving }
let drive = null;    // { start(dir), end() } from app.js

/** The dwell time in ms (the #dwell-ms input; 0: at once). */
export function dwellMs() {
  const v = parseInt(($('dwell-ms') || {}).value, 10);
  return Number.isFinite(v) && v >= 0 ? v : 600;
}

function makeRing() {
  const el = document.createElement('div');
  el.id = 'dwell-ring';
  el.setAttribute('aria-hidden', 'true');
  el.hidden = true;
  el.innerHTML = `<svg viewBox="0 0 100 100"><circle class="track" cx="50" cy="50" r="${RING_R}"/>`
    + `<circle class="progress" cx="50" cy="50" r="${RING_R}" stroke-dasharray="${RING_C}" stroke-dashoffset="${RING_C}"/></svg>`;
  document.body.appendChild(el);
  return el;
}

function showRing(el, ms) {
  const r = el.getBoundingClientRect();
  const size = Math.max(32, Math.min(r.width, r.height, 144) * 0.9);
  Object.assign(ring.style, { width: `${size}px`, height: `${size}px`,
    left: `${r.left + r.width / 2 - size / 2}px`, top: `${r.top + r.height / 2 - size / 2}px` });
  ring.hidden = false;
  ring.classList.remove('done');
  const progress = ring.querySelector('.progress');
  return progress.animate([{ strokeDashoffset: RING_C }, { strokeDashoffset: 0 }],
    { duration: Math.max(ms, 1), fill: 'forwards' });
}

function hideRing() { if (ring) ring.hidden = true; }

function usable(el) {
  return el && !el.disabled && !el.closest('[hidden]') && !el.closest('[aria-disabled=true]');
}

function begin(el) {
  const ms = dwellMs();
  const driving = el.matches(DRIVING);
  const state = { el, driving, timer: null, anim: showRing(el, ms) };
  current = state;
  el.classList.add('dwelling');
  if (el.matches(OWN_DWELL)) return;  // its own module acts on the dwell
  const fire = () => {
    el.classList.remove('dwelling');
    ring.classList.add('done');
    if (driving) { activateDriving(el); return; }
    el.click();
    if (el.hasAttribute('data-dwell-repeat') && current === state && el.isConnected) {
      state.anim = showRing(el, ms);  // volume +/-: go on stepping while the gaze rests
      state.timer = setTimeout(fire, Math.max(ms, 300));
    }
  };
  state.timer = setTimeout(fire, ms);
}

function leave() {
  if (!current) return;
  const { el, timer, anim, driving } = current;
  current = null;
  clearTimeout(timer);
  if (anim) anim.cancel();
  hideRing();
  el.classList.remove('dwelling');
  if (driving) releaseDriving(el);
}

function activateDriving(el) {
  if (el.dataset.dir === 'stop') { drive.stop(); return; }
  el.classList.remove('dwelling');
  el.classList.add('active');
  drive.start(el.dataset.dir);
}

function releaseDriving(el) {
  el.classList.remove('active', 'dwelling');
  drive.end();
}

function target(node) {
  const el = node && node.closest ? node.closest(TARGETS) : null;
  return usable(el) ? el : null;
}

/** The dwell time input and the large-layout toggle, remembered in localStorage. */
function initPreferences() {
  const input = $('dwell-ms');
  const saved = localStorage.getItem(KEY_MS);
  if (input && saved !== null) input.value = saved;
  if (input) input.addEventListener('change', () => localStorage.setItem(KEY_MS, String(dwellMs())));
  const step = (d) => () => {
    input.value = String(Math.max(100, Math.min(3000, dwellMs() + d)));
    localStorage.setItem(KEY_MS, input.value);
  };
  if ($('dwell-less')) $('dwell-less').onclick = step(-100);
  if ($('dwell-more')) $('dwell-more').onclick = step(100);

  const toggle = $('large-layout');
  const apply = (on) => {
    document.body.classList.toggle('large', on);
    if (toggle) toggle.setAttribute('aria-pressed', on ? 'true' : 'false');
  };
  apply(localStorage.getItem(KEY_LARGE) === '1');
  if (toggle) {
    toggle.onclick = () => {
      const on = !document.body.classList.contains('large');
      localStorage.setItem(KEY_LARGE, on ? '1' : '0');
      apply(on);
    };
  }
}

/** Dwell on every control; ``driving``: { start(dir), end(), stop() } of app.js. */
export function initDwell(driving) {
  drive = driving;
  ring = makeRing();
  initPreferences();

  // A dwell starts only where the pointer moved to. A layout change under a resting pointer
  // (a list appearing, a label growing) sends pointerover without pointermove: it ends the
  // dwell it moved away from, and never starts one on what slid under the pointer (a
  // stopped recording restarted that way).
  const follow = (e, moved) => {
    if (e.pointerType === 'touch') return;
    const el = target(e.target);
    if (current && current.el === el) return;
    leave();
    if (el && moved) begin(el);
  };
  document.addEventListener('pointerover', (e) => follow(e, false));
  document.addEventListener('pointermove', (e) => follow(e, true));
  document.addEventListener('pointerout', (e) => {
    if (!current || e.pointerType === 'touch') return;
    if (e.relatedTarget && current.el.contains(e.relatedTarget)) return;
    if (e.relatedTarget && target(e.relatedTarget) === current.el) return;
    leave();  // off a driving control: the robot stops at once
  });
  // a real press: no dwell on top of the click; driving buttons drive while held
  document.addEventListener('pointerdown', (e) => {
    const el = target(e.target);
    if (current && current.el === el) {
      clearTimeout(current.timer);
      if (current.anim) current.anim.cancel();
      hideRing();
      el.classList.remove('dwelling');
    }
    if (el && el.matches(DRIVING)) {
      el.setPointerCapture(e.pointerId);
      if (!current || current.el !== el) current = { el, driving: true, timer: null, anim: null };
      activateDriving(el);
    }
  });
  const release = (e) => {
    const el = target(e.target);
    if (el && el.matches(DRIVING) && el.classList.contains('active')) {
      releaseDriving(el);
      if (current && current.el === el && e.type !== 'pointerup') current = null;
    }
  };
  document.addEventListener('pointerup', release);
  document.addEventListener('pointercancel', release);
  // keyboard: Enter on a driving button drives while held (Space stops: app.js)
  document.addEventListener('keydown', (e) => {
    const el = target(e.target);
    if (e.key === 'Enter' && el && el.matches(DRIVING) && !e.repeat) { e.preventDefault(); activateDriving(el); }
  });
  document.addEventListener('keyup', (e) => {
    const el = target(e.target);
    if (e.key === 'Enter' && el && el.matches(DRIVING)) releaseDriving(el);
  });
  window.addEventListener('scroll', () => { if (current && !current.driving) leave(); }, { passive: true });
}
