#!/usr/bin/env node
// CTF zones along the defocus gradient (issue 21.3): do they help, and what do they cost? A thick synthetic lamella
// of the bundled protein (1TII) whose particles are imaged through a −60…60° tilt series with the CTF at *their own*
// defocus in each tilt, Δf + h·(x·sin θ − z·cos θ) with h = 1 (@tme/example's `tiltSeries`), is searched by the real
// built CLI with the metadata a user has (.tlt, accumulated doses, an IMOD .defocus file) three times:
// --defocus-handedness 1 (zones, the right hand), 0 (one CTF per tilt for the whole tomogram) and −1 (the wrong
// hand). Per run: recall and precision of the CLI's own picks (--false-alarms 1), recall in the top N (N particles),
// the mean score at the true positions, the zone and tile counts and the search time. Writes results/zones.json and
// results/zones.md (the README's table).
//
//   node test/accuracy/zones.js [--only CASE] [--work DIR] [--no-write] [--reuse]
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { readStructure, writeMrc } = require('@tme/formats');
const { generateSyntheticTomogram, scorePicks } = require('@tme/example');
const { bundledModelPath, prepareTemplate, simulateDensity } = require('@tme/template');
const { quaternionToMatrix, randomQuaternion, seededRandom, pytmeEulerToMatrix } = require('@tme/rotations');
const { readJob } = require('@tme/engine');
const { callPeaks } = require('@tme/peaks');

const root = path.resolve(__dirname, '..', '..');
const TME = path.join(root, 'apps', 'cli', 'dist', 'main.js');
const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const work = path.resolve(opt('--work', path.join(root, '.cache', 'accuracy', 'zones')));

/** The series every case is imaged with: what a user's metadata states (the defocus is the case's). */
const SERIES = {
  angles: Array.from({ length: 41 }, (_, i) => -60 + 3 * i), dosePerTilt: 3, defocusJitter: 1000, voltage: 300, cs: 2.7, amplitudeContrast: 0.07,
  handedness: 1,
};
/**
 * Thick lamellae (z, y, x), 1200 Å thick and 960–1920 Å across the tilt axis, the template simulated to Nyquist.
 * 3 µm is a common defocus; at 1 µm the CTF's delocalisation (λ·Δf·k) stays inside the template's mask at 3 Å, so the
 * finest detail can correlate at all; --highpass 10 leaves only the detail the gradient spoils (an upper bound).
 */
const CASES = [
  { id: '3A-3um', voxel: 3, resolution: 6, shape: [400, 40, 320], particles: 24, defocus: 30000, snr: 0.01, seed: 2103 },
  { id: '3A-1um', voxel: 3, resolution: 6, shape: [400, 40, 320], particles: 24, defocus: 10000, snr: 0.01, seed: 2103 },
  { id: '3A-1um-hp10', data: '3A-1um', voxel: 3, resolution: 6, shape: [400, 40, 320], particles: 24, defocus: 10000, snr: 0.01, seed: 2103, highpass: 10 },
  { id: '5A-3um', voxel: 5, resolution: 10, shape: [240, 32, 384], particles: 24, defocus: 30000, snr: 0.01, seed: 2105 },
];
const HANDS = [1, 0, -1];

