// Talk to the robot: the "Hold to talk" button. The cloud page: WHIP to MediaMTX (status.whip_url).
// The robot's own page: its /talk/ws, 16-bit PCM frames from an AudioWorklet at the rate the
// robot names in its talk_ready (havatar_relay/talk.py, doc/TALK_WS.md). Only the driver talks.
// Hold the button (pointer, Enter or Space) to talk while held, or dwell on it (eye gaze) to
// toggle talking on and off. The own microphone's level goes out as `havatar:talk-level` events,
// and its stream to `opts.onStream(stream)` if given (a level meter), in both modes.

const MAX_BUFFERED = 32 * 1024;  // bytes waiting in the WebSocket: beyond it frames are dropped

let audioContext = null;

async function captureContext() {
  if (!window.isSecureContext) throw new Error(`the browser gives the microphone only to https:// or localhost pages, not ${location.origin}`);
  if (!window.AudioWorkletNode) throw new Error('this browser has no AudioWorklet');
  if (!audioContext) {
    try { audioContext = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' }); }
    catch (e) { audioContext = new AudioContext({ latencyHint: 'interactive' }); }  // the worklet resamples
    await audioContext.audioWorklet.addModule('/web/talk-worklet.js');
  }
  if (audioContext.state !== 'running') {  // held by the browser until the page had a click
    await Promise.race([audioContext.resume(), new Promise((r) => setTimeout(r, 1000))]);
    if (audioContext.state !== 'running') throw new Error('the browser holds audio until the page is clicked once');
  }
  return audioContext;
}

function microphone() {
  if (!navigator.mediaDevices || !window.isSecureContext) {  // plain http:// to a LAN address
    return Promise.reject(new Error(`the browser gives the microphone only to https:// or localhost pages, not ${location.origin}`));
  }
  return navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
}

function level(value) { window.dispatchEvent(new CustomEvent('havatar:talk-level', { detail: value })); }

// A local-mode talk: resolves once the robot is ready and audio flows; `onEnd(reason)` once.
async function talkLocal(opts, onEnd) {
  const ctx = await captureContext();  // first: it says why a page cannot capture
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/talk/ws`;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  let stream = null, source = null, node = null, ended = false;
  const stop = (reason) => {
    if (ended) return;
    ended = true;
    if (node) { node.port.onmessage = null; node.disconnect(); }
    if (source) source.disconnect();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'stop' }));
    ws.close();
    level(0);
    onEnd(reason);
  };
  const ready = await new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error('the robot did not answer')), 5000);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'talk', token: opts.token(), session_id: opts.sessionId() }));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'talk_ready') resolve(m); else reject(new Error(m.message || m.code));
    };
    ws.onerror = () => reject(new Error(  // the robot is gone, or this is the cloud page in local mode
      'cannot open the talk connection (from the cloud page, talking needs server mode)'));
    ws.onclose = () => reject(new Error('the talk connection closed'));
  }).catch((e) => { ws.onclose = null; ws.close(); throw e; });
  ws.onmessage = (e) => {  // refusals while talking: say why; a closing one ends the talk
    if (typeof e.data === 'string') { const m = JSON.parse(e.data); if (m.type === 'error') opts.show(`talk: ${m.message}`); }
  };
  ws.onclose = () => stop('closed');
  try {
    stream = await microphone();
    if (opts.onStream) opts.onStream(stream);
    if (ended) { stream.getTracks().forEach((t) => t.stop()); return stop; }
    source = ctx.createMediaStreamSource(stream);
    node = new AudioWorkletNode(ctx, 'havatar-talk-capture', {
      numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit',
      processorOptions: { targetRate: ready.sample_rate, frameSamples: ready.frame_samples } });
    node.port.onmessage = (e) => {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < MAX_BUFFERED) ws.send(e.data.pcm);
      level(e.data.level);
    };
    source.connect(node);
  } catch (e) { stop('failed'); throw e; }
  return stop;
}

// A server-mode talk over WHIP (MediaMTX).
async function talkWhip(opts, onEnd) {
  const stream = await microphone();
  if (opts.onStream) opts.onStream(stream);
  const peer = new RTCPeerConnection();
  let ended = false;
  const stop = () => {
    if (ended) return;
    ended = true;
    stream.getTracks().forEach((t) => t.stop());
    peer.close();
    level(0);
    onEnd('stopped');
  };
  stream.getTracks().forEach((t) => peer.addTrack(t, stream));
  peer.onconnectionstatechange = () => { if (peer.connectionState === 'failed') stop(); };
  try { await opts.negotiate(peer, opts.status().whip_url); } catch (e) { stop(); throw e; }
  return stop;
}

export function initTalk(opts) {
  const button = opts.button;
  const label = button.textContent;
  button.title = window.isSecureContext ? 'Hold to talk, or dwell on it to switch talking on and off'
    : `Talking needs a secure page: the browser keeps the microphone from ${location.origin}`;
  let stopTalk = null;   // set while talking
  let starting = false;
  let released = false;  // ended while still starting
  let held = false;      // talking while the button is held (else: toggled by dwell)
  let timer = null;

  const show = (text) => { button.textContent = text; };
  // the robot's own page talks over its /talk/ws (MediaMTX does not know the robot's token);
  // the cloud page through MediaMTX with WHIP, which needs the robot in server mode
  const useWhip = () => { const site = opts.site(); return !!(site && site.site !== 'robot'); };
  const setPressed = (on) => { button.setAttribute('aria-pressed', on ? 'true' : 'false'); };

  async function start(byHold) {
    if (stopTalk || starting) return;
    held = byHold;
    starting = true;
    released = false;
    setPressed(true);
    show(byHold ? 'Talking…' : 'Talking… (dwell again to stop)');
    let over = false;  // the talk ended by itself (refused, connection lost)
    const ended = () => {
      over = true;
      stopTalk = null;
      setPressed(false);
      if (button.textContent.startsWith('Talking')) show(label);
    };
    try {
      const stop = await (useWhip() ? talkWhip : talkLocal)({ ...opts, show }, ended);
      starting = false;
      if (!over) stopTalk = stop;
      if (released) end();
    } catch (e) {
      starting = false;
      stopTalk = null;
      setPressed(false);
      show(`talk failed: ${e.message}`);
    }
  }
  function end() {
    if (starting) { released = true; return; }
    if (stopTalk) { const s = stopTalk; stopTalk = null; s('stopped'); }
    setPressed(false);
    if (button.textContent.startsWith('Talking')) show(label);
  }
  const talking = () => !!(stopTalk || starting);

  button.addEventListener('pointerenter', (e) => {  // dwell toggles talking
    if (e.pointerType === 'touch') return;
    const ms = opts.dwellMs();
    button.classList.add('dwelling');
    timer = setTimeout(() => {
      button.classList.remove('dwelling');
      if (talking()) end(); else start(false);
    }, ms);
  });
  const cancelDwell = () => { clearTimeout(timer); button.classList.remove('dwelling'); };
  button.addEventListener('pointerdown', (e) => {
    cancelDwell();
    if (talking() && !held) { end(); return; }  // a press stops a dwell-started talk
    button.setPointerCapture(e.pointerId);
    start(true);
  });
  button.addEventListener('pointerup', () => { if (held) end(); });
  button.addEventListener('pointercancel', () => { if (held) end(); });
  button.addEventListener('pointerleave', () => { cancelDwell(); if (held) end(); });
  button.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && !e.repeat) { e.preventDefault(); if (talking() && !held) end(); else start(true); }
  });
  button.addEventListener('keyup', (e) => { if ((e.key === 'Enter' || e.key === ' ') && held) end(); });
  window.addEventListener('blur', () => { if (held) end(); });  // a release may go unseen
  window.addEventListener('pagehide', end);
  return { start, end, talking };
}
