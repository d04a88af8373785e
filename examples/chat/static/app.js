// wssec chat: plain JavaScript, no build step. Everything the server sends
// is shown with textContent, never as HTML.
'use strict';

const PROTOCOL = 'wssec.v1';
const $ = (id) => document.getElementById(id);

const state = {
  user: '', tenant: '',
  token: '',          // the current JWT; sent as the "bearer.<token>" subprotocol
  ticket: '',         // one-time ticket for the first socket after a login
  exp: 0,             // token expiry, unix seconds
  canLogin: true,     // false when the server verifies an external issuer
  ws: null,
  rooms: new Set(),   // channels joined (re-joined after a reconnect)
  selected: '',
  nextID: 1,
  retry: 0,
  reconnectTimer: 0,
};

// ---- security panel ------------------------------------------------------

const closeMeaning = {
  1000: 'normal closure',
  1001: 'going away (server shutdown or idle)',
  1006: 'abnormal: no close frame (a refused handshake looks like this)',
  1007: 'invalid payload (not UTF-8)',
  1008: 'policy violation (token expired or revoked, too many refusals)',
  1009: 'message too big',
  1011: 'server error',
  1013: 'try again later (rate abuse or slow consumer)',
};

function refusal(kind, code, detail) {
  const list = $('refusals');
  const empty = list.querySelector('.empty');
  if (empty) empty.remove();
  const li = document.createElement('li');
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const k = document.createElement('span');
  k.className = 'kind';
  k.textContent = kind;
  const c = document.createElement('code');
  c.textContent = String(code);
  const d = document.createElement('span');
  d.className = 'detail';
  d.textContent = detail;
  li.append(time, ' ', k, ' ', c, ' ', d);
  list.prepend(li);
  while (list.children.length > 12) list.lastElementChild.remove();
}

// ---- helpers --------------------------------------------------------------

function setStatus(text, cls) {
  const s = $('status');
  s.textContent = text;
  s.className = 'status ' + cls;
}

function b64urlDecode(s) {
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  return new TextDecoder().decode(Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0)));
}

function b64urlEncode(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// claims reads a token's payload for display only: the server verifies it.
function claims(token) {
  try { return JSON.parse(b64urlDecode(token.split('.')[1])); } catch { return {}; }
}

function wsURL() {
  return location.origin.replace(/^http/, 'ws') + '/ws';
}

function send(obj) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(obj));
  return true;
}

function newID(prefix) { return prefix + '-' + (state.nextID++); }

function setConnected(on) {
  for (const id of ['join-btn', 'send-btn', 'atk-tenant', 'atk-flood', 'atk-big']) $(id).disabled = !on;
  $('atk-bogus').disabled = !state.token;
}

// ---- login and socket -----------------------------------------------------

async function login(user, tenant) {
  const r = await fetch('/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, tenant }),
    credentials: 'same-origin',
  });
  if (r.status === 404) {
    state.canLogin = false;
    $('paste').open = true;
    throw new Error('login is disabled: this server verifies tokens from an external issuer; paste one below');
  }
  if (!r.ok) throw new Error('login refused: ' + r.status + ' ' + (await r.text()).trim());
  const body = await r.json();
  useToken(body.token, body.ticket);
}

