/**
 * `tme slurm` against a real SLURM (a one-node cluster: test/slurm/cluster.sh, started by .ci/run in CI, or here
 * when SLURM is installed and we are root): the search as an array of shards and a merge job after them
 * (--dependency=afterok), submitted with sbatch, run by slurmd; the merged search must equal one whole `tme match`
 * with the same threads byte for byte, and its picks must be called.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { blobTemplate, noisyTarget, runTme, tempDir, writeVolume } from './helpers';
import { slurmUp, useCluster, waitForJobs } from './slurm-cluster';

let dir: string;
let cluster: { stop: () => void } | undefined;
const f = (name: string): string => path.resolve(dir, name);

let available = false;
beforeAll(() => {
  dir = tempDir('slurm');
  cluster = useCluster(dir);
  available = slurmUp();
  // eslint-disable-next-line no-console
  if (!available) console.warn('skipped: no SLURM here (CI starts one; locally: apt-get install slurm-wlm munge, as root)');
  const template = blobTemplate(10);
  writeVolume(f('template.mrc'), template);
  writeVolume(f('target.mrc'), noisyTarget([40, 48, 48], template, 5));
}, 60_000);

afterAll(() => cluster?.stop());

const search = ['--target', 'target.mrc', '--template', 'template.mrc', '--angular-step', '25', '--tilt-range', '-60,60', '--device', 'cpu'];

test('an array of three shards and a merge after them equal one whole search, byte for byte', async () => {
  if (!available) return;
  const r = await runTme(['slurm', ...search, '--shards', '3', '--cpus-per-task', '1', '--submit', '-o', f('job')], { cwd: dir });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/rotations in 3 shards \(1 CPU, \d+ MiB each\)/);
  const script = fs.readFileSync(f('job/slurm/match.sbatch'), 'utf8');
  expect(script).toContain('#SBATCH --array=0-2');
  expect(script).toContain(`#SBATCH --chdir=${dir}`);
  expect(script).toMatch(/--shard "\$SLURM_ARRAY_TASK_ID\/3" --resume/);
  const jobs = JSON.parse(fs.readFileSync(f('job/slurm/jobs.json'), 'utf8')) as { match: string; merge: string };
  // The merge waits on the array: SLURM holds it with the dependency.
  const held = spawnSync('squeue', ['-h', '-j', jobs.merge, '-o', '%E'], { encoding: 'utf8', env: process.env }).stdout.trim();
  if (held !== '') expect(held).toMatch(new RegExp(`afterok:${jobs.match}`));
  await waitForJobs([jobs.match, jobs.merge], 300_000, 'the shards and their merge', f('job/slurm'));
  expect(fs.existsSync(f('job/search/picks.tsv'))).toBe(true);

  const whole = await runTme(['match', ...search, '--threads', '1', '--quiet', '-o', f('whole')], { cwd: dir, timeoutMs: 120_000 });
  expect(whole.code).toBe(0);
  for (const file of ['scores.mrc', 'rotations.mrc', 'angles.tsv']) {
    expect(fs.readFileSync(f(`job/search/${file}`)).equals(fs.readFileSync(f(`whole/${file}`)))).toBe(true);
  }
  for (const i of [0, 1, 2]) expect(fs.readFileSync(f(`job/slurm/match-${i}.log`), 'utf8')).toBe('');
}, 400_000);

test('without --submit it writes the scripts and says how to submit them', async () => {
  const r = await runTme(['slurm', ...search, '--shards', '2', '--mem', '2G', '--time', '1:00:00', '--partition', 'gpu', '-o', f('dry')], { cwd: dir });
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^submit: id=\$\(sbatch --parsable .*match\.sbatch\) && sbatch --dependency=afterok:\$id .*merge\.sbatch$/m);
  const script = fs.readFileSync(f('dry/slurm/match.sbatch'), 'utf8');
  for (const line of ['#SBATCH --mem=2048M', '#SBATCH --time=1:00:00', '#SBATCH --partition=gpu', '#SBATCH --array=0-1']) expect(script).toContain(line);
  expect(fs.readFileSync(f('dry/slurm/merge.sbatch'), 'utf8')).toMatch(/ merge .*shards\/0 .*shards\/1 --force -o .*search\n.* peaks .*search -o .*picks\.tsv/);
  const again = await runTme(['slurm', ...search, '--shards', '2', '-o', f('dry')], { cwd: dir });
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/dry: holds SLURM scripts already; use --force/);
});

test('--shard-by tiles: the array splits the tile plan, each task matches its tiles; more shards than tiles is refused', async () => {
  const tiles = ['--tile', '20,24,24', '--shard-by', 'tiles', '--mem', '2G'];
  const r = await runTme(['slurm', ...search, ...tiles, '--shards', '3', '-o', f('tiles')], { cwd: dir });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const count = Number(/: (\d+) tiles in 3 shards/.exec(r.stdout)?.[1]);
  expect(count).toBeGreaterThanOrEqual(3);
  expect(fs.readFileSync(f('tiles/slurm/match.sbatch'), 'utf8')).toMatch(/ match .*--shard-by tiles .*--shard "\$SLURM_ARRAY_TASK_ID\/3"/);
  const over = await runTme(['slurm', ...search, ...tiles, '--shards', String(count + 1), '-o', f('tiles-over')], { cwd: dir });
  expect(over.code).toBe(2);
  expect(over.stderr.trim().split('\n')).toHaveLength(1);
  expect(over.stderr).toMatch(new RegExp(`Expected at most as many shards as tiles \\(${count}; --tile sets them\\) with --shard-by tiles for --shards but received "?${count + 1}"?`));
  expect(fs.existsSync(f('tiles-over'))).toBe(false);
});
