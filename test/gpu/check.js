#!/usr/bin/env node
// The GPU check, bundled into the portable build as lib/gpu-check.js and run by test/gpu/check.sh on a machine that
// has nothing but the unpacked bundle. In one go, on one Vulkan device:
//   1. agreement with the CPU path (FFTW3f) for every score and every template filter, real- and Fourier-space
//      rotation, on small synthetic cases: best-score maps within 1e-4 of the best score; where the best rotation
//      differs, the two rotations must score alike when both are scored directly at that voxel (a tie);
//   2. `tme example --device D` through the bundle's own launcher: recall, precision, angular error;
//   3. the GPU loop's choices, timed on the device with the wedge filter every search has: real- vs Fourier-space
//      rotation and float32 vs float16 target spectra (--rotation-mode, --spectrum-precision), their maps compared,
//      and a line saying which is faster there (the defaults stay real and single until a GPU has measured them);
//   4. the match benchmark on the device (128³, 256³, a 512×512×256 tile; --quick: small and few), as the CPU
//      benchmark reports it (÷ one C2R of the padded tile on the same device, ns per rotation·voxel);
// and writes <out>/<machine slug>.json in the layout of test/bench/results/. Exit status 1 when a check fails.
// Usage: node gpu-check.js --device <index|gpu> [--quick] [--out DIR] [--minutes M]
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createOrientationScorer, listDevices, matchTemplate } = require('@tme/engine');
const { createVolume } = require('@tme/formats');
const { buildTargetFilter, buildTemplateFilter } = require('@tme/template');
const { benchMatch, benchPaths, timeCase } = require('../bench/match-bench.js');
const { machine } = require('../bench/machine.js');

const started = Date.now();
const say = (line) => process.stdout.write(`gpu-check: ${line}\n`);

function parseArgs(argv) {
  const a = { device: 'gpu', quick: false, out: process.cwd(), minutes: 7.5 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--device' && v !== undefined) { a.device = v; i++; }
    else if (k === '--out' && v !== undefined) { a.out = path.resolve(v); i++; }
    else if (k === '--minutes' && v !== undefined && Number(v) > 0) { a.minutes = Number(v); i++; }
    else if (k === '--quick') a.quick = true;
    else throw new Error(`Expected --device <index|gpu>, --out DIR, --minutes M or --quick but received ${k}`);
  }
  return a;
}

/** The Vulkan device to check: an index, or the first GPU for 'gpu'. */
function chooseDevice(spec, devices) {
  const vulkan = devices.filter((d) => d.index !== 'cpu');
  const d = spec === 'gpu' ? vulkan.find((x) => x.kind === 'gpu') : vulkan.find((x) => String(x.index) === spec);
  if (!d) throw new Error(`no Vulkan device ${spec} (devices: ${devices.map((x) => `${x.index} ${x.name}`).join('; ')})`);
  return d;
}

// ---- 1. agreement ------------------------------------------------------------------------------------------------

const { SHAPE, makeCase, filterSet } = require('./cases.js');

