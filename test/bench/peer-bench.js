#!/usr/bin/env node
// tme and pyTME side by side: the same target, template, mask, wedge and rotation set (pyTME's own .npy set, fed to
// tme with --rotations), whole processes run alternately, each measured for wall time, CPU time (user + system of
// the process and every descendant it waited for) and peak memory of the whole process tree (RSS summed over
// the tree, sampled every 20 ms: pyTME's workers are separate processes). pyTME runs from its source tree
// (../shared/research/pytme-run.md has the recipe) with Debian's Python; without it the suite says why and skips.
// Usage: node test/bench/peer-bench.js [--quick]   (TME_PYTME_DIR: the pyTME source tree; default /tmp/pytme)
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const cli = path.join(root, 'apps', 'cli', 'dist', 'main.js');
const { createVolume, writeMrc } = require(path.join(root, 'packages', 'formats', 'dist', 'index.js'));
const { uniformNoise } = require('./inputs.js');

const quick = process.argv.includes('--quick');
const log = (line) => process.stderr.write(`peer-bench: ${line}\n`);
const round = (v, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const python = process.env.TME_PYTHON ?? '/usr/bin/python3';
const pytme = process.env.TME_PYTME_DIR ?? '/tmp/pytme';

function skip(why) {
  log(`skipped: ${why}`);
  process.stdout.write(`${JSON.stringify({ skipped: why })}\n`);
  process.exit(0);
}

if (!fs.existsSync(path.join(pytme, 'scripts', 'match_template.py'))) {
  skip(`pyTME not found at ${pytme} (set TME_PYTME_DIR to its source tree; recipe: ../shared/research/pytme-run.md)`);
}
const probe = spawnSync(python, ['-c', 'import tme, tme.extensions, pyfftw, numpy; print(tme.__version__)'], {
  encoding: 'utf8', env: { ...process.env, PYTHONPATH: pytme },
});
if (probe.status !== 0) skip(`pyTME at ${pytme} does not import with ${python}: ${(probe.stderr || '').trim().split('\n').pop()}`);
const pytmeVersion = probe.stdout.trim();
const pytmeCommit = (() => {
  const r = spawnSync('git', ['-C', pytme, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
})();

/** Peak RSS (bytes) of `pid` and all its descendants, summed. */
function treeRss(pid) {
  const children = new Map();
  const rss = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
      rss.set(Number(entry), Number(fields[21]) * 4096);
    } catch { /* the process ended while we looked */ }
  }
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    total += rss.get(p) ?? 0;
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return total;
}

/** Runs a command under bash so `times` reports the CPU of everything it waited for; samples the tree's memory. */
function measure(argv, env) {
  return new Promise((resolve, reject) => {
    const quoted = argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const t0 = process.hrtime.bigint();
    const child = spawn('bash', ['-c', `${quoted} >/dev/null 2>"$TME_PEER_ERR"; rc=$?; times; exit $rc`], {
      stdio: ['ignore', 'pipe', 'inherit'], env,
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    let peak = 0;
    const timer = setInterval(() => { peak = Math.max(peak, treeRss(child.pid)); }, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      // `times`: the shell's user/sys, then its children's.
      const lines = out.trim().split('\n');
      const sec = (t) => { const m = /(\d+)m([\d.]+)s/.exec(t); return m ? 60 * Number(m[1]) + Number(m[2]) : NaN; };
      const [user, sys] = (lines[lines.length - 1] ?? '').trim().split(/\s+/).map(sec);
      if (code !== 0) {
        const err = fs.existsSync(env.TME_PEER_ERR) ? fs.readFileSync(env.TME_PEER_ERR, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
        reject(new Error(`${argv.slice(0, 3).join(' ')} … exited ${code}: ${err}`));
        return;
      }
      resolve({ wallSeconds: wall, cpuSeconds: user + sys, peakMiB: peak / 2 ** 20 });
    });
  });
}

function sphereMask(n, r) {
  const m = new Float32Array(n ** 3);
  const c = n >> 1;
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    m[(z * n + y) * n + x] = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= r * r ? 1 : 0;
  }
  return m;
}

/** A smooth, asymmetric 32³ template: a few Gaussian blobs, so neither program meets a degenerate input. */
function template(n) {
  const t = new Float32Array(n ** 3);
  const c = n >> 1;
  const blobs = [[0, 0, 0, 1, 6], [0, 0, 4, 0.8, 3], [0, 4, 0, -0.6, 3], [4, 0, -2, 0.5, 2]];
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    let v = 0;
    for (const [bz, by, bx, a, s] of blobs) v += a * Math.exp(-((z - c - bz) ** 2 + (y - c - by) ** 2 + (x - c - bx) ** 2) / s);
    t[(z * n + y) * n + x] = v;
  }
  return t;
}

// The cases: a cube, a lamella-shaped slab, and a large slab on a small rotation set. Template 32³, mask a
// sphere of radius 7, ±60° wedge about y, flc-sphere (pyTME: FLCSphericalMask), 2 workers each.
const CASES = [
  { id: 'cube-128', shape: [128, 128, 128], set: 'c48u83.npy', angle: 15 },
  { id: 'slab-200x200x100', shape: [100, 200, 200], set: 'c48u83.npy', angle: 15 },
  { id: 'slab-512x512x200', shape: [200, 512, 512], set: 'c48n9.npy', angle: 36.47 },
].filter((c) => !quick || c.id === 'cube-128').map((c) => (quick ? { ...c, set: 'c48n9.npy', angle: 36.47 } : c));
const REPEATS = quick ? 1 : 2;

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-peer-bench-'));
  const voxel = 10;
  const box = 32;
  writeMrc(path.join(work, 'template.mrc'), createVolume(template(box), [box, box, box], voxel));
  writeMrc(path.join(work, 'mask.mrc'), createVolume(sphereMask(box, 7), [box, box, box], voxel));
  const threads = Math.min(2, os.cpus().length);
  const env = { ...process.env, CI: '1', PYTHONPATH: pytme, TME_PEER_ERR: path.join(work, 'stderr.txt'), OMP_NUM_THREADS: '1' };
  const cases = [];
  try {
    for (const c of CASES) {
      const target = path.join(work, `${c.id}.mrc`);
      writeMrc(target, createVolume(uniformNoise(c.shape[0] * c.shape[1] * c.shape[2], 17), c.shape, voxel));
      const setFile = path.join(pytme, 'tme', 'data', c.set);
      const count = JSON.parse(spawnSync(python, ['-c', `import numpy; print(numpy.load(${JSON.stringify(setFile)}).shape[0])`], { encoding: 'utf8' }).stdout);
      const tmeArgv = [process.execPath, cli, 'match', '--target', target, '--template', path.join(work, 'template.mrc'),
        '--template-mask', path.join(work, 'mask.mrc'), '--rotations', setFile, '--tilt-range', '-60,60', '--device', 'cpu',
        '--threads', String(threads), '--quiet', '--force', '-o', path.join(work, 'tme-job')];
      const pyArgv = [python, path.join(pytme, 'scripts', 'match_template.py'), '-m', target, '-i', path.join(work, 'template.mrc'),
        '-I', path.join(work, 'mask.mrc'), '-s', 'FLCSphericalMask', '-a', String(c.angle), '-n', String(threads),
        '--tilt-angles=-60,60', '--wedge-axes', '2,0', '-o', path.join(work, 'pytme.pickle')];
      // tme's own forecast of its peak (whole process), to set against the measured one.
      const est = spawnSync(process.execPath, [cli, 'estimate', ...tmeArgv.slice(3).filter((a) => a !== '--quiet' && a !== '--force'), '--calibration', '0', '--json'],
        { encoding: 'utf8', env });
      const estimate = est.status === 0 ? JSON.parse(est.stdout) : undefined;
      const picked = estimate?.devices.find((d) => d.device.index === estimate.picked);
      const runs = { tme: [], pytme: [] };
      for (let k = 0; k < REPEATS; k++) {
        for (const [name, argv] of [['tme', tmeArgv], ['pytme', pyArgv]]) {
          log(`${c.id}: ${name} run ${k + 1}/${REPEATS} (${count} rotations)`);
          runs[name].push(await measure(argv, env));
        }
      }
      const best = (list, key) => Math.min(...list.map((r) => r[key]));
      const row = {
        id: c.id, target: [...c.shape].reverse().join('×'), template: `${box}³, sphere mask r 7`, rotations: count, rotationSet: c.set,
        tme: { wallSeconds: round(best(runs.tme, 'wallSeconds')), cpuSeconds: round(best(runs.tme, 'cpuSeconds')), peakMiB: round(best(runs.tme, 'peakMiB'), 0) },
        pytme: { wallSeconds: round(best(runs.pytme, 'wallSeconds')), cpuSeconds: round(best(runs.pytme, 'cpuSeconds')), peakMiB: round(best(runs.pytme, 'peakMiB'), 0) },
        runs,
      };
      row.tme.estimatedPeakMiB = picked?.processBytes !== undefined ? round(picked.processBytes / 2 ** 20, 0) : null;
      row.ratios = {
        wall: round(row.tme.wallSeconds / row.pytme.wallSeconds, 3),
        cpu: round(row.tme.cpuSeconds / row.pytme.cpuSeconds, 3),
        memory: round(row.tme.peakMiB / row.pytme.peakMiB, 3),
        estimateOverPeak: row.tme.estimatedPeakMiB ? round(row.tme.estimatedPeakMiB / row.tme.peakMiB, 3) : null,
      };
      log(`${c.id}: tme ${row.tme.wallSeconds} s / ${row.tme.peakMiB} MiB, pyTME ${row.pytme.wallSeconds} s / ${row.pytme.peakMiB} MiB → wall ×${row.ratios.wall}, memory ×${row.ratios.memory}`);
      cases.push(row);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify({
    pytme: { version: pytmeVersion, commit: pytmeCommit, python, workers: threads },
    tme: { threads, flags: 'match --score flc-sphere (default) --template-mask --rotations <pyTME set> --tilt-range -60,60 --device cpu' },
    pytmeFlags: '-s FLCSphericalMask -I mask -a <set angle> -n 2 --tilt-angles=-60,60 --wedge-axes 2,0',
    repeats: REPEATS, cases,
  })}\n`);
}

main().catch((err) => { log(String(err.message || err)); process.exit(1); });
