#!/usr/bin/env node
// Background normalisation on a decoy tomogram (issue 21): the bundled example's protein (1TII at 5 Å) in a
// 64×128×128 tomogram with a curved membrane-like bilayer, gold-like beads and particles, some next to the membrane.
// The real built CLI searches it three times — --background none, rotation-stats, random-phase — and this script
// scores each map's peaks against the truth: recall and precision at each option's own threshold, precision at equal
// recall (per option the highest threshold that reaches the recall all three reach), beads among the top picks, and
// the search's wall time. Writes results/background.json and results/background.md (the README's table).
//
//   node test/accuracy/background.js [--step 12] [--work DIR] [--no-write] [--reuse]
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { readStructure, writeMrc } = require('@tme/formats');
const { generateSyntheticTomogram, scorePicks } = require('@tme/example');
const { bundledModelPath, prepareTemplate, simulateDensity } = require('@tme/template');
const { readJob } = require('@tme/engine');
const { callPeaks } = require('@tme/peaks');

const root = path.resolve(__dirname, '..', '..');
const TME = path.join(root, 'apps', 'cli', 'dist', 'main.js');
const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const step = opt('--step', '12');
const work = path.resolve(opt('--work', path.join(root, '.cache', 'accuracy', 'background')));

/** The decoy design: what the README's table was measured on. */
const DESIGN = {
  shape: [64, 128, 128], particles: 12, snr: 0.1, seed: 20261206, tiltRange: [-60, 60],
  decoys: { membrane: true, nearMembrane: 4, beads: 6, beadRadius: 2.5, beadContrast: 4, membraneContrast: 0.6 },
};
const OPTIONS = ['none', 'rotation-stats', 'random-phase'];
const MAP = { none: null, 'rotation-stats': 'scores-normalised.mrc', 'random-phase': 'scores-corrected.mrc' };

async function makeData() {
  fs.mkdirSync(work, { recursive: true });
  const model = await readStructure(bundledModelPath());
  const simulated = simulateDensity(model, { voxelSize: 5, lowpassAngstrom: 10, marginAngstrom: 6 });
  const template = prepareTemplate(simulated.volume, { center: false });
  const made = generateSyntheticTomogram(template, DESIGN);
  writeMrc(path.join(work, 'tomogram.mrc'), made.tomogram);
  writeMrc(path.join(work, 'template.mrc'), template);
  return { made, template };
}

