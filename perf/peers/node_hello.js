// Node's peer of eddy-hello for the HTTP benchmarks: http.createServer, one
// process, the same 200 "hello world" text/plain answer.
//
//   node node_hello.js --port N [--host 127.0.0.1]
//
// Content-Type and Content-Length are given to writeHead, Node's fastest
// path (no chunked encoding, one write per response).  keepAliveTimeout is 0
// so that idle connections stay open as they do in the other servers (Node
// would close them after 5 s), which also drops the Keep-Alive header; Node
// still adds "Connection: keep-alive" and a Date header.
'use strict';
const http = require('http');

let port = 0;
let host = '127.0.0.1';
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--port') port = Number(process.argv[++i]);
  else if (process.argv[i] === '--host') host = process.argv[++i];
  else {
    console.error('usage: node node_hello.js --port N [--host 127.0.0.1]');
    process.exit(2);
  }
}
if (!(port > 0 && port < 65536)) {
  console.error('node_hello: --port N is required');
  process.exit(2);
}

const body = 'hello world';
const headers = { 'Content-Type': 'text/plain', 'Content-Length': '11' };
const server = http.createServer((req, res) => {
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 0;
server.listen(port, host);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
