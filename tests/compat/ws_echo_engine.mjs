// ws_echo_engine.mjs — a tiny external engine for the WebSocket proxy test (websocket.test.mjs):
// an HTTP server on 127.0.0.1:PORT (argv[2]) with GET /health, and a WebSocket server (the `ws`
// package) on every other path that first sends {"hello": path+query, "protocol": ...} and then
// echoes every message back as it came (text as text, binary as binary). The text "close:<code>"
// makes it close with that code; "exit" makes the process exit at once (the engine going away).
// Third-party harness code in the protocol's own ecosystem: not part of the daemon.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  res.writeHead(404);
  res.end();
});
const wss = new WebSocketServer({ server, handleProtocols: (protos) => [...protos][0] ?? false });
wss.on('connection', (ws, req) => {
  ws.send(JSON.stringify({ hello: req.url, protocol: ws.protocol, auth: req.headers.authorization ?? null }));
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const s = data.toString();
      if (s === 'exit') process.exit(0);
      const m = /^close:(\d+)$/.exec(s);
      if (m) {
        ws.close(Number(m[1]), 'asked to');
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
});
server.listen(port, '127.0.0.1');
