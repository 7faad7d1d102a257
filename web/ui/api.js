// api.js — the page's one way to the daemon: fetch with the API key (sessionStorage only, never
// localStorage or a cookie), and server-sent events read from a fetch stream (EventSource cannot
// send the Authorization header). Same origin only: the CSP's connect-src is 'self'.
const KEY = 'switchyard-key';

export function apiKey() { return sessionStorage.getItem(KEY) || ''; }
export function setApiKey(k) {
  if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY);
}

// Called with no argument when an answer says the key is missing or wrong (401).
let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// fetch(path) with the key; a non-2xx answer throws ApiError with the API's own message.
export async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  const k = apiKey();
  if (k) headers.set('Authorization', 'Bearer ' + k);
  if (opts.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    opts = { ...opts, method: opts.method || 'POST', body: JSON.stringify(opts.json) };
  }
  const r = await fetch(path, { ...opts, headers, cache: 'no-store' });
  if (r.ok) return r;
  let msg = r.status + ' ' + r.statusText;
  try {
    const j = await r.json();
    const e = j && j.error;
    msg = typeof e === 'string' ? e : (e && e.message) || msg;
  } catch (_) { /* not JSON: the status line says enough */ }
  if (r.status === 401) onUnauthorized();
  throw new ApiError(r.status, msg);
}

export async function apiJson(path, opts) { return (await api(path, opts)).json(); }

// Read a text/event-stream answer: onData(the data of each event, joined) until the stream ends
// or signal aborts. Comments (": ping") and event names are skipped.
export async function readSse(resp, onData) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n/g, '\n');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data && onData(data) === false) { reader.cancel(); return; }
    }
  }
}

// Human sizes: 1536 → "1.5 KiB".
export function bytes(n) {
  if (n == null || !isFinite(n)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : String(n)) + ' ' + u[i];
}

// An element: el('td', {class: 'num', dataset: {x: 1}}, 'text', child, …). Text is text, never HTML.
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids) if (c != null) e.append(c);
  return e;
}
