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
