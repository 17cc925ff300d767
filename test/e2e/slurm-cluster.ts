/**
 * A one-node SLURM for a test file: the one SLURM_CONF names (.ci/run starts it in CI), or else, where SLURM is
 * installed and we are root, one started in `dir` by test/slurm/cluster.sh and stopped by `stop`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const CLUSTER = path.join(__dirname, '..', 'slurm', 'cluster.sh');

export function slurmUp(): boolean {
  // jest gives each test file its own copy of process.env: children get it only when it is passed.
  return spawnSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8', env: process.env }).stdout?.includes('idle') === true;
}

/** Polls squeue until none of `ids` is queued. A job SLURM will never start (a dependency that failed: an array task
 *  exited non-zero, so the job after it waits forever) fails at once, and every failure says why: the queue with
 *  its reasons, the node's state, the job logs in `logDir` and the cluster's own logs. */
export async function waitForJobs(ids: string[], timeoutMs: number, what: string, logDir: string, pollMs = 500): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const q = spawnSync('squeue', ['-h', '-r', '-j', ids.join(','), '-o', '%i %T %r'], { encoding: 'utf8', env: process.env });
    const queued = q.stdout.trim();
    if (q.status === 0 && queued === '') return;
    if (/DependencyNeverSatisfied/.test(queued)) throw new Error(diagnosis(`${what}: a job waits on one that failed`, queued, logDir));
    if (Date.now() > end) throw new Error(diagnosis(`${what}: jobs ${ids.join(', ')} still queued after ${timeoutMs} ms`, queued || q.stderr, logDir));
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function diagnosis(headline: string, queued: string, logDir: string): string {
  const tail = (file: string, chars: number): string => {
    try {
      return fs.readFileSync(file, 'utf8').slice(-chars);
    } catch {
      return '(none)';
    }
  };
  const node = spawnSync('sinfo', ['-h', '-N', '-o', '%N %T %E'], { encoding: 'utf8', env: process.env }).stdout.trim();
  const logs = fs.existsSync(logDir) ? fs.readdirSync(logDir).filter((n) => n.endsWith('.log')).sort() : [];
  const cluster = process.env['SLURM_CONF'] ? path.dirname(process.env['SLURM_CONF']) : '';
  return [
    headline, `squeue:\n${queued}`, `sinfo: ${node}`,
    ...logs.map((n) => `${n}:\n${tail(path.join(logDir, n), 2000)}`),
    ...(cluster ? ['ctld.log', 'd.log'].map((n) => `${n}:\n${tail(path.join(cluster, n), 1500)}`) : []),
  ].join('\n');
}

/** Starts a cluster in `dir`/cluster unless one is configured; returns what stops it and removes `dir`. */
export function useCluster(dir: string): { stop: () => void } {
  let own: string | undefined;
  if (!process.env['SLURM_CONF'] && spawnSync('sh', ['-c', 'command -v slurmctld']).status === 0 && process.getuid?.() === 0) {
    own = path.join(dir, 'cluster');
    fs.mkdirSync(own);
    execFileSync('bash', [CLUSTER, 'start', own]);
    process.env['SLURM_CONF'] = path.join(own, 'slurm.conf');
  }
  return {
    stop: () => {
      if (own) {
        spawnSync('bash', [CLUSTER, 'stop', own]);
        delete process.env['SLURM_CONF'];
      }
      // slurmctld may still be saving its state as it stops: retry until the folder is empty.
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    },
  };
}
