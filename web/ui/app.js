// app.js — the status page's entry: the box's state, kept live. /v1/models gives every model of
// the matrix (capabilities, estimated and measured memory), /api/ps what is resident (state,
// pools, keep-alive, in flight, queued, pinned) and the memory pools; /api/events (read from a
// fetch stream, with the key) moves a model's state at once (loading with its progress, loaded,
// unloading, unloaded) and fills the event log; /metrics is sampled for the sparklines. Load and
// unload POST /api/load and /api/unload. Never builds HTML from text (el() sets textContent).
import { api, apiJson, apiKey, bytes, el, readSse, setApiKey, whenUnauthorized } from './api.js';
import { Spark, colourOf, poolBar } from './charts.js';
import { rates, sample } from './metrics.js';
import { initPlayground, setModels as playgroundModels } from './playground.js';

const PS_EVERY_MS = 1000; // /api/ps: keep-alive countdowns and in-flight counts
const METRICS_EVERY_MS = 2000; // /metrics: one sparkline sample (charts.js: SPARK_POINTS)
const EVENTS_KEPT = 200; // the event log's length
const RECONNECT_MS = 2000;

const S = {
  models: [], // /v1/models' models (routers and pipelines left out)
  ps: { models: [], memory: { pools: [] }, devices: [] },
  live: new Map(), // name → {state, progress}: from events, until /api/ps says otherwise
  evCount: 0, // events seen (a /api/ps answer begun before the last event is stale)
  busy: new Set(), // names with a load/unload button pressed and not answered yet
};

const $ = (id) => document.getElementById(id);

// ---- the key ----
function askKey(why) {
  const f = $('keyform');
  if (f.hidden) { // once: the polls that keep failing must not pull the focus away every second
    f.hidden = false;
    $('key').focus();
  }
  setConn('auth', why || 'API key needed');
}
whenUnauthorized(() => askKey('API key missing or wrong'));
$('keyform').addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey($('key').value.trim());
  $('key').value = '';
  $('keyform').hidden = true;
  start();
});

function setConn(state, text) {
  const c = $('conn');
  c.dataset.state = state;
  c.textContent = text;
}

// ---- state ----
function psOf(name) { return S.ps.models.find((m) => m.name === name); }

function stateOf(name) {
  const live = S.live.get(name), p = psOf(name);
  if (live) return live;
  return { state: p ? p.state : 'unloaded', progress: null };
}

async function refresh() {
  const ev = S.evCount;
  try {
    const [models, ps] = await Promise.all([apiJson('/v1/models'), apiJson('/api/ps')]);
    if (ev !== S.evCount) return refresh(); // an event came meanwhile: this answer may be older
    S.models = models.data.filter((m) => m.owned_by === 'switchyard' && !m.pipeline);
    S.ps = ps;
    // an event's state stands until /api/ps agrees with it (it is then the same) or moved on
    for (const [name, l] of S.live) {
      const p = psOf(name);
      if ((p ? p.state : 'unloaded') === l.state || l.done) S.live.delete(name);
    }
    render();
  } catch (e) {
    if (e.status !== 401) setConn('down', 'daemon unreachable: ' + e.message);
  }
}

