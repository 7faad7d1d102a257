// ui.test.mjs — the status page in headless Chromium (puppeteer-core driving Debian's
// /usr/bin/chromium; nothing is downloaded). Run by tests/browser/run.sh, which starts the daemons
// (SWITCHYARD_URL: open, a chat model to load and a pinned embedder; SWITCHYARD_KEYED_URL: with
// the API key SWITCHYARD_KEY). Every wait is on a condition in the page (waitForSelector,
// waitForFunction) or an HTTP answer: no sleeps, no timing thresholds. Random-weight models: the
// chat's text is checked for being there and streamed, never for what it says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const BASE = process.env.SWITCHYARD_URL;
const KEYED = process.env.SWITCHYARD_KEYED_URL;
const KEY = process.env.SWITCHYARD_KEY;
const SHOTS = process.env.SCREENSHOT_DIR;
const WAIT = { timeout: 120000 }; // a bound for a hung daemon, not a timing assertion
// a 5x4 RGB PNG (the integration tests' it_png_5x4)
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwevSuXNnABojSPEzoaAiYB6OQA' +
  'igk3IXICDBUB8QoSs1rFla/4dHetm7fEMTPbO3+6l+D1cfDu22FFMAAAAAAElFTkSuQmCC';

let browser;
before(async () => {
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // --no-sandbox: Chromium's sandbox refuses to run as root (CI containers); the page is ours
    args: [...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
      '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
});
after(async () => { if (browser) await browser.close(); });

// A page that records everything that would be a problem: console errors, uncaught exceptions,
// failed requests and answers >= 400 (allowed: predicate(url, status) says which are expected).
async function watchedPage(allowed = () => false) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 1000 });
  const problems = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const loc = m.location() || {};
    // Chromium reports a failed resource load as a console error too; its answer is judged below
    if (/^Failed to load resource/.test(m.text()) && loc.url && allowed(loc.url, 0)) return;
    problems.push('console: ' + m.text() + (loc.url ? ' at ' + loc.url : ''));
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '';
    if (why !== 'net::ERR_ABORTED') problems.push('request failed: ' + r.url() + ' ' + why);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !allowed(r.url(), r.status())) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return { page, problems };
}

async function getJson(base, path, key) {
  const r = await fetch(base + path, key ? { headers: { Authorization: 'Bearer ' + key } } : {});
  assert.equal(r.status, 200, path);
  return r.json();
}

// The page's model table, row by row.
function tableOf(page) {
  return page.$$eval('#models tbody tr', (rows) => rows.map((r) => ({
    name: r.dataset.model,
    state: r.dataset.state,
    inflight: Number(r.querySelector('.inflight').textContent),
    queued: Number(r.querySelector('.queued').textContent),
    pinned: r.querySelector('.pinned').textContent === 'pinned',
  })));
}