async function agreementCase(made, device, { score, filterName, options, mode }) {
  const targetMask = score === 'mcc' ? createVolume(new Float32Array(made.target.data.length).fill(1), SHAPE, made.target.voxelSize) : undefined;
  const job = {
    target: made.target, template: made.template, rotations: made.rotations, score, rotationMode: mode, targetMask,
    ...(score === 'flc' ? { templateMask: made.templateMask } : {}),
    ...(Object.keys(options).length === 0 ? {} : { filter: buildTemplateFilter(options), targetFilter: buildTargetFilter({ ...options, applyWedgeToTarget: true }) }),
  };
  const cpu = await matchTemplate({ ...job, device: 'cpu', threads: os.cpus().length });
  const dev = await matchTemplate({ ...job, device: device.index });
  let best = 0;
  for (const v of cpu.scores.data) best = Math.max(best, Math.abs(v));
  let diff = 0;
  for (let i = 0; i < cpu.scores.data.length; i++) diff = Math.max(diff, Math.abs(cpu.scores.data[i] - dev.scores.data[i]));
  // Where the best rotation differs: score both rotations directly on the CPU at that voxel; a tie passes.
  // (The orientation scorer has no mcc, and scores real space's correlation — the filtered template's — where Fourier
  // rotation correlates the filtered tile with the unfiltered template: there a differing rotation passes on the
  // score maps' agreement alone. Seen: one voxel of flc-sphere with every filter, 0.0014 apart in real space's score.)
  const scorer = score === 'mcc' || mode === 'fourier' ? null : createOrientationScorer({ ...job, device: 'cpu' });
  let differ = 0;
  let worstTie = 0;
  for (let i = 0; i < cpu.indices.length; i++) {
    const a = cpu.indices[i];
    const b = dev.indices[i];
    if (a === b) continue;
    differ++;
    if (differ > 200) continue; // counted; the fraction below decides
    const z = Math.floor(i / (SHAPE[1] * SHAPE[2]));
    const y = Math.floor(i / SHAPE[2]) % SHAPE[1];
    const x = i % SHAPE[2];
    if (a < 0 || b < 0) { worstTie = Infinity; continue; }
    if (scorer === null) continue;
    const pair = new Float64Array(18);
    pair.set(made.rotations.subarray(9 * a, 9 * a + 9), 0);
    pair.set(made.rotations.subarray(9 * b, 9 * b + 9), 9);
    const [s] = await scorer([{ position: [z, y, x], rotations: pair }]);
    worstTie = Math.max(worstTie, Math.abs(s[0] - s[1]) / best);
  }
  const row = {
    score, filter: filterName, rotationMode: mode, best: Number(best.toFixed(4)),
    maxScoreDiffOverBest: Number((diff / best).toExponential(2)), rotationsDiffer: differ,
    worstTieOverBest: Number.isFinite(worstTie) ? Number(worstTie.toExponential(2)) : null,
  };
  row.pass = best > 0.1 && diff / best <= 1e-4 && Number.isFinite(worstTie) && worstTie <= 1e-4 && differ <= 1e-3 * cpu.indices.length;
  return row;
}

async function agreement(device, quick) {
  const made = makeCase();
  const filters = filterSet(made);
  const cases = [];
  // The default score under every filter; every score without and with all filters; Fourier-space rotation for each
  // score that offers it, without and with all filters.
  for (const [filterName, options] of filters) cases.push({ score: 'flc-sphere', filterName, options, mode: 'real' });
  const [none, combined] = [filters[0], filters[filters.length - 1]];
  for (const score of ['cc', 'lcc', 'corr', 'cam', 'flc', 'mcc']) {
    for (const [filterName, options] of quick ? [combined] : [none, combined]) cases.push({ score, filterName, options, mode: 'real' });
  }
  for (const score of ['flc-sphere', 'cc', 'lcc', 'cam']) {
    for (const [filterName, options] of quick ? [combined] : [none, combined]) cases.push({ score, filterName, options, mode: 'fourier' });
  }
  const rows = [];
  for (const c of cases) {
    const row = await agreementCase(made, device, c);
    rows.push(row);
    say(`${row.pass ? 'ok  ' : 'FAIL'} ${c.score}, ${c.filterName}, ${c.mode}-space rotation: max |Δscore| ${row.maxScoreDiffOverBest} of the best ${row.best}; `
      + `rotation differs at ${row.rotationsDiffer} voxels (worst tie ${row.worstTieOverBest})`);
  }
  return rows;
}

// ---- 3. the GPU loop's choices ------------------------------------------------------------------------------------

/** Largest |a − b| over the largest |a|, and the fraction of voxels whose best rotation differs, over the voxels
 *  scored (the maps outside the bench's output region stay −∞). */
function compareMaps(a, b) {
  let best = 0;
  let diff = 0;
  let differ = 0;
  for (let i = 0; i < a.scores.length; i++) {
    if (!Number.isFinite(a.scores[i]) && a.scores[i] === b.scores[i]) continue;
    best = Math.max(best, Math.abs(a.scores[i]));
    diff = Math.max(diff, Math.abs(a.scores[i] - b.scores[i]));
    if (a.indices[i] !== b.indices[i]) differ++;
  }
  return { maxScoreDiffOverBest: Number((diff / best).toExponential(2)), rotationsDifferFraction: Number((differ / a.indices.length).toExponential(2)) };
}

/**
 * flc-sphere with the bench's wedge + low-pass filter on the padded tiles of a 256³ target and a 512×512×256 tile
 * (--quick: 64³), each way: real or Fourier rotation × float32 or float16 spectra. float16 must agree with float32 in
 * the same rotation mode (≤ 2e-3 of the best score: it only rounds the spectra); Fourier against real space is a
 * different score (the filtered tile against the rotated template) and is reported, not judged.
 */