function search(option) {
  const dir = path.join(work, `job-${option}`);
  // --reuse: score the jobs a previous run left (the same design), without searching again.
  if (args.includes('--reuse') && fs.existsSync(path.join(dir, 'job.json'))) return dir;
  const r = spawnSync(process.execPath, [TME, 'match', '--target', path.join(work, 'tomogram.mrc'), '--template', path.join(work, 'template.mrc'),
    '--angular-step', step, '--tilt-range', DESIGN.tiltRange.join(','), '--device', 'cpu', '--model-bfactor', '0', '--background', option, '--force', '--quiet', '-o', dir],
  { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tme match --background ${option} failed: ${r.stderr}`);
  return dir;
}

/** Picks within half a box of a bead's centre are the bead's. */
function beadPicks(picks, beads, box) {
  return picks.filter((p) => beads.some((b) => Math.hypot(p.position[0] - b[0], p.position[1] - b[1], p.position[2] - b[2]) <= box / 2)).length;
}

function evaluate(option, dir, made, box) {
  const job = readJob(dir);
  const map = option === 'none' ? job.scores : job.background.peakMap;
  const s = job.record.statistics;
  const statistics = option === 'none'
    ? { mean: s.mean, std: s.std, rotations: s.rotationCount, voxels: s.voxelCount, perRotation: { mean: s.perRotationMean, std: s.perRotationStd } }
    : option === 'rotation-stats' ? { mean: 0, std: 1, rotations: s.rotationCount, voxels: s.voxelCount } : undefined;
  const maps = { scores: map.data, rotationIndices: job.indices, shape: map.shape, rotations: job.rotations, templateShape: job.record.parameters.templateShape };
  // Every candidate, ranked (no threshold): the curve's points are its prefixes.
  const ranked = callPeaks(maps, { numPeaks: 200 }).picks;
  // The option's own threshold: 1 expected false alarm where the map has a noise model, else the map's mean + 4σ.
  const own = callPeaks({ ...maps, ...(statistics ? { statistics } : {}) }, statistics ? { falseAlarms: 1 } : { zScore: 4 }).picks;
  const at = (picks) => scorePicks(picks.map((p) => ({ position: p.position, rotation: p.rotation })), made.truth, 2);
  const curve = ranked.map((_, k) => { const r = at(ranked.slice(0, k + 1)); return { k: k + 1, recall: r.recall, precision: r.precision }; });
  const ownScore = at(own);
  return {
    option, seconds: job.record.timings.matchMs / 1000, threshold: own.length > 0 ? own[own.length - 1].score : null,
    recall: ownScore.recall, precision: ownScore.precision, picks: own.length, beadsInOwn: beadPicks(own, made.decoys.beads, box),
    beadsInTop12: beadPicks(ranked.slice(0, 12), made.decoys.beads, box), curve,
  };
}

function precisionAtRecall(curve, recall) {
  // The first prefix (highest threshold) that reaches the recall.
  const point = curve.find((c) => c.recall >= recall - 1e-9);
  return point ? point.precision : null;
}

async function main() {
  const started = Date.now();
  const { made, template } = await makeData();
  const box = template.shape[0];
  const rows = [];
  for (const option of OPTIONS) rows.push(evaluate(option, search(option), made, box));
  // Equal recall: the plain score's best over its ranked candidates; an option that never reaches it has no precision there.
  const reach = Math.max(...rows[0].curve.map((c) => c.recall));
  const base = rows[0].seconds;
  const table = rows.map((r) => ({
    option: r.option, searchSeconds: Number(r.seconds.toFixed(1)), cost: Number((r.seconds / base).toFixed(2)),
    threshold: r.threshold === null ? null : Number(r.threshold.toFixed(3)), picks: r.picks, recall: Number(r.recall.toFixed(2)),
    precision: Number(r.precision.toFixed(2)), beadsPicked: r.beadsInOwn, beadsInTop12: r.beadsInTop12,
    equalRecall: Number(reach.toFixed(2)), maxRecall: Number(Math.max(...r.curve.map((c) => c.recall)).toFixed(2)),
    precisionAtEqualRecall: precisionAtRecall(r.curve, reach) === null ? null : Number(precisionAtRecall(r.curve, reach).toFixed(2)),
  }));
  const md = [
    `Decoy tomogram ${DESIGN.shape.slice().reverse().join('×')} (1TII at 5 Å, ${DESIGN.particles} particles, ${DESIGN.decoys.nearMembrane} next to a curved bilayer, `
      + `${DESIGN.decoys.beads} beads of ${DESIGN.decoys.beadRadius} voxels at ${DESIGN.decoys.beadContrast}× the template's peak density, SNR ${DESIGN.snr}, wedge ±60°), `
      + `flc-sphere, ${step}° step, CPU path, ${os.cpus().length} cores (shared: times are noisy, ratios from one run):`,
    '',
    '| --background | search s | cost | threshold (own) | picks | recall | precision | beads picked | beads in top 12 | best recall in top 200 | precision at recall ' + reach.toFixed(2) + ' |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...table.map((r) => `| ${r.option} | ${r.searchSeconds} | ${r.cost}× | ${r.threshold ?? '–'} | ${r.picks} | ${r.recall} | ${r.precision} | ${r.beadsPicked} | ${r.beadsInTop12} | ${r.maxRecall} | ${r.precisionAtEqualRecall ?? 'not reached'} |`),
    '',
  ].join('\n');
  process.stdout.write(`${md}\n(${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (!args.includes('--no-write')) {
    const out = path.join(__dirname, 'results');
    fs.writeFileSync(path.join(out, 'background.json'), `${JSON.stringify({ design: DESIGN, step: Number(step), machine: os.cpus()[0]?.model, cores: os.cpus().length, table, curves: Object.fromEntries(rows.map((r) => [r.option, r.curve])) }, null, 2)}\n`);
    fs.writeFileSync(path.join(out, 'background.md'), md);
  }
}

main().catch((err) => { process.stderr.write(`${err.stack ?? err}\n`); process.exit(1); });
