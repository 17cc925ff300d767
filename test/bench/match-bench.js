#!/usr/bin/env node
// The matching loop per score, target size, template size and device, against the FFT floor measured in the same
// run on the same device and padded size: time per rotation ÷ one R2C+C2R pair (and ÷ one C2R), rotations per
// second, ns per rotation·voxel (the unit peers quote), set-up time, device memory (the native estimate) and the
// process's peak host memory. Then scaling: time against rotation count and against target volume.
// Usage: node test/bench/match-bench.js [--large] [--quick] [--case LABEL]
// --case LABEL: only the cases of that label (e.g. flc, or 'flc-sphere, Fourier rotation'), no scaling: one score's
// ratios without the whole run.
'use strict';
const os = require('node:os');

// (No VK_ICD_FILENAMES default: on a GPU node it would hide the GPU; the loader finds lavapipe by itself.)
// FFTW plans measured in this run, as the floor they are compared with: a wisdom file measured on a busy machine was
// seen to keep a 256³ single-thread C2R 2.4× slower than a fresh plan.
process.env.TME_FFTW_WISDOM ??= 'off';
const native = require('@tme/native');
const { uniformNoise: noise } = require('./inputs.js');

const large = process.argv.includes('--large');
const quick = process.argv.includes('--quick');
const caseArg = process.argv.indexOf('--case');
const onlyCase = caseArg >= 0 ? process.argv[caseArg + 1] : undefined;
const round = (v, d = 3) => Math.round(v * 10 ** d) / 10 ** d;
const log = (line) => process.stderr.write(`match-bench: ${line}\n`);

function sphere(n) {
  const m = new Float32Array(n ** 3);
  const c = n >> 1;
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    m[(z * n + y) * n + x] = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= (c - 1) ** 2 ? 1 : 0;
  }
  return m;
}

/** Rotations spread over SO(3) (golden-ratio axes and angles): every case sees the same kind of set. */
function rotations(count) {
  const out = new Float64Array(9 * count);
  for (let r = 0; r < count; r++) {
    const zc = 1 - (2 * (r + 0.5)) / count;
    const phi = r * Math.PI * (3 - Math.sqrt(5));
    const s0 = Math.sqrt(1 - zc * zc);
    const [x, y, z] = [s0 * Math.cos(phi), s0 * Math.sin(phi), zc];
    const t = 0.3 + r * 2.399;
    const c = Math.cos(t), s = Math.sin(t), k = 1 - c;
    out.set([c + x * x * k, x * y * k - z * s, x * z * k + y * s, y * x * k + z * s, c + y * y * k, y * z * k - x * s,
      z * x * k - y * s, z * y * k + x * s, c + z * z * k], 9 * r);
  }
  return out;
}

/** The padded tile the engine would use for an untiled run: target + template − 1, to a fast size. */
function paddedShape(target, box) {
  return native.nextFastShape(target.map((n, i) => n + box - 1));
}

/** A band limit at half Nyquist (0.25 cycles/voxel) times a ±60° missing wedge (tilt axis y), on the template's grid:
 *  the template filter a tomogram search has. */
function lowPass(shape) {
  const [nz, ny, nx] = shape;
  const hx = Math.floor(nx / 2) + 1;
  const f = new Float32Array(nz * ny * hx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < hx; x++) {
    const fz = (z <= nz / 2 ? z : z - nz) / nz;
    const fy = (y <= ny / 2 ? y : y - ny) / ny;
    const inWedge = Math.abs(fz) <= Math.tan(Math.PI / 3) * (x / nx) + 1e-9;
    f[(z * ny + y) * hx + x] = Math.hypot(fz, fy, x / nx) <= 0.25 && (inWedge || z + y + x === 0) ? 1 : 0;
  }
  return f;
}

