import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, invalidOption, writeFileAtomic } from '@tme/formats';
import { estimateJob } from '@tme/engine';
import { commandLine, withoutOptions } from '../command-line';
import { addMatchOptions, createFolder, setupMatch, type MatchFlags } from './match';
import { parseMemorySize } from '../search-flags';

interface SlurmFlags extends MatchFlags {
  shards: string;
  cpusPerTask?: string;
  mem?: string;
  partition?: string;
  time?: string;
  account?: string;
  gpusPerTask?: string;
  submit?: boolean;
}

/** The options of `tme slurm` itself: everything else on its command line is the search, passed to each shard. */
const OWN = new Set(['--shards', '-o', '--output', '--threads', '--cpus-per-task', '--mem', '--partition', '--time', '--account', '--gpus-per-task', '--submit', '--force']);
const OWN_FLAGS = new Set(['--submit', '--force']);

/** A word for a POSIX shell, quoted when it needs to be. */
export function sh(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command line of the search, without tme slurm's own options (so each shard reruns exactly it). */
function searchArgs(raw: readonly string[]): string[] {
  return withoutOptions(raw.slice(1), OWN, OWN_FLAGS);
}

function positiveInteger(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!(Number.isInteger(v) && v >= 1)) throw invalidOption(flag, 'an integer ≥ 1', text);
  return v;
}

/**
 * `tme slurm`: one search as a SLURM array of shards (`tme match --shard i/n`) and a job that runs after all of them
 * (`--dependency=afterok`) to merge the shards and call the peaks. Writes the two batch scripts into JOB/slurm/ and,
 * with --submit, submits them with sbatch.
 */