// The table matches /v1/models (every model of the matrix) and /api/ps (what is resident), once
// the page has caught up with the answers (it polls /api/ps every second).
async function tableMatchesPs(page, base, key) {
  const models = (await getJson(base, '/v1/models', key)).data.filter((m) => m.owned_by === 'switchyard' && !m.pipeline);
  // nothing runs at these points: a request that just ended may leave /api/ps a moment later,
  // so poll until none is in flight (bounded), then compare
  let ps;
  for (let i = 0; ; i++) {
    ps = await getJson(base, '/api/ps', key);
    if (ps.models.every((x) => !x.inflight && !x.queued) || i >= 200) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const want = models.map((m) => {
    const p = ps.models.find((x) => x.name === m.id);
    return { name: m.id, state: p ? p.state : 'unloaded', inflight: p ? p.inflight : 0,
      queued: p ? p.queued : 0, pinned: !!(p && p.pinned) };
  });
  await page.waitForFunction((w) => {
    const rows = [...document.querySelectorAll('#models tbody tr')];
    // in flight and queued too: a request that just ended may still show until the next poll
    return rows.length === w.length && w.every((m, i) => rows[i].dataset.model === m.name &&
      rows[i].dataset.state === m.state &&
      Number(rows[i].querySelector('.inflight').textContent) === m.inflight &&
      Number(rows[i].querySelector('.queued').textContent) === m.queued &&
      rows[i].querySelector('.pinned').textContent === (m.pinned ? 'pinned' : ''));
  }, WAIT, want);
  assert.deepEqual(await tableOf(page), want);
  return ps;
}

test('the status page: live table, load through events, memory bar, playground, screenshot', async (t) => {
  // the pinned embedder is loaded at start; wait for it (an admin load returns once it is)
  const pre = await fetch(BASE + '/api/load', { method: 'POST', body: JSON.stringify({ model: 'embed' }) });
  assert.equal(pre.status, 200);
  const { page, problems } = await watchedPage();
  const resp = await page.goto(BASE + '/', { waitUntil: 'load' });
  assert.equal(resp.status(), 200);
  const csp = resp.headers()['content-security-policy'] || '';
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(resp.headers()['x-content-type-options'], 'nosniff');
  await page.waitForSelector('#conn[data-state=live]', WAIT);
  await page.waitForSelector('#models tbody tr', WAIT);
  // what the page costs (reported, never asserted: no timing thresholds in tests)
  const cost = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource').filter((r) => r.name.includes('/ui/'));
    return { dcl: nav.domContentLoadedEventEnd, now: performance.now(), files: res.length + 1,
      bytes: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0) };
  });
  t.diagnostic(`page: ${cost.files} files, ${cost.bytes} bytes transferred, DOMContentLoaded at ` +
    `${cost.dcl.toFixed(0)} ms, table rendered and live by ${cost.now.toFixed(0)} ms`);

  // 1. the table is /api/ps: embed loaded and pinned, chat unloaded
  const ps0 = await tableMatchesPs(page, BASE);
  assert.equal(ps0.models.find((m) => m.name === 'embed').state, 'loaded');
  assert.ok(!ps0.models.find((m) => m.name === 'chat'), 'chat is not loaded yet');
  const hostUsed = () => page.$eval('#pools .bar', (b) => Number(b.dataset.used));
  const used0 = await hostUsed();
  assert.ok(used0 > 0, 'the pinned model uses memory');

  // 2. "load" on chat: the row goes loading → loaded through the live events (the row is updated
  //    in place; the observer keeps every value its data-state had, however fast they changed)
  await page.evaluate(() => {
    const row = document.querySelector('#models tr[data-model=chat]');
    window.__chatStates = [];
    window.__chatObs = new MutationObserver((recs) => {
      for (const r of recs) window.__chatStates.push(r.oldValue);
    });
    window.__chatObs.observe(row, { attributes: true, attributeFilter: ['data-state'], attributeOldValue: true });
  });
  await page.click('#models tr[data-model=chat] button.load');
  await page.waitForSelector('#events li[data-type=loaded][data-model=chat]', WAIT);
  await page.waitForSelector('#models tr[data-model=chat][data-state=loaded]', WAIT);
  const states = await page.evaluate(() => {
    window.__chatObs.takeRecords().forEach((r) => window.__chatStates.push(r.oldValue));
    return [...window.__chatStates, document.querySelector('#models tr[data-model=chat]').dataset.state];
  });
  const iLoading = states.indexOf('loading');
  assert.ok(iLoading >= 0, 'the row showed loading: ' + states.join(','));
  assert.ok(states.indexOf('loaded', iLoading) > iLoading, 'then loaded: ' + states.join(','));
  assert.ok(await page.$('#events li[data-type=loading][data-model=chat]'), 'the log has the load');

  // 3. the memory bar grew by the chat model, which has a segment of its own
  await page.waitForFunction((u) => Number(document.querySelector('#pools .bar').dataset.used) > u, WAIT, used0);
  assert.ok(await page.$('#pools .bar .seg.model[data-model=chat]'), 'chat has its segment');

  // 4. a chat from the playground, streamed into the assistant's bubble
  await page.select('#chatmodel', 'chat');
  await page.type('#chatinput', 'Hello there, who are you?');
  await page.click('#chatsend');
  await page.waitForSelector('#chatlog .msg.assistant[data-done=true]', WAIT);
  const reply = await page.$eval('#chatlog .msg.assistant', (b) => ({
    text: b.querySelector('.text').textContent, chunks: Number(b.dataset.chunks),
    error: b.classList.contains('error'), tokens: Number(b.dataset.tokens || 0),
  }));
  assert.ok(!reply.error, 'no error: ' + reply.text);
  assert.ok(reply.text.length > 0, 'text arrived');
  assert.ok(reply.chunks > 1, 'in more than one piece (streamed): ' + reply.chunks);
  assert.ok(reply.tokens > 0, 'usage came with the stream');

  // 4b. with an image, when the vision model is there (tests/models.sh makes it)
  if (await page.$('#chatmodel option[value=vlm]')) {
    const dir = mkdtempSync(join(tmpdir(), 'sy-browser-'));
    const png = join(dir, 'tiny.png');
    writeFileSync(png, Buffer.from(PNG, 'base64'));
    await page.click('#chatclear');
    await page.select('#chatmodel', 'vlm');
    await (await page.$('#chatimage')).uploadFile(png);
    await page.waitForSelector('#chatthumbs img', WAIT);
    await page.type('#chatinput', 'What is in this picture?');
    await page.click('#chatsend');
    await page.waitForSelector('#chatlog .msg.assistant[data-done=true]', WAIT);
    const v = await page.$eval('#chatlog .msg.assistant', (b) => ({
      text: b.querySelector('.text').textContent, error: b.classList.contains('error'),
      chunks: Number(b.dataset.chunks) }));
    rmSync(dir, { recursive: true, force: true });
    assert.ok(!v.error && v.chunks > 1, 'the image chat streamed: ' + v.text);
    // back to the plain chat for the screenshot
    await page.click('#chatclear');
    await page.select('#chatmodel', 'chat');
    await page.type('#chatinput', 'Hello again!');
    await page.click('#chatsend');
    await page.waitForSelector('#chatlog .msg.assistant[data-done=true]', WAIT);
  }

  // 5. the sparkline saw the tokens (the page samples /metrics every 2 s and keeps the series)
  await page.waitForFunction(() => parseFloat(document.querySelector('#sv-tps').textContent.split(' (')[0]) > 0, WAIT);

  // 6. still the table of /api/ps, now with both loaded; then the README's screenshot
  await tableMatchesPs(page, BASE);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'status-page.png'), fullPage: true });
  }

  // 7. unload from the page: the row goes back to unloaded, the log says why
  await page.click('#models tr[data-model=chat] button.unload');
  await page.waitForSelector('#events li[data-type=unloaded][data-model=chat]', WAIT);
  await page.waitForSelector('#models tr[data-model=chat][data-state=unloaded]', WAIT);
  assert.match(await page.$eval('#events li[data-type=unloading][data-model=chat]', (l) => l.textContent), /unloaded by request/);

  // 8. speak a text with a voice (the built-in espeak model) and get audio to play
  await page.click('#playground .tabs button[data-tab=speak]');
  await page.select('#ttsmodel', 'speak');
  await page.click('#ttslist');
  await page.waitForFunction(() => /voices$|⚠/.test(document.querySelector('#ttsmsg').textContent), WAIT);
  assert.ok((await page.$$('#ttsvoices option')).length > 1, 'the voices are listed');
  await page.type('#ttsvoice', 'en-us');
  await page.type('#ttsinput', 'Hello from the status page.');
  await page.click('#ttsform button[type=submit]');
  await page.waitForFunction(() => /KiB of audio|⚠/.test(document.querySelector('#ttsmsg').textContent), WAIT);
  assert.match(await page.$eval('#ttsmsg', (m) => m.textContent), /KiB of audio/);
  assert.match(await page.$eval('#ttsaudio', (a) => a.src), /^blob:/);

  // 9. transcribe an uploaded clip (a second of a 440 Hz tone; the random whisper says anything)
  const dir = mkdtempSync(join(tmpdir(), 'sy-browser-'));
  const wav = join(dir, 'tone.wav');
  writeFileSync(wav, toneWav(16000, 1));
  await page.click('#playground .tabs button[data-tab=transcribe]');
  await page.select('#asrmodel', 'whisper');
  await (await page.$('#asrfile')).uploadFile(wav);
  await page.click('#asrform button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#asrout').dataset.done === 'true', WAIT);
  rmSync(dir, { recursive: true, force: true });
  assert.doesNotMatch(await page.$eval('#asrout', (o) => o.textContent), /⚠/);

  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
  await page.close();
});

// A mono 16-bit PCM WAV of secs seconds of a 440 Hz tone at rate Hz.
function toneWav(rate, secs) {
  const n = rate * secs, b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24); b.writeUInt32LE(2 * rate, 28); b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34); b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * 440 * i / rate)), 44 + 2 * i);
  return b;
}

test('with an API key: the page asks for it, keeps it in sessionStorage, and works with it', async () => {
  // before the key is given, the API answers 401 (expected: that is how the page knows to ask)
  const { page, problems } = await watchedPage((url, status) => status === 401 || status === 0);
  const resp = await page.goto(KEYED + '/', { waitUntil: 'load' }); // the page itself needs no key
  assert.equal(resp.status(), 200);
  await page.waitForSelector('#keyform:not([hidden])', WAIT);
  await page.type('#key', KEY);
  await page.click('#keyform button[type=submit]');
  await page.waitForSelector('#conn[data-state=live]', WAIT);
  await tableMatchesPs(page, KEYED, KEY);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('switchyard-key')), KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie');
  assert.deepEqual(problems, []);
  await page.close();
});