// ---- the model table ----
function keepAlive(p) {
  if (!p || p.expires_in_s == null) return '–';
  if (p.expires_in_s < 0) return 'forever';
  const s = p.expires_in_s;
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
    : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function where(p) {
  if (!p || !p.devices || !p.devices.length) return '–';
  return p.devices.map((d) => d.device).join(' + ');
}

async function adminAction(name, load) {
  S.busy.add(name);
  render();
  $('actionmsg').textContent = `${load ? 'loading' : 'unloading'} ${name}…`;
  try {
    const r = await apiJson(load ? '/api/load' : '/api/unload', { json: { model: name } });
    $('actionmsg').textContent = `${name}: ${r.status}`;
  } catch (e) {
    $('actionmsg').textContent = `${name}: ${e.message}`;
  } finally {
    S.busy.delete(name);
    refresh();
  }
}

// One row per model, made once and updated in place: a button under the pointer is never
// replaced between mousedown and mouseup (a click would be lost), and text is only written when
// it changed.
const rowEls = new Map(); // name → the row's elements
function rowFor(name) {
  let r = rowEls.get(name);
  if (r) return r;
  const td = (cls) => el('td', { class: cls });
  r = {
    swatch: el('span', { class: 'swatch' }), caps: el('span', { class: 'caps' }),
    state: el('span', { class: 'state' }), prog: el('progress', { max: '1', hidden: true }),
    pct: el('span', { class: 'pct' }), est: td('num est'), meas: td('num meas'), where: td('where'),
    ka: td('num keepalive'), inflight: td('num inflight'), queued: td('num queued'), pinned: td('pinned'),
    btn: el('button', { type: 'button' }),
  };
  r.btn.addEventListener('click', () => adminAction(name, r.btn.dataset.action === 'load'));
  r.tr = el('tr', { dataset: { model: name } },
    el('td', {}, r.swatch, ' ', el('b', { text: name }), r.caps),
    el('td', {}, r.state, ' ', r.prog, r.pct),
    r.est, r.meas, r.where, r.ka, r.inflight, r.queued, r.pinned, el('td', {}, r.btn));
  rowEls.set(name, r);
  return r;
}

function setText(node, t) { if (node.textContent !== t) node.textContent = t; }
function setAttr(node, k, v) { if (node.getAttribute(k) !== v) node.setAttribute(k, v); }

function renderModels() {
  const body = $('models').tBodies[0];
  S.models.forEach((m, i) => {
    const p = psOf(m.id), st = stateOf(m.id), r = rowFor(m.id);
    r.swatch.style.backgroundColor = colourOf(i);
    setText(r.caps, (m.capabilities || []).join(' '));
    setAttr(r.tr, 'data-state', st.state);
    setText(r.state, st.state);
    setAttr(r.state, 'class', 'state ' + st.state);
    const showProg = st.state === 'loading' && st.progress != null;
    r.prog.hidden = !showProg;
    if (showProg) r.prog.value = st.progress;
    setText(r.pct, showProg ? ` ${Math.round(st.progress * 100)}%` : '');
    const est = p ? p.size_estimated : m.memory && m.memory.estimated;
    const meas = p ? p.size_measured : m.memory && m.memory.measured;
    setText(r.est, bytes(est));
    setText(r.meas, meas ? bytes(meas) : '–');
    setText(r.where, where(p));
    setText(r.ka, keepAlive(p));
    setText(r.inflight, p ? String(p.inflight) : '0');
    setText(r.queued, p ? String(p.queued) : '0');
    setText(r.pinned, p && p.pinned ? 'pinned' : '');
    const load = st.state === 'unloaded', busy = S.busy.has(m.id);
    r.btn.dataset.action = load ? 'load' : 'unload';
    setAttr(r.btn, 'class', load ? 'load' : 'unload');
    setText(r.btn, load ? 'load' : 'unload');
    r.btn.disabled = busy || (!load && st.state !== 'loaded');
    if (body.rows[i] !== r.tr) body.insertBefore(r.tr, body.rows[i] || null);
  });
  const names = new Set(S.models.map((m) => m.id));
  for (const [name, r] of rowEls) if (!names.has(name)) { r.tr.remove(); rowEls.delete(name); }
}

// ---- memory ----
function renderPools() {
  const box = $('pools');
  const pools = (S.ps.memory && S.ps.memory.pools) || [];
  const devs = S.ps.devices || [];
  box.replaceChildren(...pools.map((pool, i) => {
    const segs = [];
    for (const m of S.ps.models) {
      const d = (m.devices || []).find((x) => x.device === pool.device);
      const b = d ? Math.max(d.estimated || 0, d.measured || 0) : 0;
      const cache = i === 0 && m.prompt_cache ? m.prompt_cache.limit || 0 : 0;
      const colour = colourOf(Math.max(0, S.models.findIndex((x) => x.id === m.name)));
      if (b > 0 || cache > 0) segs.push({ name: m.name, bytes: b, cache, colour });
    }
    const dev = i === 0 ? devs.find((d) => d.type === 'cpu') : devs.find((d) => d.name === pool.device);
    return poolBar(pool, segs, dev ? dev.total : 0);
  }));
}

function renderSummary() {
  const loaded = S.ps.models.filter((m) => m.state === 'loaded').length;
  const mem = S.ps.memory || {};
  $('summary').textContent = `${S.models.length} models, ${loaded} loaded · ${bytes(mem.used)} of ${bytes(mem.budget)}` +
    (S.ps.stats ? ` · ${S.ps.stats.requests} requests` : '');
}

function render() {
  renderModels();
  renderPools();
  renderSummary();
  playgroundModels(S.models);
}

// ---- events ----
function eventText(e) {
  switch (e.type) {
    case 'loading': return [`loading ${e.model}`, `estimated ${bytes(e.estimated)}`];
    case 'loaded': return [`loaded ${e.model}`, `in ${e.ms} ms, measured ${bytes(e.measured)}, pid ${e.pid}`];
    case 'load_failed': return [`load of ${e.model} failed`, e.error];
    case 'unloading': return [`unloading ${e.model}`, e.reason];
    case 'unloaded': return [`unloaded ${e.model}`, ''];
    case 'reloaded': return ['configuration reloaded', `${e.unchanged} unchanged; added ${(e.added || []).join(', ') || '–'}; changed ${(e.changed || []).join(', ') || '–'}; removed ${(e.removed || []).join(', ') || '–'}`];
    case 'reload_failed': return ['configuration reload failed', e.error];
    case 'shutdown': return ['daemon shutting down', ''];
    case 'lost': return [`${e.count} events lost`, 'this page fell behind'];
    default: return null; // hello, load_progress: not logged
  }
}

function onEvent(e) {
  S.evCount++;
  const m = e.model;
  if (e.type === 'loading') S.live.set(m, { state: 'loading', progress: 0 });
  else if (e.type === 'load_progress') S.live.set(m, { state: 'loading', progress: e.progress });
  else if (e.type === 'loaded') S.live.set(m, { state: 'loaded', progress: null });
  else if (e.type === 'load_failed') S.live.set(m, { state: 'unloaded', progress: null, done: true });
  else if (e.type === 'unloading') S.live.set(m, { state: 'unloading', progress: null });
  else if (e.type === 'unloaded') S.live.set(m, { state: 'unloaded', progress: null });
  const t = eventText(e);
  if (t) {
    const log = $('events');
    const time = new Date((e.time || Date.now() / 1000) * 1000).toLocaleTimeString();
    const cls = e.type === 'load_failed' || e.type === 'reload_failed' ? 'error'
      : e.type === 'unloading' && /evicted/.test(e.reason || '') ? 'evict' : e.type;
    log.prepend(el('li', { class: cls, dataset: { type: e.type, model: m || '' } },
      el('time', { text: time }), ' ', el('b', { text: t[0] }), t[1] ? ' — ' : '', t[1] || ''));
    while (log.children.length > EVENTS_KEPT) log.lastElementChild.remove();
  }
  if (e.type !== 'hello') { render(); refresh(); }
}

let feed = null;
async function followEvents() {
  if (feed) feed.abort();
  const ac = new AbortController();
  feed = ac;
  try {
    const r = await api('/api/events', { signal: ac.signal });
    setConn('live', 'live');
    refresh();
    await readSse(r, (data) => { onEvent(JSON.parse(data)); });
    setConn('down', 'event stream ended; reconnecting…');
  } catch (e) {
    if (ac.signal.aborted) return;
    if (e.status === 401) return; // askKey has run; start() follows the new key
    setConn('down', 'daemon unreachable; reconnecting…');
  }
  if (feed === ac) setTimeout(followEvents, RECONNECT_MS);
}

// ---- sparklines ----
const sparks = {
  tps: new Spark($('sp-tps'), $('sv-tps'), (v) => v.toFixed(1)),
  ttft: new Spark($('sp-ttft'), $('sv-ttft'), (v) => v < 1000 ? v.toFixed(0) + ' ms' : (v / 1000).toFixed(2) + ' s'),
  queue: new Spark($('sp-queue'), $('sv-queue'), (v) => v.toFixed(0)),
};
let lastSample = null;
async function pollMetrics() {
  try {
    const text = await (await api('/metrics')).text();
    const cur = sample(text, Date.now());
    const r = rates(lastSample, cur);
    lastSample = cur;
    sparks.tps.push(r.tps);
    sparks.ttft.push(r.ttftMs);
    sparks.queue.push(r.queue);
  } catch (_) { /* the next tick tries again; the connection state says why */ }
}

// ---- start ----
let timers = [];
function start() {
  timers.forEach(clearInterval);
  timers = [setInterval(refresh, PS_EVERY_MS), setInterval(pollMetrics, METRICS_EVERY_MS)];
  followEvents();
  pollMetrics();
  refresh();
}

initPlayground();
if (!apiKey()) {
  // keys may be configured: /health needs none, /api/ps tells (401 → askKey)
  api('/api/ps').then(start, (e) => { if (e.status !== 401) start(); });
} else start();
