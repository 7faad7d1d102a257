// websocket.test.mjs — WebSockets through /upstream/<model>/… (docs/API.md "WebSockets"), with the
// `ws` package as the client, against an external engine that is a WebSocket echo server
// (ws_echo_engine.mjs, started by the daemon as engine: external; tests/run.sh names it in
// SWITCHYARD_WS_ECHO_MODEL). Covers:
//  - the upgrade relayed: the engine sees the path and query, the subprotocol comes back, our API
//    key never reaches it; text and binary messages echoed both ways, a large one whole;
//  - the engine is busy while the socket is open (a request in flight in /api/ps) and free after
//    a clean close; /metrics counts the session;
//  - the engine's own close code reaches the client; the engine exiting mid-session closes the
//    client's socket (1001), never leaves it hanging;
//  - upgrade errors: a plain GET of a WebSocket-only path is relayed as HTTP; a bad
//    Sec-WebSocket-Version is 426 with Sec-WebSocket-Version: 13; an unknown model is 404.
// Environment: SWITCHYARD_URL (…/v1), SWITCHYARD_WS_ECHO_MODEL; skipped without them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import net from 'node:net';

import WebSocket from 'ws';

const URL_ = process.env.SWITCHYARD_URL;
const ECHO = process.env.SWITCHYARD_WS_ECHO_MODEL;
const root = URL_ ? URL_.replace(/\/v1$/, '') : '';
const wsRoot = root.replace(/^http/, 'ws');
const skip = !URL_ || !ECHO ? 'SWITCHYARD_URL / SWITCHYARD_WS_ECHO_MODEL not set' : false;

function open(path, protocols, opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsRoot}${path}`, protocols, opts);
    const msgs = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = { data, isBinary };
      if (waiters.length) waiters.shift()(m);
      else msgs.push(m);
    });
    ws.next = () => new Promise((res) => (msgs.length ? res(msgs.shift()) : waiters.push(res)));
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => { req.destroy(); res.destroy(); ws.terminate(); reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })); });
    });
    ws.on('error', reject);
  });
}

async function inflight(model) {
  const ps = await (await fetch(`${root}/api/ps`)).json();
  const m = (ps.models ?? []).find((x) => x.name === model || x.model === model);
  return m ? m.inflight : 0;
}

async function metric(name, labels) {
  const text = await (await fetch(`${root}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('WebSockets through /upstream', { skip }, () => {
  test('messages relayed both ways; busy while open; clean close', async () => {
    const before = await metric('switchyard_ws_sessions_total', 'route="upstream"');
    const ws = await open(`/upstream/${ECHO}/ws?clientId=abc&x=1`, ['comfy.v1'], { headers: { Authorization: 'Bearer secret' } });
    assert.equal(ws.protocol, 'comfy.v1');
    const hello = JSON.parse((await ws.next()).data.toString());
    assert.equal(hello.hello, '/ws?clientId=abc&x=1');
    assert.equal(hello.protocol, 'comfy.v1');
    assert.equal(hello.auth, null, 'our Authorization is not relayed');
    ws.send('hello engine');
    let m = await ws.next();
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString(), 'hello engine');
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    ws.send(bin);
    m = await ws.next();
    assert.equal(m.isBinary, true);
    assert.deepEqual(Buffer.from(m.data), bin);
    const big = 'x'.repeat(300 * 1024); // several frames' worth on the way back
    ws.send(big);
    m = await ws.next();
    assert.equal(m.data.toString().length, big.length);
    // busy: an open socket holds the engine (a request in flight: never evicted)
    assert.equal(await inflight(ECHO), 1);
    assert.equal(await metric('switchyard_ws_sessions_open', 'route="upstream"'), 1);
    assert.equal(await metric('switchyard_ws_sessions_total', 'route="upstream"'), before + 1);
    ws.close(1000, 'done');
    const c = await ws.closed;
    assert.equal(c.code, 1000);
    // freed once the close handshake is over (poll: the daemon's thread may still be leaving)
    let n = 1;
    for (let i = 0; i < 100 && n > 0; i++) {
      n = await inflight(ECHO);
      if (n > 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(n, 0);
  });

  test("the engine's close code reaches the client", async () => {
    const ws = await open(`/upstream/${ECHO}/ws`);
    await ws.next();
    ws.send('close:4001');
    const c = await ws.closed;
    assert.equal(c.code, 4001);
  });

  test('the engine exiting closes the session (1001)', async () => {
    const ws = await open(`/upstream/${ECHO}/ws`);
    await ws.next();
    ws.send('exit');
    const c = await ws.closed;
    assert.equal(c.code, 1001);
  });

  test('upgrade errors', async () => {
    await assert.rejects(open(`/upstream/nobody/ws`), (e) => e.status === 404 && /model_not_found/.test(e.body));
    // a bad version: 426 naming the one we speak (raw request: ws refuses to send one)
    const port = Number(new URL(root).port);
    const reply = await new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`GET /upstream/${ECHO}/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n');
      });
      let b = '';
      s.on('data', (d) => {
        b += d;
        if (b.includes('\r\n\r\n') && b.includes('}')) {
          s.destroy();
          resolve(b);
        }
      });
      s.on('end', () => resolve(b));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 426/);
    assert.match(reply, /Sec-WebSocket-Version: 13/i);
    assert.match(reply, /upgrade_required/);
  });
});
