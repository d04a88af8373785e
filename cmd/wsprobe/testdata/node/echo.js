// A WebSocket echo server built with the ws package and its defaults
// (no Origin check, maxPayload 100 MiB, no permessage-deflate), for
// wsprobe's tests. It listens on a free loopback port and prints
// "listening PORT" on standard output.
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => {
  process.stdout.write('listening ' + wss.address().port + '\n');
});
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.on('SIGTERM', () => process.exit(0));
