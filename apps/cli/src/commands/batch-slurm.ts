import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHECKPOINT_FILE, JOB_FILES, estimateJob, mergeShards, writeJob } from '@tme/engine';
import { TmeError, invalidOption, writeFileAtomic } from '@tme/formats';
import { createFolder, executeMatch, prepareJobDir, setupMatch, type MatchFlags } from './match';
import { parseMemorySize } from '../search-flags';
import { sh } from './slurm';
import { withoutOptions } from '../command-line';

/** One tomogram of a batch, as batch.ts reads it from the manifest. */
export interface SlurmEntry { name: string; target: string; tiltAngles?: string; tomoName?: string }

/** tme batch --slurm's own flags (everything else on the command line is the batch, rerun as it is by every task). */
export interface BatchSlurmFlags extends MatchFlags {
  slurm?: boolean;
  shards?: string;
  slurmConfig?: string;
  partition?: string;
  account?: string;
  time?: string;
  module?: string[];
  cpusPerTask?: string;
  mem?: string;
  gpusPerTask?: string;
  relionRefine?: string;
  relionRanks?: string;
  submit?: boolean;
  slurmTask?: string;
  slurmFinish?: boolean;
}

/** Flags that write or submit the scripts: the tasks' command line is the batch's without them. */
const SUBMIT_ONLY = new Set(['--slurm', '--submit', '--force', '--slurm-config', '--partition', '--account', '--time', '--module', '--mem', '--gpus-per-task', '--relion-ranks']);
const SUBMIT_SWITCHES = new Set(['--slurm', '--submit', '--force']);

export const SLURM_FOLDER = 'slurm';
export const SHARDS_FOLDER = 'shards';

function positiveInteger(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!(Number.isInteger(v) && v >= 1)) throw invalidOption(flag, 'an integer ≥ 1', text);
  return v;
}

/**
 * The cluster's lines from a small config file (`key = value`, # comments): partition, account, time, module (one
 * line each, repeatable), cpus-per-task, mem, gpus-per-task. Flags given on the command line win.
 */
