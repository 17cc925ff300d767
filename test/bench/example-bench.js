#!/usr/bin/env node
// End-to-end wall time of the whole job on the bundled example (`tme example`: write the tomogram, match, call
// peaks, export), with the accuracy it reached, as one number a user can compare with their own run.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cli = path.join(__dirname, '..', '..', 'apps', 'cli', 'dist', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-example-bench-'));
const t0 = Date.now();
const run = spawnSync(process.execPath, [cli, 'example', dir, '--force'], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
const wallSeconds = (Date.now() - t0) / 1000;
fs.rmSync(dir, { recursive: true, force: true });
if (run.status !== 0) {
  process.stderr.write(run.stderr);
  process.exit(1);
}
const m = /found (\d+) of (\d+) particles \(recall ([\d.]+)\), precision ([\d.]+) .*median angular error ([\d.]+|NaN)°/.exec(run.stdout);
const match = /(\d+) rotations × (\d+) tiles? on (.+?) in ([\d.]+) s/.exec(run.stdout);
process.stdout.write(`${JSON.stringify({
  wallSeconds,
  matchSeconds: match ? Number(match[4]) : null,
  rotations: match ? Number(match[1]) : null,
  device: match ? match[3] : null,
  found: m ? Number(m[1]) : null,
  particles: m ? Number(m[2]) : null,
  recall: m ? Number(m[3]) : null,
  precision: m ? Number(m[4]) : null,
  medianAngularErrorDegrees: m ? Number(m[5]) : null,
})}\n`);
