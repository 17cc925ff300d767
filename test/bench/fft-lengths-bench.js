#!/usr/bin/env node
// FFTW's cost per element of each 2,3,5,7-smooth length, on this machine: what the tile planner's cost model
// (packages/engine/src/fft-cost.ts) is built from. Each length n is timed as an R2C + C2R pair (one thread, FFTW's
// measured plans) of a pencil along z ([n, 64, 64]: complex transforms, as along y) and along x ([64, 64, n], n even:
// the real transform). The pencil's own 64-long axes cost what a 64³ pair costs per element per axis (a third of
// it), so the length's share is t(pencil)/voxels − ⅔ t(64³)/64³. Every length is timed in each of `--passes` passes
// (default 3) and keeps its least time: on a shared machine a burst of load hits one pass, not all.
// Prints one JSON object; `--write FILE` also writes it there, `--module FILE` the engine's table (fft-cost-table.ts).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { machine } = require('./machine.js');

const root = path.resolve(__dirname, '..', '..');
// Plans go to a wisdom file of their own, not the user's.
process.env.TME_FFTW_WISDOM ??= path.join(require('node:os').tmpdir(), `tme-fft-lengths-wisdom-${process.pid}`);
const native = require(path.join(root, 'native', 'dist', 'index.js'));

const P = 64;
const MAX = Number(process.env.TME_FFT_LENGTHS_MAX ?? 640);
const smooth = (n) => { for (const p of [2, 3, 5, 7]) while (n % p === 0) n /= p; return n === 1; };
const lengths = [];
for (let n = 16; n <= MAX; n++) if (smooth(n)) lengths.push(n);

function perElementNs(shape) {
  const r = native.benchFftPair('cpu', shape, 3, 1);
  return (r.pairMs * 1e6) / (shape[0] * shape[1] * shape[2]);
}

const arg = (name, fallback) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : fallback; };
const passes = Number(arg('--passes', '3'));
let t0 = Infinity;
const zt = {};
const xt = {};
for (let pass = 0; pass < passes; pass++) {
  t0 = Math.min(t0, perElementNs([P, P, P]));
  for (const n of lengths) {
    zt[n] = Math.min(zt[n] ?? Infinity, perElementNs([n, P, P]));
    if (n % 2 === 0) xt[n] = Math.min(xt[n] ?? Infinity, perElementNs([P, P, n]));
  }
  process.stderr.write(`fft-lengths: pass ${pass + 1} of ${passes} done\n`);
}
// Never below a tenth of a 64-long axis's share: a length cannot be free.
const share = (t) => +Math.max(t - (2 / 3) * t0, t0 / 30).toFixed(3);
const z = Object.fromEntries(Object.entries(zt).map(([n, t]) => [n, share(t)]));
const x = Object.fromEntries(Object.entries(xt).map(([n, t]) => [n, share(t)]));
const m = machine();
const out = { machine: m, date: new Date().toISOString(), pencil: P, passes, cubeNsPerElement: +t0.toFixed(3), z, x };
const file = arg('--write');
if (file) fs.writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
const module_ = arg('--module');
if (module_) {
  const row = (t) => Object.entries(t).map(([n, v]) => `${n}: ${v}`).join(', ');
  fs.writeFileSync(module_, `// Written by test/bench/fft-lengths-bench.js on ${m.cpu} (${m.cores} cores), ${out.date.slice(0, 10)}, load average
// ${m.loadAverage.map((l) => l.toFixed(1)).join(' / ')}: FFTW's ns per element of an R2C + C2R pair along an axis of each length (best of
// ${passes} passes). Do not edit; measure again with \`node test/bench/fft-lengths-bench.js --module FILE\`.
export const FFT_COST_MACHINE = ${JSON.stringify(`${m.cpu}, ${m.cores} cores`)};
/** Along z or y (complex transforms), by length. */
export const FFT_COST_COMPLEX: Readonly<Record<number, number>> = { ${row(z)} };
/** Along x (the real transform; even lengths), by length. */
export const FFT_COST_REAL: Readonly<Record<number, number>> = { ${row(x)} };
`);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