async function choices(device, quick) {
  const targets = quick ? [[64, 64, 64]] : [[256, 256, 256], [256, 512, 512]];
  const box = quick ? 16 : 32;
  const rows = [];
  for (const target of targets) {
    const big = target[0] * target[1] * target[2] > 5e6;
    const rotationCount = quick ? 3 : big ? 64 : 256;
    const runs = {};
    for (const mode of ['real', 'fourier']) {
      for (const precision of ['single', 'half']) {
        const r = await timeCase({ device: device.index, target, box, score: 'flc-sphere', rotationCount, mode, lowPassed: true, precision, keepMaps: true });
        runs[`${mode}/${precision}`] = r;
        const perRotationMs = r.timings.perRotationMs;
        rows.push({
          target: target.join('x'), padded: r.shape.join('x'), template: box, rotations: rotationCount, rotationMode: mode, spectrumPrecision: precision,
          perRotationMs: Number(perRotationMs.toFixed(4)), nsPerRotationVoxel: Number(((perRotationMs * 1e6) / (target[0] * target[1] * target[2])).toFixed(4)),
          setupMs: Number(r.timings.setupMs.toFixed(1)), deviceBytes: r.memory.deviceBytes,
        });
      }
    }
    for (const mode of ['real', 'fourier']) {
      const c = compareMaps(runs[`${mode}/single`], runs[`${mode}/half`]);
      const row = rows.find((x) => x.target === target.join('x') && x.rotationMode === mode && x.spectrumPrecision === 'half');
      Object.assign(row, { againstSingle: c, pass: c.maxScoreDiffOverBest <= 2e-3 && c.rotationsDifferFraction <= 0.01 });
    }
    // The tile's set-up (target spectra, local σ map) made on the device against made on the host by FFTW and uploaded.
    const onHost = await timeCase({ device: device.index, target, box, score: 'flc-sphere', rotationCount: 1, lowPassed: true, setupOn: 'host' });
    const real = rows.find((x) => x.target === target.join('x') && x.rotationMode === 'real' && x.spectrumPrecision === 'single');
    real.hostSetupMs = Number(onHost.timings.setupMs.toFixed(1));
    const fourier = rows.find((x) => x.target === target.join('x') && x.rotationMode === 'fourier' && x.spectrumPrecision === 'single');
    fourier.againstReal = compareMaps(runs['real/single'], runs['fourier/single']);
    for (const r of Object.values(runs)) { delete r.scores; delete r.indices; }
  }
  // The verdict on the largest target measured: the per-rotation time of each choice, the other held at its default.
  const last = targets[targets.length - 1].join('x');
  const at = (mode, precision) => rows.find((x) => x.target === last && x.rotationMode === mode && x.spectrumPrecision === precision).perRotationMs;
  const fourierGain = at('real', 'single') / at('fourier', 'single');
  const halfGain = at('real', 'single') / at('real', 'half');
  const halfGainFourier = at('fourier', 'single') / at('fourier', 'half');
  const faster = {
    rotationMode: fourierGain > 1 ? 'fourier' : 'real', fourierOverReal: Number(fourierGain.toFixed(3)),
    spectrumPrecision: halfGain > 1 && halfGainFourier > 1 ? 'half' : 'single', halfOverSingle: Number(halfGain.toFixed(3)), halfOverSingleFourier: Number(halfGainFourier.toFixed(3)),
  };
  for (const r of rows) {
    say(`${r.pass === false ? 'FAIL' : 'ok  '} ${r.target} (${r.padded}) flc-sphere + wedge, ${r.rotationMode} rotation, ${r.spectrumPrecision} spectra: ${r.perRotationMs} ms/rotation, ${r.nsPerRotationVoxel} ns/rot·vox`
      + `, tile set-up ${r.setupMs} ms` + (r.hostSetupMs !== undefined ? ` (on the host: ${r.hostSetupMs} ms)` : '')
      + (r.againstSingle ? `; against single: max |Δscore| ${r.againstSingle.maxScoreDiffOverBest} of the best, rotation differs at ${r.againstSingle.rotationsDifferFraction} of voxels` : '')
      + (r.againstReal ? `; against real space: max |Δscore| ${r.againstReal.maxScoreDiffOverBest} of the best, rotation differs at ${r.againstReal.rotationsDifferFraction} of voxels` : ''));
  }
  const line = `faster on ${device.name} at ${last}: ${faster.rotationMode} rotation (Fourier ÷ real per rotation: ${(1 / fourierGain).toFixed(2)}×), `
    + `${faster.spectrumPrecision} spectra (half ÷ single: ${(1 / halfGain).toFixed(2)}× real, ${(1 / halfGainFourier).toFixed(2)}× Fourier)`;
  say(line);
  return { rows, faster, line };
}

