// Speaking through the robot: the type-to-speak box with word suggestions, a language
// chooser (en/ro/de, remembered), the user's phrase board (edit mode: add, change, remove),
// their recent phrases and "stop speaking". Every control is a plain <button> (dwell.js
// gives them dwell activation). The same /api/phrases, /api/recent and /api/predict on the
// robot's page and the cloud page (the server that served the page keeps them per user).

const $ = (id) => document.getElementById(id);
const LANGS = ['en', 'ro', 'de'];
const LANG_KEY = 'havatar.speech.lang';
const LABELS = {
  en: { speak: 'Speak', stop: 'Stop speaking', edit: 'Edit phrases', done: 'Done editing', add: 'Add',
    save: 'Save change', remove: 'Remove', phrases: 'Phrases', recent: 'Recent', placeholder: 'Type to speak',
    none: 'nothing said yet', newPhrase: 'New phrase' },
  ro: { speak: 'Spune', stop: 'Oprește vorbirea', edit: 'Editează frazele', done: 'Gata', add: 'Adaugă',
    save: 'Salvează', remove: 'Șterge', phrases: 'Fraze', recent: 'Recente', placeholder: 'Scrie ce să spună',
    none: 'nimic spus încă', newPhrase: 'Frază nouă' },
  de: { speak: 'Sprechen', stop: 'Sprechen beenden', edit: 'Sätze bearbeiten', done: 'Fertig', add: 'Hinzufügen',
    save: 'Änderung speichern', remove: 'Entfernen', phrases: 'Sätze', recent: 'Zuletzt', placeholder: 'Text zum Sprechen',
    none: 'noch nichts gesagt', newPhrase: 'Neuer Satz' },
};
// Romanian letters with a cedilla are the comma-below ones (what the servers store too)
const CEDILLA = { 'ş': 'ș', 'ţ': 'ț', 'Ş': 'Ș', 'Ţ': 'Ț' };
const normalise = (text) => text.replace(/[şţŞŢ]/g, (c) => CEDILLA[c]);

let opts = null;       // initSpeech's options
let lang = 'en';
let phrases = [];
let recent = [];
let editing = false;
let selected = -1;     // the phrase being changed in edit mode
let predictTimer = null;
let predicted = 0;     // the latest prediction request (older answers are dropped)

