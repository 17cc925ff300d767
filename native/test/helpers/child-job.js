// Runs one scoreOrientations or runMatch job in a child process, whose environment the caller sets (TME_BOX_OPS,
// TME_MAP_WRITES, …: jest gives tests a copy of process.env that the addon never sees, and the addon reads these
// once per process). Usage: node child-job.js IN.json OUT.bin — IN: { kind: 'orientations' | 'match', job } with
// typed arrays as plain arrays and `identityPatches: n` for n patches that are 1 at one voxel each; OUT: the scores
// (float32), then for runMatch the indices (int32).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const native = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const f32 = ['template', 'mask', 'filter', 'target', 'patches'];
const f64 = ['rotations'];
const i32 = ['offsets'];

async function main() {
  const { kind, job: raw } = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const job = { ...raw };
  for (const k of f32) if (raw[k]) job[k] = Float32Array.from(raw[k]);
  for (const k of f64) if (raw[k]) job[k] = Float64Array.from(raw[k]);
  for (const k of i32) if (raw[k]) job[k] = Int32Array.from(raw[k]);
  if (raw.identityPatches) {
    const n = raw.identityPatches;
    job.patches = new Float32Array(n * n);
    for (let i = 0; i < n; i++) job.patches[i * n + i] = 1;
    delete job.identityPatches;
  }
  const parts = [];
  if (kind === 'orientations') {
    parts.push(Buffer.from((await native.scoreOrientations(job)).buffer));
  } else {
    const r = await native.runMatch(job);
    parts.push(Buffer.from(r.scores.buffer), Buffer.from(r.indices.buffer));
  }
  fs.writeFileSync(process.argv[3], Buffer.concat(parts));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