// ---- 2. the example through the bundle's launcher ---------------------------------------------------------------

function example(device, dir, quick) {
  // In the bundle: its own launcher (lib/../bin/tme); from a checkout: the built CLI.
  const launcher = path.join(__dirname, '..', 'bin', 'tme');
  const cli = fs.existsSync(launcher) ? [launcher] : [process.execPath, path.join(__dirname, '..', '..', 'apps', 'cli', 'dist', 'main.js')];
  const t0 = Date.now();
  const r = spawnSync(cli[0], [...cli.slice(1), 'example', dir, '--device', String(device.index), '--force', ...(quick ? ['--angular-step', '30'] : [])], {
    encoding: 'utf8', env: { ...process.env, CI: '1' }, timeout: 300_000,
  });
  const m = /found (\d+) of (\d+) particles \(recall ([\d.]+)\), precision ([\d.]+) \((\d+) picks\), median angular error ([\d.]+|NaN)° at a ([\d.]+)° step/.exec(r.stdout);
  const run = /(\d+) rotations × (\d+) tiles? on (.+) in ([\d.]+) s/.exec(r.stdout);
  const row = {
    exitCode: r.status, wallSeconds: (Date.now() - t0) / 1000, device: run ? run[3] : null, matchSeconds: run ? Number(run[4]) : null,
    found: m ? Number(m[1]) : null, particles: m ? Number(m[2]) : null, recall: m ? Number(m[3]) : null,
    precision: m ? Number(m[4]) : null, medianAngularErrorDegrees: m ? Number(m[6]) : null, stepDegrees: m ? Number(m[7]) : null,
  };
  row.pass = r.status === 0 && row.recall !== null && row.recall >= 0.9 && row.precision >= 0.8 && row.medianAngularErrorDegrees <= row.stepDegrees;
  if (!row.pass) process.stdout.write(r.stdout + r.stderr);
  say(`${row.pass ? 'ok  ' : 'FAIL'} tme example --device ${device.index}: found ${row.found} of ${row.particles}, precision ${row.precision}, median angular error ${row.medianAngularErrorDegrees}° (match ${row.matchSeconds} s on ${row.device})`);
  return row;
}

// ---- main ---------------------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const deadline = started + args.minutes * 60_000;
  const listing = listDevices();
  const device = chooseDevice(args.device, listing.devices);
  say(`device ${device.index}: ${device.name} (${device.detail ?? ''})`);
  if (listing.vulkan) {
    say(`Vulkan loader ${listing.vulkan.loader}${listing.vulkan.loaderBundled ? ' (the bundle\'s)' : ''}; drivers ${listing.vulkan.drivers.map((d) => `${d.library} (${d.manifest ?? 'no manifest'})`).join(', ')}`);
  }
  const m = machine();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-gpu-check-'));
  try {
    const rows = await agreement(device, args.quick);
    // --quick (lavapipe in CI): a 30° search, a few hundred rotations instead of 2,440.
    const ex = example(device, path.join(work, 'example'), args.quick);
    const chosen = await choices(device, args.quick);
    const paths = benchPaths(device.index);
    const targets = args.quick ? [[64, 64, 64]] : undefined;
    const match = await benchMatch({ paths, targets, boxes: args.quick ? [32] : undefined, quick: args.quick, scaling: !args.quick, deadline });
    const failed = rows.filter((r) => !r.pass).length + (ex.pass ? 0 : 1) + chosen.rows.filter((r) => r.pass === false).length;
    const results = {
      machine: m, date: new Date().toISOString(), large: false,
      suites: {
        gpuCheck: { device: { index: device.index, name: device.name, detail: device.detail ?? null }, vulkan: listing.vulkan, agreement: rows, example: ex, choices: chosen, failed, wallSeconds: (Date.now() - started) / 1000 },
        match,
      },
    };
    fs.mkdirSync(args.out, { recursive: true });
    const file = path.join(args.out, `${m.slug}.json`);
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
    fs.renameSync(`${file}.tmp`, file);
    say(`${failed === 0 ? 'all checks passed' : `${failed} check(s) FAILED`} in ${((Date.now() - started) / 1000).toFixed(0)} s; results in ${file}`);
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`gpu-check: ${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
