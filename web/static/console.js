// The console page: creates a console (POST /v1/consoles) or re-attaches to the one named in
// the URL (#id=...), and speaks sandboxd's WebSocket protocol: binary frames carry terminal
// bytes both ways, text frames carry JSON control messages (resize, ping/pong, exit, error).
// sandboxd replays the scrollback on every attach, so a reload or a reconnect shows the
// earlier output again; the page resets the terminal before re-attaching so it is not doubled.
import { Terminal } from './vendor/xterm.mjs';
import { FitAddon } from './vendor/addon-fit.mjs';

const statusEl = document.getElementById('status');
const closeBtn = document.getElementById('close');
const params = new URLSearchParams(location.search);
const command = params.get('command') || 'bash';
const encoder = new TextEncoder();

const term = new Terminal({ cursorBlink: true, scrollback: 5000, fontSize: 14 });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById('terminal'));
fit.fit();

let ws = null;
let consoleId = null;
let consoleToken = null;
let ended = false;
let retries = 0;
let keepaliveTimer = null;

function setStatus(text, isError) {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', !!isError);
}

// The console token is kept per tab (sessionStorage), the id in the URL: a reload finds both.
function remember(id, token) {
  sessionStorage.setItem('anyops-console-token:' + id, token);
  history.replaceState(null, '', location.pathname + location.search + '#id=' + encodeURIComponent(id));
}

function fromURL() {
  const id = new URLSearchParams(location.hash.slice(1)).get('id');
  if (!id) return null;
  const token = sessionStorage.getItem('anyops-console-token:' + id);
  return token ? { id, token } : null;
}

async function apiError(resp) {
  try {
    const body = await resp.json();
    return body.error ? body.error.message : resp.statusText;
  } catch {
    return resp.statusText;
  }
}

async function createConsole() {
  setStatus('starting a console…');
  const resp = await fetch('/v1/consoles', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ command }),
  });
  if (!resp.ok) {
    const retry = resp.headers.get('Retry-After');
    throw new Error((await apiError(resp)) + (retry ? ` (retry in ${retry}s)` : ''));
  }
  return resp.json();
}

// attachURL asks for a fresh attach URL (attach tokens are short-lived); null when the
// console is gone.
async function fetchConsole() {
  const resp = await fetch(`/v1/consoles/${encodeURIComponent(consoleId)}?token=${encodeURIComponent(consoleToken)}`);
  if (resp.status === 404 || resp.status === 401) return null;
  if (!resp.ok) throw new Error(await apiError(resp));
  const c = await resp.json();
  return c.state === 'open' && c.attach_url ? c : null;
}

function sendResize() {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: 'resize', rows: term.rows, cols: term.cols }));
  }
}

function connect(attachURL) {
  term.reset(); // the attach replays the scrollback
  const sock = new WebSocket(attachURL);
  sock.binaryType = 'arraybuffer';
  ws = sock;
  sock.onopen = () => {
    retries = 0;
    setStatus('connected');
    closeBtn.hidden = false;
    fit.fit();
    sendResize();
    term.focus();
  };
  sock.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'exit') {
        ended = true;
        setStatus(`console ended (exit code ${msg.code ?? '?'})`);
      } else if (msg.type === 'error') {
        setStatus(msg.message || 'error', true);
      }
      return;
    }
    term.write(new Uint8Array(ev.data));
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    if (ended) return;
    reconnect();
  };
}

// reconnect re-attaches with a fresh URL after a growing pause; a console that is gone ends.
async function reconnect() {
  retries++;
  const delay = Math.min(500 * 2 ** (retries - 1), 10000);
  setStatus(`disconnected; reconnecting in ${Math.round(delay / 1000)}s…`, true);
  await new Promise((r) => setTimeout(r, delay));
  try {
    const c = await fetchConsole();
    if (!c) {
      ended = true;
      setStatus('console closed');
      closeBtn.hidden = true;
      return;
    }
    connect(c.attach_url);
  } catch (e) {
    reconnect();
  }
}

term.onData((data) => {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
});
term.onResize(sendResize);
window.addEventListener('resize', () => fit.fit());

closeBtn.addEventListener('click', async () => {
  ended = true;
  closeBtn.hidden = true;
  setStatus('closing…');
  if (ws) ws.close();
  await fetch(`/v1/consoles/${encodeURIComponent(consoleId)}?token=${encodeURIComponent(consoleToken)}`, { method: 'DELETE' });
  sessionStorage.removeItem('anyops-console-token:' + consoleId);
  setStatus('console closed');
});

function startKeepalive(seconds) {
  clearInterval(keepaliveTimer);
  keepaliveTimer = setInterval(() => {
    if (ended || document.hidden) return;
    fetch(`/v1/consoles/${encodeURIComponent(consoleId)}/keepalive?token=${encodeURIComponent(consoleToken)}`, { method: 'POST' });
  }, Math.max(seconds, 5) * 1000);
  // A ping keeps proxies from closing an idle WebSocket.
  setInterval(() => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'ping' })); }, 25000);
}

async function main() {
  try {
    const saved = fromURL();
    let c = null;
    if (saved) {
      consoleId = saved.id;
      consoleToken = saved.token;
      c = await fetchConsole();
    }
    if (!c) {
      c = await createConsole();
      consoleId = c.id;
      consoleToken = c.token;
      remember(c.id, c.token);
    }
    document.body.dataset.consoleId = consoleId;
    startKeepalive(c.keepalive_seconds || 60);
    connect(c.attach_url);
  } catch (e) {
    setStatus('could not start a console: ' + e.message, true);
  }
}

main();