async function timeCase({ device, threads, target, box, score, rotationCount, mode = 'real', lowPassed = false, precision = 'single', keepMaps = false, setupOn }) {
  const shape = paddedShape(target, box);
  const voxels = shape[0] * shape[1] * shape[2];
  const job = {
    device, threads, target: noise(voxels, 3), targetShape: shape, template: noise(box ** 3, 7), templateShape: [box, box, box],
    mask: sphere(box), rotations: rotations(rotationCount), score, rotationMode: mode,
    ...(precision === 'half' ? { spectrumPrecision: 'half' } : {}),
    ...(setupOn ? { setupOn } : {}), // Vulkan: the tile's set-up on the device (default) or the host (comparisons)
    targetMask: score === 'mcc' ? new Float32Array(voxels).fill(1) : undefined,
    // The grid the engine filters each rotated template on (filterGridFor): 1.5× the box at a fast size.
    ...(lowPassed ? (() => { const g = native.nextFastShape([Math.ceil(1.5 * box), Math.ceil(1.5 * box), Math.ceil(1.5 * box)]); return { filter: lowPass(g), filterShape: g }; })() : {}),
    // As the engine asks for an untiled run: the maps of the target only, which starts box // 2 into the tile.
    outputRegion: { start: [box >> 1, box >> 1, box >> 1], shape: target },
  };
  const memory = native.estimateMatchMemory({ device, targetShape: shape, templateShape: [box, box, box], score, rotationMode: mode, threads, spectrumPrecision: precision });
  const t0 = process.hrtime.bigint();
  await native.runMatch({ ...job, rotationEnd: 1 }); // plans, pipelines, the driver's JIT: timed as set-up
  const setupMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const t1 = process.hrtime.bigint();
  const result = await native.runMatch(job);
  const wallMs = Number(process.hrtime.bigint() - t1) / 1e6;
  return { shape, voxels, setupMs, wallMs, timings: result.timings, memory, ...(keepMaps ? { scores: result.scores, indices: result.indices } : {}) };
}

/** The benchmark's paths on this machine: the CPU, and the first GPU, else lavapipe (small sizes only). `only`: one
 *  Vulkan device by index, alone (the GPU check). */
function benchPaths(only) {
  const devices = native.listDevices();
  if (only !== undefined) {
    const d = devices.find((x) => x.index === only);
    if (!d) throw new Error(`no device ${only}`);
    return [{ name: d.api === 'vulkan' ? `vulkan (${d.name})` : 'cpu (FFTW3f)', device: d.index, threads: d.api === 'vulkan' ? undefined : os.cpus().length, gpu: d.type !== 'cpu' }];
  }
  const lavapipe = devices.find((d) => d.api === 'vulkan' && d.type === 'cpu');
  const gpu = devices.find((d) => d.api === 'vulkan' && d.type !== 'cpu');
  const paths = [{ name: 'cpu (FFTW3f)', device: 'cpu', threads: os.cpus().length }];
  if (gpu) paths.push({ name: `vulkan (${gpu.name})`, device: gpu.index, gpu: true });
  else if (lavapipe) paths.push({ name: 'vulkan (lavapipe)', device: lavapipe.index, smallOnly: true });
  return paths;
}

/** Every case on `paths`; `targets` default to 128³ and 256³, with a GPU a 512×512×256 target on it, and with --large
 *  a lamella-sized 512×512×200 (on the CPU flc-sphere alone, the default score: each case takes minutes there). */
