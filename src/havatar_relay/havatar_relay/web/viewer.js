// The robot's camera in the web UI: which video to show, from where, and what to do when
// it fails. No build step; hls.min.js (hls.js from npm, Apache-2.0, see
// hls.js.LICENSE) is loaded only where it is needed.
//
//   The robot's own page (site "robot"): MJPEG from the robot's streaming node, which the
//   browser reaches since it reached the robot. MediaMTX is not asked: it is another host
//   and does not know the robot's local token.
//   The cloud page (site "cloud"): WebRTC (WHEP) through MediaMTX while the robot streams
//   to the server, retried with back-off after a failure and at once when the robot's
//   stream comes back; HLS (hls.js) where the browser has no WebRTC. Never MJPEG: the
//   robot's port 8081 is not on the cloud host. MediaMTX is at the page's own origin
//   (the shipped Caddyfile routes /<robot>/whep, /<robot>/talk/whip and /hls/<robot>/), or
//   where the relay's settings say (HAVATAR_RELAY_WEBRTC_URL, HAVATAR_RELAY_HLS_URL), as
//   /web/site.json tells.
// Also: a snapshot button (a JPEG named with the robot and the time), and on the cloud
// page recordings through MediaMTX's recorder where the relay has them set up: started and
// stopped by the users the relay lets record, listed and downloaded by the robot's users.

const $ = (id) => document.getElementById(id);
const STALL_MS = 8000;   // a playing stream whose frames stop this long is restarted
const WEBRTC_TRIES = 2;  // WebRTC sessions that were answered but never played before HLS

/** Which site served the page: {site: 'robot'} or {site: 'cloud', webrtc_url, hls_url}. */
export async function loadSite() {
  const r = await fetch('/web/site.json');
  return r.ok ? r.json() : { site: 'robot' };
}

/** MediaMTX addresses of ``robot`` for the cloud page. */
export function mediaUrls(site, robot, origin = location.origin) {
  const id = encodeURIComponent(robot);
  const webrtc = site.webrtc_url || origin;
  const hls = site.hls_url || `${origin}/hls`;
  return { whep: `${webrtc}/${id}/whep`, whip: `${webrtc}/${id}/talk/whip`, hls: `${hls}/${id}/index.m3u8` };
}

/** A snapshot's file name: the robot and the time, e.g. robot1-2026-11-26T03-20-05Z.jpg. */
export function snapshotName(robot, date = new Date()) {
  return `${robot}-${date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}.jpg`;
}

/** Waits that double after each failure, from ``first`` up to ``longest`` ms. */
export class Backoff {
  constructor(first = 1000, longest = 30000) { this.first = first; this.longest = longest; this.reset(); }
  reset() { this.delay = this.first; }
  next() { const d = this.delay; this.delay = Math.min(this.delay * 2, this.longest); return d; }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src; s.onload = resolve; s.onerror = () => reject(new Error(`${src} did not load`));
    document.head.appendChild(s);
  });
}

export class Viewer {
  /** ``onAudio(stream)`` gets the robot's sound from WebRTC or HLS (audio.js plays it). */
  constructor(auth, site, onAudio = () => {}) {
    this.auth = auth;
    this.site = site;
    this.onAudio = onAudio;
    this.cloud = site.site === 'cloud';
    this.urls = this.cloud ? mediaUrls(site, auth.robot) : null;
    this.status = null;
    this.kind = null;          // 'webrtc' | 'hls' | 'mjpeg' while playing or starting
    this.pc = null;
    this.hls = null;
    this.retry = null;         // timer of the next attempt after a failure
    this.backoff = new Backoff();
    this.streaming = false;    // the robot's stream is on the server
    this.progress = { at: 0, value: -1 };  // last time frames advanced
    this.prev = null;          // previous inbound-rtp stats
    this.attempts = 0;         // of the current kind, for the tests and the curious
    this.negotiated = false;   // MediaMTX answered the current WebRTC offer
    this.unplayable = 0;       // answered WebRTC sessions that never played: the network
                               // blocks its media (UDP, no TURN); then HLS, over HTTPS
    $('snapshot').onclick = () => this.snapshot();
    setInterval(() => this.watch(), 1000);
    if (this.cloud && site.recording) {
      this.recordings = `/api/robots/${encodeURIComponent(auth.robot)}`;
      $('record').onclick = () => this.toggleRecording();
      this.refreshRecordings();
      setInterval(() => this.refreshRecordings(), 5000);
    }
  }

