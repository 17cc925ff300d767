#!/usr/bin/env node
// `pnpm bench`: runs every benchmark of tme in one go on this machine and writes
// test/bench/results/<machine>.json plus the Markdown table in the README's performance section.
// Ratios are always against a reference measured in the same run (an FFT pair of the same size, a plain
// file read, one pass over a map), so numbers from different machines stay comparable.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { machine } = require('./machine.js');

const here = __dirname;
const root = path.resolve(here, '..', '..');
const args = process.argv.slice(2);
const large = args.includes('--large');
const only = args.filter((a) => !a.startsWith('--'));

/** The benchmarks, each a script printing one JSON object on its last stdout line. */
const SUITES = [
  { name: 'formats', script: 'formats-bench.js', what: 'MRC read/write throughput vs fs.readFile' },
  { name: 'native', script: 'native-bench.js', what: 'FFT pairs per path and size; per-rotation cost vs the FFT floor' },
  { name: 'match', script: 'match-bench.js', what: 'per-rotation time for each score, size and device' },
  { name: 'peaks', script: 'peaks-bench.js', what: 'peak calling on a 512³ map vs one pass over it' },
  { name: 'example', script: 'example-bench.js', what: 'end-to-end wall time of tme run on the bundled example' },
  // Not in a plain `pnpm bench`: pyTME side by side takes ~20 min; `pnpm bench peer` runs it.
  { name: 'peer', script: 'peer-bench.js', what: 'tme and pyTME side by side: wall, CPU, peak memory of the process tree', explicit: true },
];

function runSuite(suite) {
  const script = path.join(here, suite.script);
  if (!fs.existsSync(script)) return { skipped: 'script not present' };
  const t0 = Date.now();
  try {
    const out = execFileSync(process.execPath, [script, ...(large ? ['--large'] : [])], {
      cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
      env: { ...process.env, TME_BENCH: '1' },
    });
    const last = out.trim().split('\n').pop();
    return { wallSeconds: (Date.now() - t0) / 1000, ...JSON.parse(last) };
  } catch (err) {
    return { error: String(err.message || err).split('\n')[0] };
  }
}

function main() {
  const m = machine();
  const outFile = path.join(here, 'results', `${m.slug}.json`);
  // `pnpm bench native match` re-measures those suites and keeps this machine's other results.
  const previous = only.length && fs.existsSync(outFile) ? JSON.parse(fs.readFileSync(outFile, 'utf8')) : undefined;
  const results = { machine: m, date: new Date().toISOString(), large, suites: previous ? previous.suites : {} };
  for (const suite of SUITES) {
    if (only.length ? !only.includes(suite.name) : suite.explicit) continue;
    process.stderr.write(`bench: ${suite.name} (${suite.what})\n`);
    results.suites[suite.name] = runSuite(suite);
  }
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(results, null, 2)}\n`);
  fs.renameSync(tmp, outFile);
  process.stderr.write(`bench: wrote ${path.relative(root, outFile)}\n`);
  require('./report.js').updateReadme(root);
}

main();
