#!/usr/bin/env node
// `pnpm fuzz`: mutated inputs through every reader and parser of a user's files (test/fuzz/targets.js), each case
// within a time budget (default 2 s) in a child process capped in memory (default 4 GiB of address space, where
// prlimit exists). A clean refusal (TmeError) is fine; any other error, a dead child or a case past its budget is
// a failure, listed with the case number that replays it: node test/fuzz/fuzz.js --only NAME --from N --cases 1.
// Usage: node test/fuzz/fuzz.js [--cases N (per target, default 7000)] [--seed S] [--only a,b] [--from N]
//        [--budget-ms MS] [--memory-mib MIB] [--json]
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const { TARGETS } = require('./targets.js');

function parseArgs(argv) {
  const a = { cases: 7000, seed: 'tme', only: null, from: 0, budgetMs: 2000, memoryMiB: 4096, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--cases') { a.cases = Number(v); i++; }
    else if (k === '--seed') { a.seed = String(v); i++; }
    else if (k === '--only') { a.only = String(v).split(','); i++; }
    else if (k === '--from') { a.from = Number(v); i++; }
    else if (k === '--budget-ms') { a.budgetMs = Number(v); i++; }
    else if (k === '--memory-mib') { a.memoryMiB = Number(v); i++; }
    else if (k === '--json') a.json = true;
    else throw new Error(`Expected --cases, --seed, --only, --from, --budget-ms, --memory-mib or --json but received ${k}`);
  }
  return a;
}

const hasPrlimit = spawnSync('prlimit', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs cases [from, to) of one target; resolves with the outcome of each case it finished (and the one it lost). */
function runChild(name, from, to, args) {
  return new Promise((resolve) => {
    const script = path.join(__dirname, 'child.js');
    const node = [process.execPath, script, name, String(from), String(to), args.seed];
    const [cmd, ...rest] = hasPrlimit ? ['prlimit', `--as=${args.memoryMiB * 2 ** 20}`, '--', ...node] : node;
    const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    const outcomes = new Map();
    let current = null;
    let timer = null;
    let stderr = '';
    let buffered = '';
    let hung = false;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, args.budgetMs);
    };
    child.stderr.setEncoding('utf8').on('data', (s) => { stderr = (stderr + s).slice(-2000); });
    child.stdout.setEncoding('utf8').on('data', (s) => {
      buffered += s;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = /^(start|done) (\d+)(?: (.*))?$/.exec(line);
        if (!m) continue;
        const i = Number(m[2]);
        if (m[1] === 'start') { current = i; arm(); } else { outcomes.set(i, m[3]); current = null; clearTimeout(timer); }
      }
    });
    // The first case pays for loading the readers (molstar takes a second): its budget starts at its own "start".
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (current !== null && !outcomes.has(current)) {
        outcomes.set(current, hung ? `hang over ${args.budgetMs} ms` : `crash process died (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`);
      }
      resolve({ outcomes, next: current !== null ? current + 1 : to, failedToStart: outcomes.size === 0 && current === null && code !== 0 ? stderr : null });
    });
  });
}

async function fuzzTarget(target, args) {
  const counts = { ok: 0, rejected: 0, crash: 0, hang: 0 };
  const failures = [];
  let from = args.from;
  const to = args.from + args.cases;
  const started = Date.now();
  while (from < to) {
    const r = await runChild(target.name, from, to, args);
    if (r.failedToStart) throw new Error(`fuzz: the ${target.name} child failed: ${r.failedToStart}`);
    for (const [i, outcome] of r.outcomes) {
      const kind = outcome.split(' ')[0];
      counts[kind] = (counts[kind] ?? 0) + 1;
      if (kind === 'crash' || kind === 'hang') failures.push({ target: target.name, case: i, outcome });
    }
    from = Math.max(from + 1, r.next);
  }
  return { target: target.name, cases: args.cases, ...counts, seconds: (Date.now() - started) / 1000, failures };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const targets = args.only ? TARGETS.filter((t) => args.only.includes(t.name)) : TARGETS;
  if (targets.length === 0) throw new Error(`no target named ${args.only}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  const results = [];
  for (const target of targets) {
    const r = await fuzzTarget(target, args);
    results.push(r);
    if (!args.json) {
      process.stdout.write(`${r.target.padEnd(20)} ${String(r.cases).padStart(7)} cases: ${r.ok} read, ${r.rejected} refused, ${r.crash} crashed, ${r.hang} hung (${r.seconds.toFixed(1)} s)\n`);
      for (const f of r.failures.slice(0, 10)) process.stdout.write(`  case ${f.case}: ${f.outcome}\n`);
    }
  }
  const total = results.reduce((s, r) => ({ cases: s.cases + r.cases, crash: s.crash + r.crash, hang: s.hang + r.hang }), { cases: 0, crash: 0, hang: 0 });
  if (args.json) process.stdout.write(`${JSON.stringify({ seed: args.seed, budgetMs: args.budgetMs, memoryMiB: hasPrlimit ? args.memoryMiB : null, total, results })}\n`);
  else process.stdout.write(`fuzz: ${total.cases} cases, ${total.crash} crashes, ${total.hang} hangs (seed "${args.seed}", ${args.budgetMs} ms per case)\n`);
  process.exitCode = total.crash + total.hang === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(2);
});