  /** A status from the robot: point its media addresses at this site, then choose. */
  onStatus(s) {
    if (this.cloud) Object.assign(s, { whep_url: this.urls.whep, whip_url: this.urls.whip, mjpeg_url: null });
    else s.whep_url = null;
    this.status = s;
    const streaming = s.online !== false && s.stream.active === 'server';
    if (streaming && !this.streaming) this.again();  // the stream is back: try now
    if (this.cloud && !streaming && (this.kind || this.retry)) { this.again(); this.stop(); }
    this.streaming = streaming;
    this.choose();
  }

  choose() {
    const s = this.status;
    if (!s || this.kind || this.retry) return;  // playing, starting or waiting to retry
    if (!this.cloud) {
      if (s.mjpeg_url) this.startMjpeg();
    } else if (!this.streaming) {
      this.state(s.online === false ? 'robot offline' : 'no video here: the robot streams in local mode');
    } else if (window.RTCPeerConnection && this.unplayable < WEBRTC_TRIES) {
      this.startWebrtc();
    } else {
      this.startHls();
    }
  }

  /** Forget past failures and try at once. */
  again() {
    clearTimeout(this.retry);
    this.retry = null;
    this.backoff.reset();
    if (this.kind && this.kind !== 'mjpeg') this.stop();
  }

  failed(reason) {
    if (this.kind === 'webrtc' && this.negotiated && this.progress.value <= 0) this.unplayable += 1;
    this.stop();
    const delay = this.backoff.next();
    this.state(`${reason} — retrying in ${Math.round(delay / 1000)} s`);
    this.retry = setTimeout(() => { this.retry = null; this.choose(); }, delay);
  }

  stop() {
    this.kind = null;
    if (this.pc) { const pc = this.pc; this.pc = null; pc.close(); }
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    const video = $('webrtc');
    video.hidden = true;
    video.srcObject = null;
    video.removeAttribute('src');
    const img = $('mjpeg');
    img.onload = img.onerror = null;
    img.removeAttribute('src');
    img.hidden = true;
  }

  state(text) { $('video-state').textContent = text; }

  startMjpeg() {
    const u = this.status.mjpeg_url;
    const base = u.startsWith(':') ? `${location.protocol}//${location.hostname}${u}` : u;
    this.kind = 'mjpeg';
    this.attempts += 1;
    const img = $('mjpeg');
    img.crossOrigin = 'anonymous';  // the MJPEG server allows it: snapshots may read the pixels
    img.onload = () => { this.backoff.reset(); this.state('MJPEG (local)'); };
    img.onerror = () => this.failed('MJPEG unavailable');
    img.src = `${base}?token=${encodeURIComponent(this.auth.token)}`;
    img.hidden = false;
    $('webrtc').hidden = true;
  }