function readSlurmConfig(file: string): Record<string, string[]> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TmeError('ERR_TME_IO', `cannot read the SLURM config (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file });
  }
  const known = ['partition', 'account', 'time', 'module', 'cpus-per-task', 'mem', 'gpus-per-task'];
  const out: Record<string, string[]> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const m = /^([\w-]+)\s*=\s*(.+)$/.exec(line);
    if (!m || !known.includes(m[1] as string)) {
      throw new TmeError('ERR_TME_FORMAT', `line ${i + 1}: expected key = value with key one of ${known.join(', ')}, got "${line}"`, { file });
    }
    (out[m[1] as string] ??= []).push((m[2] as string).trim());
  });
  return out;
}

/** The (tomogram, shard) of array task k: tomograms outer, shards inner. */
function taskOf(k: number, entries: readonly SlurmEntry[], shards: number): { entry: SlurmEntry; shard: number } {
  const entry = entries[Math.floor(k / shards)];
  if (!(Number.isInteger(k) && k >= 0 && entry)) throw invalidOption('--slurm-task', `an array task from 0 to ${entries.length * shards - 1}`, k);
  return { entry, shard: k % shards };
}

const entryFlags = (e: SlurmEntry): Partial<MatchFlags> => ({ target: e.target, ...(e.tiltAngles !== undefined ? { tiltAngles: e.tiltAngles, tomoName: e.tomoName } : {}) });

/**
 * One array task: the search of one tomogram's shard into OUT/shards/<name>/<i> (with one shard a whole search into
 * OUT/<name>). A task that finds its job done exits at once and one that finds a checkpoint resumes from it, so a
 * resubmitted array redoes only what a killed or failed task left.
 */
export async function runSlurmTask(out: string, entries: readonly SlurmEntry[], flags: BatchSlurmFlags): Promise<void> {
  const shards = positiveInteger('--shards', flags.shards, 1);
  const { entry, shard } = taskOf(Number(flags.slurmTask), entries, shards);
  const dir = shards === 1 ? path.join(out, entry.name) : path.join(out, SHARDS_FOLDER, entry.name, String(shard));
  if (fs.existsSync(path.join(dir, JOB_FILES.job))) {
    if (!flags.quiet) process.stdout.write(`${dir}: done earlier\n`);
    return;
  }
  const resume = fs.existsSync(path.join(dir, CHECKPOINT_FILE));
  const setup = await setupMatch({
    ...flags, ...entryFlags(entry), output: dir, resume, force: !resume && fs.existsSync(dir),
    ...(shards > 1 ? { shard: `${shard}/${shards}` } : {}),
  });
  await executeMatch(setup, { ...flags, resume }, 'tme batch --slurm');
}

/** The finish job's first step: each tomogram's shards merged into OUT/<name> (where not already there). */
export function mergeTomogramShards(out: string, entries: readonly SlurmEntry[], flags: BatchSlurmFlags): void {
  const shards = positiveInteger('--shards', flags.shards, 1);
  if (shards === 1) return;
  for (const e of entries) {
    const dir = path.join(out, e.name);
    if (fs.existsSync(path.join(dir, JOB_FILES.job))) continue;
    const merged = mergeShards(Array.from({ length: shards }, (_, i) => path.join(out, SHARDS_FOLDER, e.name, String(i))));
    prepareJobDir(dir, { force: true });
    writeJob(dir, merged.result, { tmeVersion: merged.tmeVersion, inputs: { ...merged.inputs, command: 'tme merge' }, search: merged.search, anglesTsv: merged.anglesTsv });
  }
}

/**
 * `tme batch … --slurm`: the batch as SLURM jobs. match.sbatch is an array of one task per (tomogram, shard), each
 * rerunning this command line with --slurm-task; finish.sbatch (after the array: --dependency=afterok) merges each
 * tomogram's shards and calls its picks and exports (--slurm-finish), writes the set's particles.star, and
 * reconstructs it with relion_reconstruct; refine.sbatch (after that) is RELION's auto-refine of the set.
 */
export async function writeBatchSlurm(manifest: string, out: string, entries: readonly SlurmEntry[], flags: BatchSlurmFlags, raw: readonly string[]): Promise<void> {
  const shards = positiveInteger('--shards', flags.shards, 1);
  const config = flags.slurmConfig === undefined ? {} : readSlurmConfig(flags.slurmConfig);
  const one = (flag: string, value: string | undefined): string | undefined => value ?? config[flag]?.at(-1);
  const cpus = positiveInteger('--cpus-per-task', one('cpus-per-task', flags.cpusPerTask ?? flags.threads), 1);
  const gpusText = one('gpus-per-task', flags.gpusPerTask);
  const gpus = gpusText === undefined ? 0 : positiveInteger('--gpus-per-task', gpusText, 1);
  const recipe = flags.relionRefine ?? 'local';
  if (!['local', 'global', 'none'].includes(recipe)) throw invalidOption('--relion-refine', 'local, global or none', recipe);
  const ranks = positiveInteger('--relion-ranks', flags.relionRanks, 3);
  if (ranks < 3) throw invalidOption('--relion-ranks', 'at least 3 (auto-refine: one leader and a rank per half set)', flags.relionRanks);
  const slurmDir = path.join(out, SLURM_FOLDER);
  if (fs.existsSync(slurmDir) && !flags.force) throw new TmeError('ERR_TME_EXISTS', 'holds SLURM scripts already; use --force to write and submit them again (finished tasks are skipped)', { file: out });

  // Every tomogram's search is checked here, once, before anything is queued; the largest sets the memory per task.
  let memMiB = 0;
  let diameter = 0;
  for (const e of entries) {
    const setup = await setupMatch({ ...flags, ...entryFlags(e), threads: String(cpus), output: path.join(out, e.name), ...(shards > 1 ? { shard: `0/${shards}` } : {}) }, { createDir: false });
    // Particle diameter for RELION: the template's mask (its radius, else the box's inscribed sphere).
    diameter = Math.max(diameter, 2 * (setup.options.maskRadius ?? (Math.min(...setup.template.shape) / 2) * setup.template.voxelSize[2]));
    const memText = one('mem', flags.mem);
    const tiles = flags.shardBy === 'tiles';
    if (memText !== undefined) memMiB = Math.ceil(parseMemorySize('--mem', memText) / 2 ** 20);
    if (memText !== undefined && !tiles) continue;
    const estimate = await estimateJob(setup.job);
    const used = estimate.devices.find((d) => d.device.index === estimate.used[0]);
    const tileCount = used?.tilePlan?.tiles.length;
    if (tiles && tileCount !== undefined && shards > tileCount) {
      throw invalidOption('--shards', `at most as many shards as tiles (${tileCount} for ${e.name}; --tile sets them) with --shard-by tiles`, flags.shards);
    }
    if (memText !== undefined) continue;
    if (!used?.processBytes) throw new TmeError('ERR_TME_DEVICE_MEMORY', `the search does not fit this machine (${used?.error ?? 'no plan'}); give --mem`, { file: e.target });
    // This machine's forecast of one task's whole process, plus a quarter for the cluster's nodes.
    memMiB = Math.max(memMiB, Math.ceil((1.25 * used.processBytes) / 2 ** 20));
  }

  const tme = [process.execPath, path.resolve(process.argv[1] as string)].map(sh).join(' ');
  // raw[0] is the command itself (batch): kept.
  const again = withoutOptions(raw, SUBMIT_ONLY, SUBMIT_SWITCHES);
  const batch = `${tme} ${again.map(sh).join(' ')}`;
  const modules = config['module'] ?? [];
  for (const m of flags.module ?? []) modules.push(m);
  const header = (name: string, extra: string[]): string[] => [
    '#!/bin/bash',
    `#SBATCH --job-name=${name}`,
    `#SBATCH --chdir=${sh(process.cwd())}`,
    ...(['partition', 'account', 'time'] as const).flatMap((k) => { const v = one(k, flags[k]); return v ? [`#SBATCH --${k}=${sh(v)}`] : []; }),
    ...extra,
    'set -euo pipefail',
    ...modules.map((m) => `module load ${sh(m)}`),
  ];
  const tasks = entries.length * shards;
  createFolder(slurmDir);
  const match = [
    ...header('tme-batch-match', [
      `#SBATCH --array=0-${tasks - 1}`, `#SBATCH --cpus-per-task=${cpus}`, `#SBATCH --mem=${memMiB}M`,
      ...(gpus > 0 ? [`#SBATCH --gpus-per-task=${gpus}`] : []), `#SBATCH --output=${sh(path.join(slurmDir, 'match-%a.log'))}`,
    ]),
    `# Task k: tomogram k / ${shards}, shard k % ${shards} of the manifest ${sh(path.resolve(manifest))}. A task resubmitted after`,
    '# a kill or failure resumes from its checkpoint; one whose job is written exits at once.',
    `exec ${batch} --threads ${cpus} --slurm-task "$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
  const reconstruction = path.join('relion', 'reconstruct.mrc');
  const finish = [
    ...header('tme-batch-finish', [`#SBATCH --cpus-per-task=${cpus}`, `#SBATCH --mem=${memMiB}M`, `#SBATCH --output=${sh(path.join(slurmDir, 'finish.log'))}`]),
    '# After every array task (afterok): each tomogram\'s shards merged (bit for bit one whole search), its picks and',
    '# exports, then the set\'s particles.star, STOPGAP and Warp tables.',
    `${batch} --threads ${cpus} --slurm-finish`,
    '# The average of the picked particles at their picked angles: the reference of the refinement below, and a',
    '# check that the picks are the template. RELION resolves particles.star\'s paths from the batch folder.',
    `cd ${sh(out)} && mkdir -p relion`,
    `relion_reconstruct --i particles.star --o ${reconstruction} --3d_rot`,
    '',
  ].join('\n');
  const refineLines = [
    ...header('tme-batch-refine', [
      '#SBATCH --nodes=1', `#SBATCH --ntasks=${ranks}`, `#SBATCH --cpus-per-task=${cpus}`, `#SBATCH --mem=${memMiB}M`,
      ...(gpus > 0 ? [`#SBATCH --gpus-per-task=${gpus}`] : []), `#SBATCH --output=${sh(path.join(slurmDir, 'refine.log'))}`,
    ]),
    `cd ${sh(out)}`,
    '# RELION stops with an error when the folder of --o does not exist: make it first.',
    'mkdir -p relion/Refine3D',
    '# GPUs where the node has them (RELION picks them itself with an empty --gpu).',
    'GPU=(); if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then GPU=(--gpu ""); fi',
    recipe === 'global'
      ? '# The global recipe (asked for: --relion-refine global): a global search from healpix order 2 (7.5°), local from 4.'
      : ['# The local recipe (default): template matching has found the angles already, so the search starts local at healpix',
        '# order 4 (1.8°). Measured with RELION 3.1.3 on tme\'s exports: the global recipe (--healpix_order 2) threw good',
        '# template-matching angles away on small particle sets (median error 9–11° → 104–145° after its first global',
        '# iteration); this one converged and kept them (26.7 Å, median 11.6° from truth). --relion-refine global for the other.'].join('\n'),
    `mpirun -n ${ranks} relion_refine_mpi --i particles.star --o relion/Refine3D/run --ref ${reconstruction} \\`,
    '  --auto_refine --split_random_halves --firstiter_cc --ini_high 60 --pool 3 --pad 2 \\',
    `  --particle_diameter ${Math.round(diameter)} --flatten_solvent --zero_mask --oversampling 1 \\`,
    `  --healpix_order ${recipe === 'global' ? 2 : 4} --auto_local_healpix_order 4 --offset_range 5 --offset_step 2 \\`,
    `  --sym C1 --low_resol_join_halves 40 --norm --scale --j ${cpus} "\${GPU[@]}"`,
    '',
  ].join('\n');
  const scripts = { match: path.join(slurmDir, 'match.sbatch'), finish: path.join(slurmDir, 'finish.sbatch'), refine: path.join(slurmDir, 'refine.sbatch') };
  writeFileAtomic(scripts.match, match);
  writeFileAtomic(scripts.finish, finish);
  if (recipe !== 'none') writeFileAtomic(scripts.refine, refineLines);
  else fs.rmSync(scripts.refine, { force: true });
  for (const s of Object.values(scripts)) if (fs.existsSync(s)) fs.chmodSync(s, 0o755);

  const say = (line: string): void => { if (!flags.quiet) process.stdout.write(`${line}\n`); };
  say(`${slurmDir}: ${entries.length} tomogram${entries.length === 1 ? '' : 's'} × ${shards} shard${shards === 1 ? '' : 's'} = ${tasks} array tasks (${cpus} CPU${cpus === 1 ? '' : 's'}${gpus ? `, ${gpus} GPU${gpus === 1 ? '' : 's'}` : ''}, ${memMiB} MiB each): match.sbatch, finish.sbatch${recipe === 'none' ? '' : `, refine.sbatch (${recipe}, particle diameter ${Math.round(diameter)} Å)`}`);
  if (!flags.submit) {
    say(`submit: id=$(sbatch --parsable ${sh(scripts.match)}) && fin=$(sbatch --parsable --dependency=afterok:$id ${sh(scripts.finish)})${recipe === 'none' ? '' : ` && sbatch --dependency=afterok:$fin ${sh(scripts.refine)}`}`);
    return;
  }
  const jobsFile = path.join(slurmDir, 'jobs.json');
  // A resubmission: the earlier finish and refine jobs wait on an array that failed (or was killed) and can never
  // start; they are this batch's own, so they go.
  if (fs.existsSync(jobsFile)) {
    const old = JSON.parse(fs.readFileSync(jobsFile, 'utf8')) as Record<string, string>;
    const ids = ['finish', 'refine'].map((k) => old[k]).filter((id): id is string => typeof id === 'string' && /^\d+$/.test(id));
    if (ids.length > 0) spawnSync('scancel', ids, { encoding: 'utf8' });
  }
  const sbatch = (args: string[]): string => {
    const r = spawnSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' });
    if (r.error) throw new TmeError('ERR_TME_IO', `cannot run sbatch (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): is SLURM on this machine?`);
    if (r.status !== 0) throw new TmeError('ERR_TME_IO', `sbatch refused the job: ${(r.stderr || r.stdout).trim().split('\n')[0]}`, { file: args[args.length - 1] });
    return r.stdout.trim().split(';')[0] as string;
  };
  const jobs: Record<string, string> = { match: sbatch([scripts.match]) };
  jobs['finish'] = sbatch([`--dependency=afterok:${jobs['match']}`, scripts.finish]);
  if (recipe !== 'none') jobs['refine'] = sbatch([`--dependency=afterok:${jobs['finish']}`, scripts.refine]);
  writeFileAtomic(jobsFile, `${JSON.stringify(jobs, null, 2)}\n`);
  say(`submitted: array ${jobs['match']} (0-${tasks - 1}), finish ${jobs['finish']} after it${jobs['refine'] ? `, refine ${jobs['refine']} after that` : ''} → ${out}`);
}
