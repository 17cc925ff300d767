/**
 * Every reader of a user's file under mutated input (test/fuzz: the seeded mutator `pnpm fuzz` runs at length):
 * each case either reads or is refused with a TmeError within 2 s, in a child process capped at 4 GiB. CI runs a
 * fixed-seed sample; the counts show the seeds are real files (some cases read) and the mutations bite (some are
 * refused).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

interface FuzzResult {
  total: { cases: number; crash: number; hang: number };
  results: Array<{ target: string; cases: number; ok: number; rejected: number; crash: number; hang: number; failures: Array<{ case: number; outcome: string }> }>;
}

it('150 mutated inputs per reader: no crash, none over 2 s', () => {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'fuzz', 'fuzz.js'), '--cases', '150', '--seed', 'ci', '--json'], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).toBe('');
  const result = JSON.parse(r.stdout.trim().split('\n').pop() as string) as FuzzResult;
  expect(result.results.map((t) => t.target).sort()).toEqual([
    'bcif', 'cif', 'ctffind', 'dose', 'dynamo-tbl', 'em', 'imod-defocus', 'mdoc', 'mrc', 'orientations-tsv', 'pdb',
    'relion5-tilt-series', 'relion5-tomograms', 'rotation-list', 'rotation-npy', 'star', 'tlt', 'warp-xml',
  ]);
  for (const t of result.results) {
    expect({ target: t.target, failures: t.failures }).toEqual({ target: t.target, failures: [] });
    expect(t.ok).toBeGreaterThan(0);
    expect(t.rejected).toBeGreaterThan(0);
    expect(t.ok + t.rejected).toBe(150);
  }
  expect(r.status).toBe(0);
}, 300_000);
