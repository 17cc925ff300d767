#!/usr/bin/env node
// Throughput of @tme/formats MRC I/O against plain fs on the same bytes (page cache warm, best of N runs), and the
// memory peak of readMrc relative to the float32 size (peak RSS of a fresh child process after readMrc, minus the
// peak of one that only loads @tme/formats, divided by the float32 bytes).
// Usage: node test/bench/formats-bench.js [--shape z,y,x] [--runs N]   (default 256,512,512: a 256 MiB float32 file)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const formats = require(path.join(__dirname, '..', '..', 'packages', 'formats', 'dist'));

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const shape = arg('--shape', '256,512,512').split(',').map(Number);
const runs = Number(arg('--runs', '3'));
const n = shape[0] * shape[1] * shape[2];
const bytes = 1024 + 4 * n;
const mb = bytes / 1e6;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-bench-'));
const mrc = path.join(dir, 'bench.mrc');
const raw = path.join(dir, 'raw.bin');

function best(fn) {
  let t = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return t;
}
async function bestAsync(fn) {
  let t = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    await fn();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return t;
}

(async () => {
  try {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.001) * 100;
    const vol = formats.createVolume(data, shape, 10);

    const writeS = best(() => formats.writeMrc(mrc, vol));
    // Baseline write: the same bytes through fs, also fsynced (writeMrc is atomic: temp file, fsync, rename).
    const header = new Uint8Array(1024);
    const payload = new Uint8Array(data.buffer);
    const fsWriteS = best(() => {
      const fd = fs.openSync(raw, 'w');
      fs.writeSync(fd, header);
      for (let off = 0; off < payload.length; off += 1 << 30) fs.writeSync(fd, payload, off, Math.min(1 << 30, payload.length - off));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    });
    fs.rmSync(raw);
    formats.readMrc(mrc, { verifyStatistics: false }); // warm the page cache and the JIT before timing reads
    const readS = best(() => formats.readMrc(mrc));
    const readNoStatsS = best(() => formats.readMrc(mrc, { verifyStatistics: false }));
    // fs.readFile refuses files of 2 GiB or more: no baseline then (null ratios).
    const fsReadS = bytes < 2 ** 31 - 1 ? await bestAsync(() => fs.promises.readFile(mrc)) : NaN;

    // Memory: maxRSS of a child that only loads @tme/formats, minus the same child after readMrc.
    const child = (read) => {
      const code = `const f=require(${JSON.stringify(path.join(__dirname, '..', '..', 'packages', 'formats', 'dist'))});` +
        (read ? `const v=f.readMrc(${JSON.stringify(mrc)});` : '') +
        // VmHWM (peak RSS of this process image); resourceUsage().maxRSS would include the parent's from fork.
        "process.stdout.write(String(Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status','utf8'))[1])*1024))";
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`memory probe failed: ${r.stderr}`);
      return Number(r.stdout);
    };
    const withRead = child(true);
    const without = child(false);
    const peakRatio = (withRead - without) / (4 * n);

    const round = (v) => (Number.isFinite(v) ? Math.round(v * 100) / 100 : null);
    const out = {
      shape, bytes,
      readMBps: round(mb / readS),
      readNoVerifyMBps: round(mb / readNoStatsS),
      writeMBps: round(mb / writeS),
      fsReadMBps: round(mb / fsReadS),
      fsWriteMBps: round(mb / fsWriteS),
      readRatio: round(fsReadS / readS),
      writeRatio: round(fsWriteS / writeS),
      readPeakMemoryRatio: round(peakRatio),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((err) => { process.stderr.write(`${err.stack || err}\n`); process.exitCode = 1; });