/** Accumulated dose per tilt, collected from 0° outwards (dose-symmetric). */
function doses(angles, perTilt) {
  const order = angles.map((a, i) => [Math.abs(a), i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out = new Array(angles.length).fill(0);
  order.forEach(([, i], rank) => { out[i] = rank * perTilt; });
  return out;
}

async function makeData(c, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const model = await readStructure(bundledModelPath());
  const simulated = simulateDensity(model, { voxelSize: c.voxel, lowpassAngstrom: c.resolution, marginAngstrom: 6 });
  const template = prepareTemplate(simulated.volume, { center: false });
  const random = seededRandom(c.seed + 1);
  const accumulated = doses(SERIES.angles, SERIES.dosePerTilt);
  const defoci = SERIES.angles.map(() => c.defocus + SERIES.defocusJitter * (2 * random() - 1));
  const tilts = SERIES.angles.map((angle, i) => ({
    angle, dose: accumulated[i],
    ctf: { defocus: defoci[i], voltage: SERIES.voltage, sphericalAberration: SERIES.cs, amplitudeContrast: SERIES.amplitudeContrast },
  }));
  const started = Date.now();
  // The same particles twice (one seed): noise-free, where the score at the truth is the filters' agreement alone,
  // and with noise, where the picks are scored.
  const design = (snr) => ({
    shape: c.shape, particles: c.particles, snr, seed: c.seed, tiltRange: null, minSeparation: 1, tiltSeries: { tilts, defocusHandedness: SERIES.handedness },
  });
  const clean = generateSyntheticTomogram(template, design(0));
  const made = generateSyntheticTomogram(template, design(c.snr));
  const generateSeconds = (Date.now() - started) / 2000;
  writeMrc(path.join(dir, 'clean.mrc'), clean.tomogram);
  writeMrc(path.join(dir, 'noisy.mrc'), made.tomogram);
  writeMrc(path.join(dir, 'template.mrc'), template);
  fs.writeFileSync(path.join(dir, 'tilts.tlt'), SERIES.angles.map((a) => `${a.toFixed(2)}\n`).join(''));
  fs.writeFileSync(path.join(dir, 'dose.txt'), accumulated.map((d) => `${d}\n`).join(''));
  // IMOD ctfplotter .defocus, version 2: views are 1-based, defocus in nm.
  fs.writeFileSync(path.join(dir, 'series.defocus'), SERIES.angles.map((a, i) =>
    `${i + 1} ${i + 1} ${a.toFixed(2)} ${a.toFixed(2)} ${(defoci[i] / 10).toFixed(1)}${i === 0 ? ' 2' : ''}\n`).join(''));
  // The particles' own rotations and as many random ones: the search still has to choose, and the fine detail the
  // gradient spoils is not lost to an angular step first (the best case for the zones; said in the README).
  const decoyRandom = seededRandom(c.seed + 2);
  const rotations = [...made.truth.map((t) => t.rotation), ...made.truth.map(() => quaternionToMatrix(randomQuaternion(decoyRandom)))];
  fs.writeFileSync(path.join(dir, 'rotations.txt'), rotations.map((m) => `${Array.from(m, (v) => v.toFixed(8)).join(' ')}\n`).join(''));
  return { made, template, generateSeconds, rotationCount: rotations.length };
}

function metadataFlags(c, dir, target) {
  return ['--target', path.join(dir, target), '--template', path.join(dir, 'template.mrc'), '--tilt-angles', path.join(dir, 'tilts.tlt'),
    '--dose', path.join(dir, 'dose.txt'), '--defocus', path.join(dir, 'series.defocus'), '--voltage', String(SERIES.voltage), '--cs', String(SERIES.cs),
    '--amplitude-contrast', String(SERIES.amplitudeContrast), '--rotations', path.join(dir, 'rotations.txt'), '--rotations-convention', 'matrix',
    ...(c.highpass === undefined ? [] : ['--highpass', String(c.highpass)]), '--device', 'cpu'];
}

function tme(argv) {
  const r = spawnSync(process.execPath, [TME, ...argv], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
  if (r.status !== 0) throw new Error(`tme ${argv[0]} failed: ${r.stderr}`);
  return r.stdout;
}

function search(c, dir, target, hand) {
  const out = path.join(dir, `job-${c.id}-${path.basename(target, '.mrc')}-h${hand}`);
  if (!(args.includes('--reuse') && fs.existsSync(path.join(out, 'picks.tsv')))) {
    tme(['run', ...metadataFlags(c, dir, target), '--defocus-handedness', String(hand), '--no-refine', '--formats', 'tsv', '--force', '--quiet', '-o', out]);
  }
  return out;
}

/** The picks and maps of one run against the truth. */
function evaluate(out, made, distance) {
  const job = readJob(out);
  const [, ny, nx] = job.scores.shape;
  const atTruth = made.truth.map(({ position: [z, y, x] }) => job.scores.data[(z * ny + y) * nx + x]);
  const rows = fs.readFileSync(path.join(out, 'picks.tsv'), 'utf8').trim().split('\n').slice(1).filter((l) => l !== '').map((l) => l.split('\t').map(Number));
  const picks = rows.map((c) => ({ position: [c[2], c[1], c[0]], rotation: pytmeEulerToMatrix(c[3], c[4], c[5]) }));
  const own = scorePicks(picks, made.truth, distance);
  const maps = {
    scores: job.scores.data, rotationIndices: job.indices, shape: job.scores.shape, rotations: job.rotations, templateShape: job.record.parameters.templateShape,
  };
  const top = callPeaks(maps, { numPeaks: made.truth.length }).picks;
  const topScore = scorePicks(top.map((p) => ({ position: p.position, rotation: p.rotation })), made.truth, distance);
  return {
    searchSeconds: job.record.timings.matchMs / 1000, meanScoreAtTruth: atTruth.reduce((a, b) => a + b, 0) / atTruth.length, scoresAtTruth: atTruth,
    picks: picks.length, recall: own.recall, precision: own.precision, recallTopN: topScore.recall,
  };
}

async function main() {
  const started = Date.now();
  const only = opt('--only', undefined);
  const results = [];
  const made = new Map();
  for (const c of CASES.filter((k) => only === undefined || k.id === only)) {
    // Cases that differ only in the search share their lamellae (made once per run).
    const dir = path.join(work, c.data ?? c.id);
    const data = made.get(dir) ?? await makeData(c, dir);
    made.set(dir, data);
    const rows = HANDS.map((hand) => {
      const clean = evaluate(search(c, dir, 'clean.mrc', hand), data.made, 3);
      const noisy = evaluate(search(c, dir, 'noisy.mrc', hand), data.made, 3);
      const estimate = tme(['estimate', ...metadataFlags(c, dir, 'noisy.mrc'), '--defocus-handedness', String(hand), '--calibration', '0']);
      return {
        hand, zones: Number(/CTF zones: (\d+)/.exec(estimate)?.[1]), tiles: Number(/(\d+) tiles? of/.exec(estimate)?.[1]), zoneLine: /CTF zones: .*/.exec(estimate)?.[0],
        cleanScoreAtTruth: clean.meanScoreAtTruth, cleanScoresAtTruth: clean.scoresAtTruth, ...noisy,
        searchSeconds: (clean.searchSeconds + noisy.searchSeconds) / 2,
      };
    });
    results.push({ case: c, generateSeconds: data.generateSeconds, rotations: data.rotationCount, rows });
    process.stdout.write(`${JSON.stringify({ case: c.id, rows: rows.map(({ scoresAtTruth, cleanScoresAtTruth, ...r }) => r) })}\n`);
  }
  const f = (v, d = 3) => Number(v.toFixed(d));
  const pct = (v, base) => `${f((100 * (v - base)) / base, 2)} %`;
  const md = [
    `Thick lamellae of 1TII, ${SERIES.angles.length} tilts −60…60° (dose-symmetric, ${SERIES.dosePerTilt} e⁻/Å² per tilt), signed CTF at ${SERIES.voltage} kV, `
      + `Δf ± ${SERIES.defocusJitter / 1e4} µm per tilt, each particle imaged at its own defocus (h = ${SERIES.handedness}); the real CLI with .tlt, dose file `
      + `and IMOD .defocus, searched over the particles' true rotations plus as many random ones, flc-sphere, CPU path, ${os.cpus().length} cores `
      + `(shared: times are noisy; each is the mean of the noise-free and the noisy run). Scores at the truth: mean over the particles; noisy: SNR as listed.`,
    '',
    '| voxel, Δf, band | lamella x×y×z (Å) | --defocus-handedness | CTF zones | tiles | score at truth, noise-free | vs 0 | score at truth, noisy | recall (own picks) | precision | recall in top N | search s | cost vs 0 |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.flatMap(({ case: c, rows }) => rows.map((r) => `| ${c.voxel} Å, ${c.defocus / 1e4} µm, ${c.highpass ? `--highpass ${c.highpass}` : 'all'}, SNR ${c.snr} `
      + `| ${c.shape.slice().reverse().map((n) => n * c.voxel).join('×')} | ${r.hand} | ${r.zones} | ${r.tiles} | ${f(r.cleanScoreAtTruth, 4)} | `
      + `${r.hand === 0 ? '—' : pct(r.cleanScoreAtTruth, rows[1].cleanScoreAtTruth)} | ${f(r.meanScoreAtTruth, 4)} | `
      + `${f(r.recall, 2)} | ${f(r.precision, 2)} | ${f(r.recallTopN, 2)} | ${f(r.searchSeconds, 1)} | ${f(r.searchSeconds / rows[1].searchSeconds, 2)}× |`)),
    '',
  ].join('\n');
  process.stdout.write(`${md}\n(${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (!args.includes('--no-write') && only === undefined) {
    const out = path.join(__dirname, 'results');
    fs.writeFileSync(path.join(out, 'zones.json'), `${JSON.stringify({ series: SERIES, machine: os.cpus()[0]?.model, cores: os.cpus().length, results }, null, 2)}\n`);
    fs.writeFileSync(path.join(out, 'zones.md'), md);
  }
}

main().catch((err) => { process.stderr.write(`${err.stack ?? err}\n`); process.exit(1); });
