// The Node peer of eddy-thumb for perf/images: the seed's way, the `gm`
// npm module, which starts a `gm` process for every image.
//
//   node node_gm.js --root DIR --port N
//
//   GET /thumb?src=NAME&w=W&h=H   cover W x H, JPEG (the operation eddy-thumb
//                                 does for fit=cover), from DIR/NAME
//   GET /hello                    hello world
//
// The gm command is given the same fast path eddy uses: a JPEG size hint
// (-size, so libjpeg decodes at a fraction) and -thumbnail; what differs is
// a process per image against a job on a pool thread.  The gm module comes
// from perf/peers/node_modules (run.sh installs it from the npm registry).
'use strict';
const http = require('http');
const path = require('path');
const gm = require(path.join(__dirname, '..', 'peers', 'node_modules', 'gm'));

let port = 0;
let root = '.';
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--port') port = Number(process.argv[++i]);
  else if (process.argv[i] === '--root') root = process.argv[++i];
  else {
    console.error('usage: node node_gm.js --root DIR --port N');
    process.exit(2);
  }
}

function fail(res, code, msg) {
  res.writeHead(code, { 'Content-Type': 'text/plain' });
  res.end(msg + '\n');
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/hello') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '12' });
    res.end('hello world\n');
    return;
  }
  if (url.pathname !== '/thumb') return fail(res, 404, 'not found');
  const src = url.searchParams.get('src') || '';
  const w = Number(url.searchParams.get('w'));
  const h = Number(url.searchParams.get('h'));
  if (!src || src.includes('..') || src.startsWith('/') || !(w > 0 && h > 0))
    return fail(res, 400, 'bad parameters');
  gm(path.join(root, src))
    .in('-size', `${w * 2}x${h * 2}`)
    .thumbnail(w, h, '^')
    .gravity('Center')
    .extent(w, h)
    .noProfile()
    .toBuffer('JPEG', (err, buf) => {
      if (err) return fail(res, 422, String(err.message || err));
      res.writeHead(200, { 'Content-Type': 'image/jpeg',
                           'Content-Length': String(buf.length) });
      res.end(buf);
    });
}).listen(port, '127.0.0.1', () => {
  console.log(`node_gm listening on http://127.0.0.1:${port}, root ${root}`);
});
