// The files benchmark, Node's side, with fs.promises.
//
//   node files_node.js big FILE       FileHandle.read of 64 KB, one in flight
//   node files_node.js small DIR N    fs.promises.readFile, 64 in flight
//
// Prints the same line as files-eddy.
'use strict';
const fsp = require('fs').promises;

const CHUNK = 64 * 1024;
const INFLIGHT = 64;

async function big(path) {
  const fh = await fsp.open(path, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  let total = 0, sum = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, CHUNK, total);
    if (bytesRead === 0) break;
    total += bytesRead;
    sum += buf[0] + buf[bytesRead - 1];
  }
  await fh.close();
  return { total, sum, n: 0 };
}

async function small(dir, n) {
  let next = 0, total = 0, sum = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const data = await fsp.readFile(`${dir}/f${String(i).padStart(5, '0')}`);
      total += data.length;
      if (data.length > 0) sum += data[0] + data[data.length - 1];
    }
  }
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  return { total, sum, n };
}

(async () => {
  const [mode, path, n] = process.argv.slice(2);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = mode === 'big' ? await big(path) : await small(path, Number(n));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  const rate = mode === 'big' ? r.total / 1048576 / s : r.n / s;
  console.log(`${rate.toFixed(1)} ${s.toFixed(4)} ${r.total} ${r.sum} pool ${cpu.toFixed(4)}`);
})().catch((e) => { console.error(e); process.exit(1); });
