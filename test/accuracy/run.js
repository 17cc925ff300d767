#!/usr/bin/env node
// `pnpm accuracy`: makes every synthetic lamella of the suite (cases.js), runs the REAL built CLI on each with
// default flags plus the data's own metadata flags, scores the picks with the independent Python scorer
// (score.py, maps.py) and writes test/accuracy/results/<machine>[-label].json and the tables in
// test/accuracy/README.md.
//
//   pnpm accuracy                       the whole suite (≈ 45–60 min on 2 cores)
//   pnpm accuracy --label before     results/<machine>-before.json
//   pnpm accuracy --only 1tii-ladder-snr0.03,noise-white-flc   only these cases (ids or prefixes); no files written
//   … --search-flags '--rotation-mode fourier'               extra tme run flags for every case
//   pnpm accuracy --no-noise         skip the pure-noise experiment
//   node test/accuracy/run.js --rescore test/accuracy/results/X.json   re-score its jobs (kept in .cache/accuracy)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const here = __dirname;
const root = path.resolve(here, '..', '..');
const TME = path.join(root, 'apps', 'cli', 'dist', 'main.js');
const PYTHON = process.env.TME_PYTHON || (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const { cases, noiseCases } = require('./cases.js');

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const label = opt('--label');
const only = opt('--only') ? opt('--only').split(',') : null;
const work = path.resolve(opt('--work') || path.join(root, '.cache', 'accuracy'));
const withNoise = !args.includes('--no-noise');
// Extra `tme run` flags for every case (e.g. --search-flags '--rotation-mode fourier'), to compare one option's
// choices on the same lamellae.
const searchFlags = opt('--search-flags') ? opt('--search-flags').split(/\s+/).filter(Boolean) : [];

function machine() {
  const cpus = os.cpus();
  let devices = [];
  try {
    devices = require(path.join(root, 'native', 'dist', 'index.js')).listDevices();
  } catch { /* no addon: the runs will say why */ }
  const gpu = devices.find((d) => d.type === 'discrete-gpu' || d.type === 'integrated-gpu');
  const cpuModel = ((cpus[0] && cpus[0].model) || 'unknown-cpu').trim();
  // The benchmark's machine name (test/bench/run.js), so results of one machine sit side by side.
  const slug = `${cpuModel}-${cpus.length}core${gpu ? `-${gpu.name}` : ''}`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return {
    slug, cpu: cpuModel, cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}`,
    node: process.version, devices: devices.map((d) => ({ name: d.name, type: d.type })), loadAverage: os.loadavg(),
  };
}

function git(...a) {
  const r = spawnSync('git', a, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The checkout, and the last commit that changed tme itself (apps/, packages/, native/): the build measured. */
function buildInfo() {
  return {
    commit: git('rev-parse', '--short', 'HEAD'), describe: git('describe', '--always', '--dirty'),
    product: git('log', '-1', '--format=%h %cs %s', '--', 'apps', 'packages', 'native'),
    productDirty: (git('status', '--porcelain', '--', 'apps', 'packages', 'native') || '') !== '',
  };
}

function python(script, scriptArgs) {
  const r = spawnSync(PYTHON, [path.join(here, script), ...scriptArgs], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${script} ${scriptArgs.join(' ')} failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function tme(tmeArgs) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [TME, ...tmeArgs], { encoding: 'utf8', env: { ...process.env, CI: '1' }, maxBuffer: 64 << 20 });
  const seconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`tme ${tmeArgs.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(-2000)}`);
  const threshold = /threshold ([-\d.eE+]+)/.exec(r.stdout);
  return { seconds, stdout: r.stdout, threshold: threshold ? Number(threshold[1]) : undefined };
}

// False alarms asked of tme's own peak caller on the noise lamellae: enough noise picks (~1000–2000) to count.
const NOISE_FALSE_ALARMS = 50000;

const log = (s) => process.stderr.write(`accuracy: ${s}\n`);
const selected = (id) => !only || only.some((o) => id === o || id.startsWith(o));

/** Re-scores the jobs of a results file from the work folder (after a scorer change), keeping everything else. */
function rescore(file) {
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  results.cases = results.cases.map((row) => {
    if (row.error) return row;
    const dir = path.join(work, row.id.replace(/-(refined|global)$/, ''));
    const twin = /-refined$/.test(row.id) ? 'refined.tsv' : /-global$/.test(row.id) ? 'global.tsv' : 'picks.tsv';
    const picks = path.join(dir, 'job', twin);
    return { ...row, ...python('score.py', [path.join(dir, 'data'), picks, '--scores', path.join(dir, 'job', 'scores.mrc')]) };
  });
  results.noise = results.noise.map((row) => {
    if (row.error) return row;
    const dir = path.join(work, row.id);
    return { ...row, ...python('maps.py', ['faces', path.join(dir, 'data'), path.join(dir, 'job', 'scores.mrc')]) };
  });
  results.rescored = new Date().toISOString();
  if (!results.build.product) results.build = { ...results.build, ...buildInfo(), commit: results.build.commit, describe: results.build.describe };
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
  log(`re-scored ${path.relative(root, file)}`);
  require('./report.js').updateReadme(here);
}

async function main() {
  if (opt('--rescore')) return rescore(path.resolve(opt('--rescore')));
  const gen = require(path.join(here, 'dist', 'generate.js'));
  const m = machine();
  const started = Date.now();
  const results = {
    machine: m, date: new Date().toISOString(), label: label || null,
    build: buildInfo(),
    python: PYTHON, cases: [], noise: [],
  };
  fs.mkdirSync(work, { recursive: true });
  const jobs = new Map();

  for (const c of cases()) {
    if (!selected(c.id)) continue;
    log(`${c.id}: making the lamella`);
    const dir = path.join(work, c.id);
    const data = path.join(dir, 'data');
    const files = await gen.writeCase({ name: c.id, ...c.spec }, data);
    const meta = JSON.parse(fs.readFileSync(files.meta, 'utf8'));
    const job = path.join(dir, 'job');
    const cli = ['run', '--target', files.tomogram, '--template', files.template, '--angular-step', String(c.step),
      ...gen.metadataFlags(files), ...(c.tile ? ['--tile', c.tile] : []), ...searchFlags, '--formats', 'tsv', '-o', job, '--force'];
    log(`${c.id}: tme ${cli.join(' ')}`);
    let run;
    try {
      run = tme(cli);
    } catch (err) {
      results.cases.push({ id: c.id, group: c.group, molecule: meta.molecule, shape: meta.shape, snr: meta.snr, step: c.step, error: String(err.message).slice(0, 500) });
      log(`${c.id}: FAILED ${err.message}`);
      continue;
    }
    jobs.set(c.id, job);
    const scored = python('score.py', [data, path.join(job, 'picks.tsv'), '--scores', path.join(job, 'scores.mrc')]);
    // Since tme run refines orientations by default it says so; before, it did not.
    const refinedByRun = /refined \d+ orientations/.test(run.stdout);
    const row = {
      id: c.id, group: c.group, molecule: meta.molecule, shape: meta.shape, voxelSize: meta.voxelSize, templateBox: meta.templateBox,
      particles: meta.particles, snr: meta.snr, step: c.step, refine: refinedByRun, tile: c.tile || null, zeroBorder: meta.zeroBorder,
      threshold: run.threshold, command: `tme ${cli.map((a) => path.isAbsolute(a) ? path.basename(a) : a).join(' ')}`,
      ...scored, wallSeconds: run.seconds, dataSeconds: meta.writeSeconds,
    };
    if (c.compareTo && jobs.has(c.compareTo)) {
      row.mapDiff = python('maps.py', ['diff', path.join(jobs.get(c.compareTo), 'scores.mrc'), path.join(job, 'scores.mrc')]);
      row.compareTo = c.compareTo;
    }
    results.cases.push(row);
    log(`${c.id}: recall ${fmt(row.recall)} (faces ${fmt(row.recallFaces)}, interior ${fmt(row.recallInterior)}), precision ${fmt(row.precision)}, median angle ${fmt(row.medianAngle, 1)}°, flips ${row.flips}, max score ${fmt(row.maxScore, 3)}, ${fmt(run.seconds, 0)} s`);
    if (c.refine) {
      // The paired twin on the same match: the global search's angles (tme peaks, no refinement) when tme run
      // refined, else the refined ones (tme peaks --refine), so each orientation case shows both.
      const twin = refinedByRun ? 'global' : 'refined';
      const out = path.join(job, `${twin}.tsv`);
      const peaks = tme(['peaks', job, ...(refinedByRun ? [] : ['--refine']), '-o', out, '--force']);
      const s = python('score.py', [data, out, '--scores', path.join(job, 'scores.mrc')]);
      const r = { ...row, ...s, id: `${c.id}-${twin}`, refine: !refinedByRun, wallSeconds: peaks.seconds, threshold: peaks.threshold,
        command: `tme peaks job${refinedByRun ? '' : ' --refine'} -o ${twin}.tsv` };
      delete r.mapDiff;
      results.cases.push(r);
      log(`${r.id}: median angle ${fmt(r.medianAngle, 1)}°, flips ${r.flips}, ${fmt(peaks.seconds, 0)} s`);
    }
  }

  if (withNoise) {
    for (const c of noiseCases()) {
      if (!selected(c.id)) continue;
      const dir = path.join(work, c.id);
      const data = path.join(dir, 'data');
      const files = await gen.writeCase({ name: c.id, ...c.spec }, data);
      const job = path.join(dir, 'job');
      // mcc takes no Fourier filter (tme refuses one): it runs without the tilt/dose/CTF flags, with a target mask.
      const cli = ['run', '--target', files.tomogram, '--template', files.template, '--angular-step', String(c.step),
        ...(c.score === 'mcc' ? ['--target-mask', files.targetMask] : gen.metadataFlags(files)), '--score', c.score,
        ...searchFlags, '--formats', 'tsv', '-o', job, '--force'];
      log(`${c.id}: tme ${cli.join(' ')}`);
      let run;
      try {
        run = tme(cli);
      } catch (err) {
        results.noise.push({ id: c.id, kind: c.kind, score: c.score, error: String(err.message).slice(0, 500) });
        log(`${c.id}: FAILED ${err.message}`);
        continue;
      }
      const f = python('maps.py', ['faces', data, path.join(job, 'scores.mrc')]);
      const picks = fs.readFileSync(path.join(job, 'picks.tsv'), 'utf8').trim().split('\n').length - 1;
      // What a user gets: tme's own picks above its own false-alarm threshold, set low enough (NOISE_FALSE_ALARMS
      // expected) that there are ~1000 noise picks to count, face against interior.
      let own = {};
      try {
        const fa = path.join(job, 'false-alarms.tsv');
        tme(['peaks', job, '--false-alarms', String(NOISE_FALSE_ALARMS), '--min-distance', '1', '--number', '1000000', '-o', fa, '--force']);
        own = python('maps.py', ['picks', data, fa]);
      } catch (err) {
        own = { picksError: String(err.message).slice(0, 300) };
      }
      const meta = JSON.parse(fs.readFileSync(files.meta, 'utf8'));
      const row = { id: c.id, kind: c.kind, score: c.score, shape: meta.shape, templateBox: meta.templateBox, step: c.step,
        zeroBorder: meta.zeroBorder, picksAtDefaultThreshold: picks, threshold: run.threshold, ...f, ...own,
        falseAlarmsForPicks: NOISE_FALSE_ALARMS, wallSeconds: run.seconds };
      results.noise.push(row);
      log(`${c.id}: face/interior ${fmt(row.ratio)} ± ${fmt(row.ratioStdErr)} (z faces ${fmt(row.ratioZFaces)}); tme's picks at ${NOISE_FALSE_ALARMS} false alarms ${fmt(row.picksRatio)} ± ${fmt(row.picksRatioStdErr)} (${row.picks} picks), max score ${fmt(row.maxScore, 3)}, ${picks} picks, ${fmt(run.seconds, 0)} s`);
    }
  }
  results.totalSeconds = (Date.now() - started) / 1000;
  if (only) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    log('--only: nothing written');
    return;
  }
  const out = path.join(here, 'results', `${m.slug}${label ? `-${label}` : ''}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(`${out}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  fs.renameSync(`${out}.tmp`, out);
  log(`wrote ${path.relative(root, out)} (${fmt(results.totalSeconds / 60, 1)} min)`);
  require('./report.js').updateReadme(here);
}

function fmt(v, d = 2) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—';
}

main().catch((err) => {
  process.stderr.write(`accuracy: ${err.stack || err}\n`);
  process.exit(1);
});
