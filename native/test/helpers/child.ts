import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A scoreOrientations or runMatch job run in a child process with `env` added to its environment
 *  (helpers/child-job.js): its raw output bytes (scores, then for runMatch the indices). */
export function runJobInChild(kind: 'orientations' | 'match', job: Record<string, unknown>, env: Record<string, string>): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-child-job-'));
  try {
    const plain = Object.fromEntries(Object.entries(job).map(([k, v]) => [k, ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v]));
    fs.writeFileSync(path.join(dir, 'in.json'), JSON.stringify({ kind, job: plain }));
    const child = spawnSync(process.execPath, [path.join(__dirname, 'child-job.js'), path.join(dir, 'in.json'), path.join(dir, 'out.bin')], {
      env: { ...process.env, ...env }, encoding: 'utf8',
    });
    if (child.status !== 0) throw new Error(`the child job (${JSON.stringify(env)}) failed: ${child.stderr}`);
    return fs.readFileSync(path.join(dir, 'out.bin'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
