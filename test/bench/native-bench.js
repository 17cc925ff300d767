#!/usr/bin/env node
// @tme/native: FFT pairs per path and size, and the per-rotation cost of the matching loop against that FFT
// floor (flc-sphere, 32³ template, real- and Fourier-space rotation), measured in the same run so the ratios hold
// on any machine. Prints progress on stderr and one JSON object on the last stdout line.
// Usage: node test/bench/native-bench.js [--rotations N] [--sizes 64,128,256] [--vulkan-sizes 64,128]
'use strict';
const os = require('node:os');
const path = require('node:path');

// FFTW plans measured in this run, like the FFT pairs they are compared with (see match-bench.js).
process.env.TME_FFTW_WISDOM ??= 'off';
const native = require(path.join(__dirname, '..', '..', 'native', 'dist', 'index.js'));
const { uniformNoise } = require('./inputs.js');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const rotationCount = Number(arg('--rotations', '20'));
const largeRotationCount = Number(arg('--rotations-256', '8'));
const cpuSizes = arg('--sizes', '64,128,256').split(',').map(Number);
const vulkanSizes = arg('--vulkan-sizes', '64,128').split(',').filter(Boolean).map(Number);
const templateSize = 32;
// Minimum of many pairs: on a shared machine the minimum is what repeats.
const repeatsFor = (size) => (size >= 256 ? 5 : 15);

function log(line) {
  process.stderr.write(`native-bench: ${line}\n`);
}

// Deterministic inputs: a smooth-ish target and template, spherical mask, rotations about a tilted axis.
const volume = uniformNoise;
function rotations(count) {
  const out = new Float64Array(9 * count);
  const axis = [1 / Math.sqrt(3), 1 / Math.sqrt(3), 1 / Math.sqrt(3)];
  for (let r = 0; r < count; r++) {
    const t = (r * 2 * Math.PI) / count + 0.1;
    const c = Math.cos(t);
    const s = Math.sin(t);
    const [x, y, z] = axis;
    out.set([c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s,
      y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s,
      z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)], 9 * r);
  }
  return out;
}
const box = [templateSize, templateSize, templateSize];
const boxVoxels = templateSize ** 3;
const template = volume(boxVoxels, 7);
const mask = new Float32Array(boxVoxels);
for (let i = 0, c = templateSize / 2; i < boxVoxels; i++) {
  const z = Math.floor(i / (templateSize * templateSize)) - c;
  const y = (Math.floor(i / templateSize) % templateSize) - c;
  const x = (i % templateSize) - c;
  mask[i] = z * z + y * y + x * x <= (c - 2) ** 2 ? 1 : 0;
}
const rots = rotations(rotationCount);

const round = (v) => Math.round(v * 1000) / 1000;

async function matchCase(device, size, mode, threads) {
  const shape = [size, size, size];
  const job = {
    device, threads, target: volume(size ** 3, 3), targetShape: shape, template, templateShape: box, mask,
    rotations: rots, score: 'flc-sphere', rotationMode: mode,
  };
  await native.runMatch({ ...job, rotationEnd: 1 }); // plans, pipelines and the driver's JIT, not timed
  const result = await native.runMatch({ ...job, rotationEnd: size >= 256 ? Math.min(largeRotationCount, rotationCount) : rotationCount });
  return result.timings;
}

async function main() {
  const devices = native.listDevices();
  const lavapipe = devices.find((d) => d.api === 'vulkan' && d.type === 'cpu');
  const out = {
    loadAverageAtStart: os.loadavg().map(round),
    cpu: os.cpus()[0] && os.cpus()[0].model,
    cores: os.cpus().length,
    devices: devices.map((d) => `${d.id}: ${d.name} (${d.type})`),
    templateSize,
    rotations: rotationCount,
    fft: {},
    match: [],
    lavapipeOverFftw: {},
  };
  const paths = [{ name: 'cpu', device: 'cpu', sizes: cpuSizes }];
  if (lavapipe) paths.push({ name: 'vulkan-lavapipe', device: lavapipe.index, sizes: vulkanSizes });
  for (const p of paths) {
    out.fft[p.name] = {};
    for (const size of p.sizes) {
      const shape = [size, size, size];
      const threadCounts = p.device === 'cpu' ? [1, Math.min(2, os.cpus().length)] : [1];
      for (const threads of [...new Set(threadCounts)]) {
        const key = p.device === 'cpu' ? `${size}^3/${threads}t` : `${size}^3`;
        const planned = native.benchFftPair(p.device, shape, 1, threads); // plan (timed separately) + warm-up
        const t = native.benchFftPair(p.device, shape, repeatsFor(size), threads);
        out.fft[p.name][key] = { planMs: round(planned.planMs), pairMs: round(t.pairMs), pairMedianMs: round(t.pairMedianMs), r2cMs: round(t.r2cMs), c2rMs: round(t.c2rMs) };
        log(`${p.name} ${key} FFT pair ${t.pairMs.toFixed(2)} ms (median ${t.pairMedianMs.toFixed(2)}), C2R ${t.c2rMs.toFixed(2)} ms`);
        for (const mode of ['real', 'fourier']) {
          const timings = await matchCase(p.device, size, mode, threads);
          // Rotations run one per worker thread. Two views: throughput (loop time / rotations with `threads` workers,
          // ÷ the `threads`-thread FFT pair: what a job costs) and one rotation on one worker (its minimum, ÷ the
          // single-thread pair: what the loop costs free of the scheduler, which on a shared machine is what repeats).
          const single = out.fft[p.name][p.device === 'cpu' ? `${size}^3/1t` : `${size}^3`];
          const row = {
            path: p.name, size, mode, threads,
            perRotationMs: round(timings.perRotationMs), rotationMinMs: round(timings.rotationMinMs),
            rotationMedianMs: round(timings.rotationMedianMs), setupMs: round(timings.setupMs),
            pairMs: round(t.pairMs), c2rMs: round(t.c2rMs),
            throughputOverPair: round(timings.perRotationMs / t.pairMs),
            throughputOverC2r: round(timings.perRotationMs / t.c2rMs),
            singleOverPair: round(timings.rotationMinMs / single.pairMs),
            singleOverC2r: round(timings.rotationMinMs / single.c2rMs),
          };
          out.match.push(row);
          log(`${p.name} ${size}^3 ${mode} threads=${threads}: ${row.perRotationMs} ms per rotation = ${row.throughputOverPair} pairs = ${row.throughputOverC2r} C2R; one rotation on one worker ${row.rotationMinMs} ms = ${row.singleOverPair} single-thread pairs`);
        }
      }
    }
  }
  if (lavapipe) {
    for (const size of vulkanSizes) {
      const v = out.fft['vulkan-lavapipe'][`${size}^3`];
      const c = out.fft.cpu[`${size}^3/1t`];
      if (v && c) out.lavapipeOverFftw[`${size}^3`] = round(v.pairMs / c.pairMs);
    }
  }
  out.loadAverageAtEnd = os.loadavg().map(round);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`native-bench: ${err.stack || err}\n`);
  process.exit(1);
});
