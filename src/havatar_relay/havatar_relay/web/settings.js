// Server-mode settings form: load the robot's saved settings, save them (the robot checks
// and applies them before saving), and test the connection to MediaMTX with what is
// entered, before anything is saved. Only where the robot itself serves the page
// (/web/site.json says 'robot'): the cloud relay has no such endpoints.

const $ = (id) => document.getElementById(id);

function show(text, ok) {
  const el = $('settings-state');
  el.textContent = text;
  el.classList.toggle('ok', ok === true);
  el.classList.toggle('bad', ok === false);
}

// the form's fields as the original client sent them (an empty password keeps the saved one)
function entered(form) {
  const body = {
    enabled: form.enabled.checked, server_url: form.server_url.value.trim(),
    stream_key: form.stream_key.value.trim(), fallback_to_local: form.fallback_to_local.checked,
  };
  if (form.stream_password.value) body.stream_password = form.stream_password.value;
  return body;
}

async function post(path, body, token) {
  const r = await fetch(path, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
  });
  return r.json();  // {ok, msg, ...} also for a refusal (400)
}

export async function initSettings(token, site) {
  const section = document.querySelector('.settings');
  if (site.site !== 'robot') { section.hidden = true; return; }
  const form = $('settings');
  const r = await fetch('/server/config', { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) { section.hidden = true; return; }
  const c = await r.json();
  form.enabled.checked = c.enabled; form.server_url.value = c.server_url; form.stream_key.value = c.stream_key;
  form.fallback_to_local.checked = c.fallback_to_local;
  form.stream_password.placeholder = c.stream_password_set ? '(unchanged)' : '(none saved)';

  form.onsubmit = async (e) => {
    e.preventDefault();
    show('saving…');
    try {
      const reply = await post('/server/config', entered(form), token);
      if (reply.ok) {
        form.server_url.value = reply.server_url;  // as used: an https:// address becomes rtsps://
        form.stream_password.value = '';
        form.stream_password.placeholder = reply.stream_password_set ? '(unchanged)' : '(none saved)';
      }
      show(reply.ok ? (reply.applied ? `saved and applied: ${reply.message}` : reply.message)
        : `not saved: ${reply.msg}`, reply.ok && reply.applied);
    } catch (err) { show(`not saved: ${err.message}`, false); }
  };

  $('settings-test').onclick = async () => {
    const button = $('settings-test');
    button.disabled = true;
    show('testing the connection…');
    try {
      const reply = await post('/server/test', entered(form), token);
      show(reply.ok ? `connection works: ${reply.msg}` : `connection failed (${reply.error}): ${reply.msg}`, reply.ok);
    } catch (err) { show(`connection test failed: ${err.message}`, false); }
    button.disabled = false;
  };
}