function useToken(token, ticket) {
  const c = claims(token);
  state.token = token;
  state.ticket = ticket || '';
  state.exp = c.exp || 0;
  state.user = c.sub || state.user;
  state.tenant = c.tenant || state.tenant;
  $('who').textContent = state.user + ' @ ' + state.tenant;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    const old = state.ws;
    state.ws = null;
    old.close(1000, 'reconnecting');
  }
  let sock, via;
  if (state.ticket) {
    // A ticket is single-use and lives 30 s: fine in a URL, unlike a token.
    sock = new WebSocket(wsURL() + '?ticket=' + encodeURIComponent(state.ticket), [PROTOCOL]);
    via = 'one-time ticket';
    state.ticket = '';
  } else {
    sock = new WebSocket(wsURL(), [PROTOCOL, 'bearer.' + state.token]);
    via = 'bearer subprotocol';
  }
  state.ws = sock;
  let opened = false;
  setStatus('connecting…', 'wait');
  sock.onopen = () => {
    opened = true;
    state.retry = 0;
    setStatus('connected (' + via + ', protocol ' + sock.protocol + ')', 'on');
    setConnected(true);
    for (const ch of state.rooms) send({ action: 'subscribe', channel: ch, id: newID('join') });
  };
  sock.onmessage = (e) => onFrame(e.data);
  sock.onclose = (e) => {
    if (state.ws !== sock) return; // replaced on purpose
    state.ws = null;
    setConnected(false);
    if (!opened) {
      refusal('handshake refused', e.code, 'the browser hides the HTTP status; see /metrics for the server side');
    } else if (e.code !== 1000) {
      let detail = e.reason || closeMeaning[e.code] || '';
      if (state.bigSent && e.code !== 1009) {
        // The server closes with 1009 as soon as it reads the frame
        // header; the browser may still be sending the 40 KB, and then
        // sees the connection reset before it reads the close frame.
        detail = 'after the 40 KB message: the server closed with 1009 (message too big), but the connection was reset before the browser read the close frame';
      } else if (state.bigSent) {
        detail += ' — after the 40 KB message';
      }
      refusal('socket closed', e.code, detail);
    }
    state.bigSent = false;
    setStatus('disconnected (' + e.code + ')', 'off');
    scheduleReconnect(opened);
  };
}

async function scheduleReconnect(wasOpen) {
  if (!state.token) return;
  state.retry++;
  if (state.retry > 6) { setStatus('disconnected: gave up reconnecting', 'off'); return; }
  const delay = Math.min(500 * 2 ** (state.retry - 1), 10000);
  setStatus('reconnecting in ' + (delay / 1000) + ' s…', 'wait');
  state.reconnectTimer = setTimeout(async () => {
    try {
      const fresh = Date.now() / 1000 < state.exp - 20;
      if ((!fresh || !wasOpen) && state.canLogin && state.user) await login(state.user, state.tenant);
      connect();
    } catch (err) {
      setStatus(String(err.message || err), 'off');
    }
  }, delay);
}

// refreshToken gets a new token before the old one expires. It tries the
// in-band {"action":"auth"} first and reconnects with the new token if the
// server refuses it.
async function refreshToken() {
  if (!state.canLogin || !state.user) return;
  try {
    await login(state.user, state.tenant);
    state.ticket = '';
    const id = newID('auth');
    state.pendingAuth = id;
    if (!send({ action: 'auth', id, payload: { token: state.token } })) connect();
  } catch (err) {
    setStatus(String(err.message || err), 'off');
  }
}

function onFrame(data) {
  let f;
  try { f = JSON.parse(data); } catch { return; }
  switch (f.action) {
    case 'message':
      showMessage(f.channel, f.payload && f.payload.from, f.payload && f.payload.text);
      break;
    case 'pong':
      pending.delete(f.id);
      break;
    case 'subscribed':
      pending.delete(f.id);
      state.rooms.add(f.channel);
      renderRooms();
      break;
    case 'unsubscribed':
      state.rooms.delete(f.channel);
      renderRooms();
      break;
    case 'token_expiring':
      refreshToken();
      break;
    case 'auth':
      state.pendingAuth = '';
      break;
    case 'error': {
      const e = f.error || {};
      if (f.id && f.id === state.pendingAuth) {
        state.pendingAuth = '';
        connect(); // in-band re-authentication unavailable: reconnect
        return;
      }
      const what = f.id && pending.get(f.id);
      pending.delete(f.id);
      const msg = e.message && e.message !== e.code ? e.message : '';
      refusal('error frame', e.code, [msg, what].filter(Boolean).join(' — '));
      break;
    }
  }
}

// pending remembers what each attack sent, to explain the refusal.
const pending = new Map();