  async startWebrtc() {
    this.kind = 'webrtc';
    this.attempts += 1;
    this.state('WebRTC: connecting…');
    const pc = new RTCPeerConnection();
    this.pc = pc;
    this.negotiated = false;
    this.prev = null;
    this.progress = { at: Date.now(), value: -1 };
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      const v = $('webrtc');
      const stream = e.streams[0] || new MediaStream([e.track]);
      if (v.srcObject !== stream) v.srcObject = stream;
      v.hidden = false;
      if (e.track.kind === 'audio') this.onAudio(stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.pc && ['failed', 'closed'].includes(pc.connectionState)) this.failed(`WebRTC ${pc.connectionState}`);
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const r = await fetch(this.urls.whep, { method: 'POST', body: pc.localDescription.sdp,
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${this.auth.token}` } });
      if (r.status !== 201) throw new Error(`HTTP ${r.status}`);
      const answer = await r.text();
      if (pc === this.pc) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      this.negotiated = pc === this.pc;
    } catch (e) {
      if (pc === this.pc) this.failed(`WebRTC: ${e.message}`);
    }
  }

  async startHls() {
    this.kind = 'hls';
    this.attempts += 1;
    this.state('HLS: loading…');
    this.progress = { at: Date.now(), value: -1 };
    const video = $('webrtc');
    try {
      if (!window.Hls) await loadScript('/web/hls.min.js');
    } catch (e) { this.failed(`HLS: ${e.message}`); return; }
    if (this.kind !== 'hls') return;
    if (!window.Hls.isSupported()) { this.stop(); this.state('this browser plays neither WebRTC nor HLS'); return; }
    const token = this.auth.token;
    const hls = new window.Hls({ lowLatencyMode: true,
      xhrSetup: (xhr) => xhr.setRequestHeader('Authorization', `Bearer ${token}`) });
    this.hls = hls;
    hls.on(window.Hls.Events.ERROR, (_, data) => { if (data.fatal && hls === this.hls) this.failed(`HLS: ${data.details}`); });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
    // the element stays muted: its sound goes to audio.js (volume, mute, meter) as WebRTC's does
    video.addEventListener('playing', () => { if (hls === this.hls) this.onAudio(video.captureStream()); }, { once: true });
    hls.loadSource(this.urls.hls);
    hls.attachMedia(video);
    video.hidden = false;
    $('mjpeg').hidden = true;
  }

  /** Once a second: the video's figures, and a restart when its frames stop. */
  async watch() {
    const video = $('webrtc');
    if (this.kind === 'webrtc' && this.pc) {
      const pc = this.pc;
      const stats = await pc.getStats();
      if (pc !== this.pc) return;  // stopped meanwhile
      stats.forEach((r) => {
        if (r.type !== 'inbound-rtp' || r.kind !== 'video' || pc !== this.pc) return;
        const prev = this.prev || r;
        const kbps = ((r.bytesReceived - prev.bytesReceived) * 8) / Math.max(1, r.timestamp - prev.timestamp);
        this.prev = r;
        this.advanced(r.framesDecoded || 0);
        if (r.framesDecoded) this.state(`WebRTC ${Math.round(r.framesPerSecond || 0)} fps, ${Math.round(kbps)} kbit/s`);
      });
    } else if (this.kind === 'hls' && this.hls) {
      const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
      this.advanced(Math.max(q, Math.round(video.currentTime * 1000)));
      if (video.currentTime > 0) {
        const why = window.RTCPeerConnection ? ' (WebRTC could not connect)' : '';
        this.state(`HLS${why} ${video.videoWidth}×${video.videoHeight}, ${(this.hls.latency || 0).toFixed(1)} s behind`);
      }
    } else {
      return;
    }
    if (Date.now() - this.progress.at > STALL_MS) this.failed(`${this.kind === 'hls' ? 'HLS' : 'WebRTC'}: no video`);
  }

  advanced(value) {
    if (value > this.progress.value) {
      if (this.progress.value >= 0) this.backoff.reset();  // frames flow: the next failure starts short
      this.progress = { at: Date.now(), value };
    }
  }

  /** Save the picture on screen as a JPEG named with the robot and the time. */
  snapshot() {
    const video = $('webrtc'), img = $('mjpeg');
    const el = !video.hidden && video.videoWidth ? video : img;
    const w = el.videoWidth || el.naturalWidth, h = el.videoHeight || el.naturalHeight;
    if (!w || el.hidden) { this.state('no picture to save yet'); return; }
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    canvas.getContext('2d').drawImage(el, 0, 0, w, h);
    canvas.toBlob((blob) => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = snapshotName(this.auth.robot);
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    }, 'image/jpeg', 0.92);
  }

  // ---- recordings ----------------------------------------------------------------------
  async api(path, options = {}) {
    const headers = { Authorization: `Bearer ${this.auth.token}`, ...(options.headers || {}) };
    return fetch(`${this.recordings}${path}`, { ...options, headers });
  }

  async refreshRecordings() {
    const r = await this.api('/recordings');
    if (!r.ok) { $('record').hidden = true; $('recordings').hidden = true; return; }
    const { recording, may_record: mayRecord, files } = await r.json();
    this.recording = recording;
    const button = $('record');
    button.hidden = !mayRecord;
    button.textContent = recording ? '■ Stop recording' : '● Record';
    button.setAttribute('aria-pressed', String(recording));
    const list = $('recording-list');
    list.replaceChildren(...files.map((file) => {
      const item = document.createElement('li');
      const get = document.createElement('button');
      get.type = 'button';
      get.textContent = 'Download';
      get.onclick = () => this.download(file);
      item.append(`${new Date(file.start).toLocaleString()} (${Math.round(file.duration)} s) `, get);
      return item;
    }));
    $('recordings').hidden = files.length === 0;
  }

  async toggleRecording() {
    const r = await this.api('/recording', { method: 'POST', body: JSON.stringify({ record: !this.recording }),
      headers: { 'Content-Type': 'application/json' } });
    if (!r.ok) this.state(`recording: ${await r.text()}`);
    await this.refreshRecordings();
  }

  async download(file) {
    const r = await this.api(`/recordings/${encodeURIComponent(file.start)}?duration=${file.duration}`);
    if (!r.ok) { this.state(`download: ${await r.text()}`); return; }
    const name = /filename="([^"]+)"/.exec(r.headers.get('Content-Disposition') || '');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await r.blob());
    a.download = name ? name[1] : `${this.auth.robot}.mp4`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
}