async function runSlurm(flags: SlurmFlags, raw: readonly string[]): Promise<void> {
  const shards = positiveInteger('--shards', flags.shards, 1);
  // One number for both: the CPUs SLURM gives each task are the threads its shard uses.
  if (flags.threads !== undefined && flags.cpusPerTask !== undefined && flags.threads !== flags.cpusPerTask) {
    throw invalidOption('--threads/--cpus-per-task', 'one of them, or the same number (each shard uses the CPUs its task has)', `${flags.threads}/${flags.cpusPerTask}`);
  }
  const cpus = positiveInteger(flags.cpusPerTask !== undefined ? '--cpus-per-task' : '--threads', flags.cpusPerTask ?? flags.threads, 1);
  const gpus = flags.gpusPerTask === undefined ? 0 : positiveInteger('--gpus-per-task', flags.gpusPerTask, 1);
  const dir = path.resolve(flags.output);
  if (fs.existsSync(path.join(dir, 'slurm')) && !flags.force) {
    throw new TmeError('ERR_TME_EXISTS', 'holds SLURM scripts already; use --force to write them again', { file: dir });
  }
  // Everything is checked here, once, before anything is queued: the inputs, the flags, that it fits.
  const tiles = flags.shardBy === 'tiles';
  const setup = await setupMatch({ ...flags, threads: String(cpus), output: dir, ...(tiles ? { shard: `0/${shards}` } : {}) }, { createDir: false });
  // Shards split one template's rotations (tme match --shard refuses several templates): refused here, before queueing.
  if (setup.moreTemplates) {
    throw invalidOption('--template', 'one template (each shard splits one rotation set; run one tme slurm per template, or tme match with every --template on one node)', `${setup.moreTemplates.length + 1} templates`);
  }
  if (!tiles && shards > setup.rotationCount) throw invalidOption('--shards', `at most as many shards as rotations (${setup.rotationCount})`, flags.shards);
  // Tile shards: as many as this machine's tile plan has tiles at most (--tile makes every node plan the same).
  const estimate = tiles || flags.mem === undefined ? await estimateJob(setup.job) : undefined;
  const used = estimate?.devices.find((d) => d.device.index === estimate.used[0]);
  const tileCount = used?.tilePlan?.tiles.length;
  if (tiles && tileCount !== undefined && shards > tileCount) throw invalidOption('--shards', `at most as many shards as tiles (${tileCount}; --tile sets them) with --shard-by tiles`, flags.shards);
  // Memory per task: this machine's forecast of one shard's whole process, plus a quarter for the cluster's nodes.
  let memMiB: number;
  if (flags.mem !== undefined) {
    memMiB = Math.ceil(parseMemorySize('--mem', flags.mem) / 2 ** 20);
  } else {
    if (!used?.processBytes) throw new TmeError('ERR_TME_DEVICE_MEMORY', `the search does not fit this machine (${used?.error ?? 'no plan'}); give --mem`);
    memMiB = Math.ceil((1.25 * used.processBytes) / 2 ** 20);
  }

  const tme = [process.execPath, path.resolve(process.argv[1] as string)].map(sh).join(' ');
  const search = searchArgs(raw).map(sh).join(' ');
  const slurmDir = path.join(dir, 'slurm');
  createFolder(slurmDir);
  const header = (name: string, extra: string[]): string[] => [
    '#!/bin/bash',
    `#SBATCH --job-name=${name}`,
    `#SBATCH --chdir=${sh(process.cwd())}`,
    ...(flags.partition ? [`#SBATCH --partition=${sh(flags.partition)}`] : []),
    ...(flags.account ? [`#SBATCH --account=${sh(flags.account)}`] : []),
    ...(flags.time ? [`#SBATCH --time=${sh(flags.time)}`] : []),
    ...extra,
    'set -euo pipefail',
  ];
  const match = [
    ...header('tme-match', [
      `#SBATCH --array=0-${shards - 1}`, `#SBATCH --cpus-per-task=${cpus}`, `#SBATCH --mem=${memMiB}M`,
      ...(gpus > 0 ? [`#SBATCH --gpus-per-task=${gpus}`] : []), `#SBATCH --output=${sh(path.join(slurmDir, 'match-%a.log'))}`,
    ]),
    '# One shard of the search; --resume continues a requeued task from its checkpoint.',
    `exec ${tme} match ${search} --threads ${cpus} --shard "$SLURM_ARRAY_TASK_ID/${shards}" --resume --quiet -o ${sh(path.join(dir, 'shards'))}/"$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
  const finish = [
    ...header('tme-merge', [`#SBATCH --cpus-per-task=1`, `#SBATCH --mem=${memMiB}M`, `#SBATCH --output=${sh(path.join(slurmDir, 'merge.log'))}`]),
    '# After every shard (afterok): the whole search, bit for bit, then its picks.',
    `${tme} merge ${Array.from({ length: shards }, (_, i) => sh(path.join(dir, 'shards', String(i)))).join(' ')} --force -o ${sh(path.join(dir, 'search'))}`,
    `${tme} peaks ${sh(path.join(dir, 'search'))} -o ${sh(path.join(dir, 'search', 'picks.tsv'))}`,
    '',
  ].join('\n');
  writeFileAtomic(path.join(slurmDir, 'match.sbatch'), match);
  writeFileAtomic(path.join(slurmDir, 'merge.sbatch'), finish);
  fs.chmodSync(path.join(slurmDir, 'match.sbatch'), 0o755);
  fs.chmodSync(path.join(slurmDir, 'merge.sbatch'), 0o755);

  const say = (line: string): void => { if (!flags.quiet) process.stdout.write(`${line}\n`); };
  say(`${slurmDir}: ${tiles ? `${tileCount ?? '?'} tiles` : `${setup.rotationCount} rotations`} in ${shards} shards (${cpus} CPU${cpus === 1 ? '' : 's'}${gpus ? `, ${gpus} GPU${gpus === 1 ? '' : 's'}` : ''}, ${memMiB} MiB each): match.sbatch, merge.sbatch`);
  if (!flags.submit) {
    say(`submit: id=$(sbatch --parsable ${sh(path.join(slurmDir, 'match.sbatch'))}) && sbatch --dependency=afterok:$id ${sh(path.join(slurmDir, 'merge.sbatch'))}`);
    return;
  }
  const sbatch = (args: string[]): string => {
    const r = spawnSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' });
    if (r.error) throw new TmeError('ERR_TME_IO', `cannot run sbatch (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): is SLURM on this machine?`);
    if (r.status !== 0) throw new TmeError('ERR_TME_IO', `sbatch refused the job: ${(r.stderr || r.stdout).trim().split('\n')[0]}`, { file: args[args.length - 1] });
    return r.stdout.trim().split(';')[0] as string;
  };
  const matchId = sbatch([path.join(slurmDir, 'match.sbatch')]);
  const mergeId = sbatch([`--dependency=afterok:${matchId}`, path.join(slurmDir, 'merge.sbatch')]);
  writeFileAtomic(path.join(slurmDir, 'jobs.json'), `${JSON.stringify({ match: matchId, merge: mergeId }, null, 2)}\n`);
  say(`submitted: shards ${matchId} (array 0-${shards - 1}), merge and peaks ${mergeId} after them → ${path.join(dir, 'search')}`);
}

export function register(program: Command): void {
  const cmd = program
    .command('slurm')
    .description('Run a search as a SLURM array of shards (tme match --shard i/n) and a job after them that merges them (tme merge) and calls the peaks: writes the batch scripts, and submits them with --submit');
  addMatchOptions(cmd)
    .requiredOption('--shards <n>', 'array tasks: the search is split into n equal parts of its rotations (of its tiles with --shard-by tiles)')
    .option('--shard-by <what>', 'what the shards split: rotations (default) or tiles (a tomogram too large for one device; give --tile so every node plans the same tiles)')
    .option('--cpus-per-task <n>', 'CPUs per task, the threads of each shard (default: --threads, else 1)')
    .option('--mem <size>', 'memory per task, e.g. 8G (default: this machine\'s forecast of one shard, plus a quarter)')
    .option('--gpus-per-task <n>', 'GPUs per task (with --device gpu)')
    .option('--partition <name>', 'SLURM partition')
    .option('--time <limit>', 'SLURM time limit per task, e.g. 4:00:00')
    .option('--account <name>', 'SLURM account')
    .option('--submit', 'submit the scripts with sbatch (the merge after the array: --dependency=afterok)')
    .option('--force', 'write the scripts again over an earlier tme slurm in the output folder')
    .option('--quiet', 'print nothing but errors')
    .requiredOption('-o, --output <dir>', 'job folder: slurm/ (scripts, logs), shards/0…n-1, and search/ (the merged search and its picks)')
    .action(async (flags: SlurmFlags) => runSlurm(flags, commandLine()));
}