function api(path, init = {}) {
  return fetch(path, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${opts.token()}` } });
}

function button(text, onclick, cls = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (cls) b.className = cls;
  b.onclick = onclick;
  return b;
}

function say(text) {
  text = normalise(text.trim()).slice(0, opts.maxChars());
  if (!text) return false;
  opts.send({ type: 'say', text, lang });
  recent = [text, ...recent.filter((r) => r !== text)].slice(0, 20);  // the server keeps the same
  showRecent();
  return true;
}

// ---- language -------------------------------------------------------------------------
function setLang(next) {
  lang = LANGS.includes(next) ? next : 'en';
  localStorage.setItem(LANG_KEY, lang);
  const t = LABELS[lang];
  for (const b of document.querySelectorAll('#speech-langs button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
  $('speech-text').lang = lang;
  $('speech-text').placeholder = t.placeholder;
  $('speech-say').textContent = t.speak;
  $('speech-stop').textContent = t.stop;
  $('speech-phrases-title').textContent = t.phrases;
  $('speech-recent-title').textContent = t.recent;
  $('speech-add').textContent = t.add;
  $('speech-save').textContent = t.save;
  $('speech-new').placeholder = t.newPhrase;
  showEditing();
  loadPhrases();  // defaults follow the language until the user saves a board
  suggest();
}

// ---- word suggestions -----------------------------------------------------------------
function suggest() {
  clearTimeout(predictTimer);
  predictTimer = setTimeout(predict, 120);
}

async function predict() {
  const id = ++predicted;
  const text = normalise($('speech-text').value);
  try {
    const r = await api(`/api/predict?${new URLSearchParams({ lang, text })}`);
    if (!r.ok || id !== predicted) return;
    const answer = await r.json();
    if (id === predicted) showSuggestions(answer);
  } catch (e) { /* offline: no suggestions */ }
}

function showSuggestions(p) {
  const box = $('speech-words');
  box.lang = p.lang;  // read out in the suggestions' language
  box.replaceChildren();
  const words = p.prefix ? p.completions : p.next;
  for (const word of words) {
    box.append(button(word, () => pick(word, p.prefix), 'speech-word'));
  }
}

function pick(word, prefix) {
  const input = $('speech-text');
  let text = normalise(input.value);
  if (prefix && text.endsWith(prefix)) text = text.slice(0, text.length - prefix.length);
  else if (text && !/\s$/.test(text)) text += ' ';
  input.value = `${text}${word} `.slice(0, opts.maxChars());
  suggest();
}

// ---- phrase board ---------------------------------------------------------------------
async function loadPhrases() {
  try {
    const r = await api(`/api/phrases?lang=${lang}`);
    if (r.ok) { phrases = (await r.json()).phrases; showPhrases(); }
  } catch (e) { /* offline: keep what is shown */ }
}

async function savePhrases(next) {
  const r = await api('/api/phrases', { method: 'PUT', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ phrases: next }) });
  if (r.ok) phrases = (await r.json()).phrases;
  selected = -1;
  $('speech-new').value = '';
  showPhrases();
}

function showPhrases() {
  const board = $('speech-phrases');
  board.replaceChildren();
  phrases.forEach((text, i) => {
    if (!editing) { board.append(button(text, () => say(text), 'speech-phrase')); return; }
    const row = document.createElement('div');
    row.className = 'speech-edit-row';
    const choose = button(text, () => { selected = i; $('speech-new').value = text; showPhrases(); }, 'speech-phrase');
    choose.setAttribute('aria-pressed', String(i === selected));
    const remove = button(`${LABELS[lang].remove}`, () => savePhrases(phrases.filter((_, j) => j !== i)), 'speech-remove');
    remove.setAttribute('aria-label', `${LABELS[lang].remove}: ${text}`);
    row.append(choose, remove);
    board.append(row);
  });
  $('speech-save').disabled = selected < 0;
}

function showEditing() {
  $('speech-edit').textContent = editing ? LABELS[lang].done : LABELS[lang].edit;
  $('speech-edit').setAttribute('aria-pressed', String(editing));
  $('speech-editor').hidden = !editing;
  if (!editing) selected = -1;
  showPhrases();
}

// ---- recent phrases -------------------------------------------------------------------
async function loadRecent() {
  try {
    const r = await api('/api/recent');
    if (r.ok) { recent = (await r.json()).recent; showRecent(); }
  } catch (e) { /* offline */ }
}

function showRecent() {
  const list = $('speech-recent');
  list.replaceChildren(...recent.map((text) => button(text, () => say(text), 'speech-phrase')));
  if (!recent.length) {
    const none = document.createElement('span');
    none.textContent = LABELS[lang].none;
    list.append(none);
  }
}

// ---- start ----------------------------------------------------------------------------
// options: send(message) over the page's relay connection, token() for the API,
// maxChars() the protocol's say limit
export function initSpeech(options) {
  opts = options;
  $('speech-form').onsubmit = (e) => {
    e.preventDefault();
    if (say($('speech-text').value)) $('speech-text').value = '';
    suggest();
  };
  $('speech-text').oninput = () => {
    const input = $('speech-text');
    const fixed = normalise(input.value);
    if (fixed !== input.value) {  // a cedilla typed: the comma-below letter, the caret kept
      const at = input.selectionStart;
      input.value = fixed;
      input.setSelectionRange(at, at);
    }
    suggest();
  };
  $('speech-stop').onclick = () => opts.send({ type: 'stop_speaking' });
  for (const b of document.querySelectorAll('#speech-langs button')) b.onclick = () => setLang(b.dataset.lang);
  $('speech-edit').onclick = () => { editing = !editing; showEditing(); };
  $('speech-add').onclick = () => {
    const text = normalise($('speech-new').value.trim());
    if (text) savePhrases([...phrases, text]);
  };
  $('speech-save').onclick = () => {
    const text = normalise($('speech-new').value.trim());
    if (text && selected >= 0) savePhrases(phrases.map((p, i) => (i === selected ? text : p)));
  };
  const browser = (navigator.language || 'en').slice(0, 2);
  setLang(localStorage.getItem(LANG_KEY) || (LANGS.includes(browser) ? browser : 'en'));
  loadRecent();
}