async function benchMatch({ paths, targets, boxes = [32, 64], quick = false, scaling = true, deadline = Infinity, onlyCase }) {
  const devices = native.listDevices();
  const gpu = paths.some((p) => p.gpu);
  targets ??= [[128, 128, 128], [256, 256, 256], ...(gpu ? [[256, 512, 512]] : []), ...(large ? [[200, 512, 512]] : [])];
  const scores = ['cc', 'flc-sphere', 'flc', 'mcc'];
  const out = { machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, devices: devices.map((d) => d.name) }, cases: [], scaling: {} };
  const floors = new Map();
  for (const p of paths) {
    for (const target of targets) {
      if (p.smallOnly && target[0] > 128) continue;
      if (!p.gpu && target[0] === 256 && target[1] === 512) continue;
      for (const box of boxes) {
        const shape = paddedShape(target, box);
        const key = `${p.name}|${shape.join('x')}`;
        if (!floors.has(key)) {
          native.benchFftPair(p.device, shape, 1, p.threads ?? 1); // plan + warm-up
          floors.set(key, native.benchFftPair(p.device, shape, shape[0] >= 256 ? 3 : 7, p.threads ?? 1));
        }
        const floor = floors.get(key);
        // The four scores as they are, then flc-sphere (the default) with a template filter and with Fourier-space rotation.
        const variants = [...scores.map((score) => ({ score, label: score })),
          { score: 'flc-sphere', label: 'flc-sphere, wedge + low-pass ½ Nyquist', lowPassed: true },
          { score: 'flc-sphere', label: 'flc-sphere, Fourier rotation', mode: 'fourier' }].filter((v) => onlyCase === undefined || v.label === onlyCase);
        const lamella = target[0] === 200 && target[1] === 512;
        for (const { score, label, lowPassed, mode } of variants) {
          if (lamella && !p.gpu && label !== 'flc-sphere') continue;
          if (Date.now() > deadline) { log(`deadline reached: ${p.name} ${target.join('x')} tmpl ${box} ${label} and later cases skipped`); out.truncated = true; continue; }
          const big = shape[0] * shape[1] * shape[2] > 5e6;
          // Enough rotations that the first ones (which update the maps nearly everywhere) do not dominate.
          const rotationCount = quick ? 2 : p.smallOnly ? 3 : big ? (p.gpu ? 64 : 16) : (p.gpu ? 256 : 24);
          const r = await timeCase({ device: p.device, threads: p.threads, target, box, score, rotationCount, lowPassed, mode });
          const perRotationMs = r.timings.perRotationMs;
          const row = {
            path: p.name, target: target.join('x'), template: box, padded: r.shape.join('x'), score: label, rotations: rotationCount,
            perRotationMs: round(perRotationMs), rotationsPerSecond: round(1000 / perRotationMs, 1),
            pairMs: round(floor.pairMs), c2rMs: round(floor.c2rMs),
            overPair: round(perRotationMs / floor.pairMs, 2), overC2r: round(perRotationMs / floor.c2rMs, 2),
            nsPerRotationVoxel: round((perRotationMs * 1e6) / (target[0] * target[1] * target[2]), 3),
            setupMs: round(r.setupMs, 0), deviceBytes: r.memory.deviceBytes, hostBytes: r.memory.hostBytes,
            peakHostBytes: process.resourceUsage().maxRSS * 1024,
          };
          out.cases.push(row);
          log(`${p.name} ${row.target} tmpl ${box} ${label}: ${row.perRotationMs} ms/rotation = ${row.overPair} pairs (${row.overC2r} C2R), ${row.nsPerRotationVoxel} ns/rot·vox`);
        }
      }
    }
  }
  if (onlyCase !== undefined && out.cases.length === 0) throw new Error(`no case is labelled '${onlyCase}'`);
  if (!scaling) return out;
  // Scaling on the default path: linear in rotations, and in target volume (per voxel constant up to FFT log N).
  const p = paths.find((x) => x.gpu) ?? paths[0];
  out.scaling.path = p.name;
  out.scaling.rotations = [];
  for (const n of quick ? [2, 4] : [8, 16, 32]) {
    const r = await timeCase({ device: p.device, threads: p.threads, target: [96, 96, 96], box: 32, score: 'flc-sphere', rotationCount: n });
    out.scaling.rotations.push({ rotations: n, loopMs: round(r.timings.loopMs), perRotationMs: round(r.timings.perRotationMs) });
    log(`scaling rotations ${n}: loop ${round(r.timings.loopMs)} ms`);
  }
  out.scaling.volume = [];
  for (const n of quick ? [64, 96] : [64, 96, 128, 192]) {
    const r = await timeCase({ device: p.device, threads: p.threads, target: [n, n, n], box: 32, score: 'flc-sphere', rotationCount: quick ? 2 : 8 });
    out.scaling.volume.push({ target: n, padded: r.shape.join('x'), perRotationMs: round(r.timings.perRotationMs), nsPerPaddedVoxel: round((r.timings.perRotationMs * 1e6) / r.voxels, 3) });
    log(`scaling volume ${n}^3: ${round(r.timings.perRotationMs)} ms/rotation`);
  }
  return out;
}

module.exports = { benchMatch, benchPaths, timeCase, paddedShape };

if (require.main === module) {
  benchMatch({ paths: benchPaths(), quick, ...(onlyCase !== undefined ? { onlyCase, scaling: false } : {}) })
    .then((out) => process.stdout.write(`${JSON.stringify(out)}\n`))
    .catch((err) => {
      process.stderr.write(`match-bench: ${err.stack || err}\n`);
      process.exit(1);
    });
}