function showMessage(channel, from, text) {
  const li = document.createElement('li');
  const ch = document.createElement('span');
  ch.className = 'channel';
  ch.textContent = channel;
  const who = document.createElement('strong');
  who.textContent = from;
  const t = document.createElement('span');
  t.className = 'text';
  t.textContent = text;
  li.append(ch, ' ', who, ': ', t);
  const list = $('messages');
  list.append(li);
  while (list.children.length > 200) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function renderRooms() {
  const ul = $('rooms');
  ul.replaceChildren();
  const sel = $('send-room');
  sel.replaceChildren();
  for (const ch of state.rooms) {
    const li = document.createElement('li');
    li.dataset.channel = ch;
    const name = document.createElement('code');
    name.textContent = ch;
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.textContent = 'leave';
    leave.className = 'small';
    leave.addEventListener('click', () => send({ action: 'unsubscribe', channel: ch, id: newID('leave') }));
    li.append(name, ' ', leave);
    ul.append(li);
    const opt = document.createElement('option');
    opt.value = ch;
    opt.textContent = ch;
    sel.append(opt);
  }
  if (state.rooms.has(state.selected)) sel.value = state.selected;
  else if (state.rooms.size) state.selected = sel.value;
}

// ---- attacks ----------------------------------------------------------------

function otherTenant() { return state.tenant === 'globex' ? 'initech' : 'globex'; }

function attackTenant() {
  const ch = 'tenant:' + otherTenant() + ':lobby';
  const id = newID('atk-tenant');
  pending.set(id, 'subscribe ' + ch);
  send({ action: 'subscribe', channel: ch, id });
}

function attackFlood() {
  // Pings: each one counts against the message rate like any message,
  // without spamming the room.
  for (let i = 0; i < 60; i++) {
    const id = newID('flood');
    pending.set(id, 'message ' + (i + 1) + ' of 60');
    send({ action: 'ping', id });
  }
}

function attackBig() {
  const ch = state.selected || 'tenant:' + state.tenant + ':lobby';
  state.bigSent = send({ action: 'publish', channel: ch, id: newID('big'), payload: { text: 'x'.repeat(40 * 1024) } });
}

function attackBogus() {
  // Forge a token: the real one with the tenant changed, so the
  // signature no longer matches.
  const parts = state.token.split('.');
  const c = claims(state.token);
  c.tenant = otherTenant();
  const forged = parts[0] + '.' + b64urlEncode(JSON.stringify(c)) + '.' + parts[2];
  const s = new WebSocket(wsURL(), [PROTOCOL, 'bearer.' + forged]);
  let opened = false;
  s.onopen = () => { opened = true; refusal('UNEXPECTED', 'open', 'the forged token was accepted!'); s.close(); };
  s.onclose = (e) => {
    if (!opened) refusal('handshake refused', e.code,
      'forged token (tenant changed to ' + c.tenant + '): the server refuses it with HTTP 401 before any upgrade; a browser only ever reports 1006');
  };
}

// ---- wiring -------------------------------------------------------------------

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const user = $('user').value.trim();
  const tenant = $('tenant').value.trim();
  try {
    setStatus('logging in…', 'wait');
    state.rooms.clear();
    renderRooms();
    state.retry = 0;
    await login(user, tenant);
    connect();
  } catch (err) {
    setStatus(String(err.message || err), 'off');
  }
});

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const tok = $('token-in').value.trim();
  if (!tok) return;
  state.canLogin = false;
  state.rooms.clear();
  renderRooms();
  state.retry = 0;
  useToken(tok, '');
  connect();
});

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const room = $('room').value.trim();
  if (!room) return;
  // A full channel name ("tenant:x:y") is sent as typed, so a visitor can
  // try other tenants by hand too.
  const ch = room.includes(':') ? room : 'tenant:' + state.tenant + ':' + room;
  state.selected = ch;
  const id = newID('join');
  pending.set(id, 'subscribe ' + ch);
  send({ action: 'subscribe', channel: ch, id });
});

$('send-room').addEventListener('change', (e) => { state.selected = e.target.value; });

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('msg').value;
  const ch = $('send-room').value;
  if (!text || !ch) return;
  const id = newID('msg');
  if (send({ action: 'publish', channel: ch, id, payload: { text } })) $('msg').value = '';
});

$('atk-tenant').addEventListener('click', attackTenant);
$('atk-flood').addEventListener('click', attackFlood);
$('atk-big').addEventListener('click', attackBig);
$('atk-bogus').addEventListener('click', attackBogus);

setConnected(false);
