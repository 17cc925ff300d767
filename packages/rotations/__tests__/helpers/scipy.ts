import { spawnSync } from 'node:child_process';
import { seededRandom } from '../../src/random-rotations';

/**
 * Runs a batch of scipy Rotation calls in ONE python process (Debian's python3-scipy, an independent reference).
 * `script` reads `data` (the parsed JSON input) and sets `out`; returns `out`.
 */
export function runScipy<T>(script: string, data: unknown): T {
  const program = [
    'import json, sys, warnings',
    'warnings.simplefilter("ignore")',
    'import numpy as np',
    'from scipy.spatial.transform import Rotation',
    'data = json.load(sys.stdin)',
    script,
    'json.dump(out, sys.stdout)',
  ].join('\n');
  const res = spawnSync('/usr/bin/python3', ['-c', program], { input: JSON.stringify(data), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (res.status !== 0) throw new Error(`python3 failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

/** The seeded generator tme uses everywhere (mulberry32), so test inputs are reproducible. */
export const seeded = seededRandom;
