import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { CHECKPOINT_FILE, JOB_FILES } from '@tme/engine';
import {
  STOPGAP_FILE, WARP_FILE, formatStopgapMotl, randomSubsetOf, stopgapMotlRows, warpMatchingTable, warpStarFile, type StarLoopTable,
} from '@tme/export';
import { TmeError, formatStar, invalidOption, readStar, starBlock, writeFileAtomic, writeStar, type StarBlock, type StarFile } from '@tme/formats';
import { parseRelionTomograms } from '@tme/search';
import type { RunFormat } from '../pipeline';
import { addMatchOptions, createFolder } from './match';
import { addPeakOptions } from './peaks';
import { readJobDefaults, readPicksTsv } from './export';
import { addRunOutputOptions, parseFormats, parseRunBox, runAll, type RunFlags } from './run';
import { mergeTomogramShards, runSlurmTask, writeBatchSlurm, type BatchSlurmFlags } from './batch-slurm';
import { commandLine } from '../command-line';

/** One tomogram of a batch: its name (the job folder and rlnTomoName), the file matched, and its tilt metadata. */
interface BatchEntry { name: string; target: string; tiltAngles?: string; tomoName?: string }

const safeName = (file: string): string => path.basename(file).replace(/\.[^.]+$/, '').replace(/[^A-Za-z0-9._+-]/g, '_');

/** `*` and `?` in the last path element (Node 20 has no fs.glob). */
function globFiles(pattern: string): string[] {
  const dir = path.dirname(pattern);
  const re = new RegExp(`^${path.basename(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  if (!fs.existsSync(dir)) throw new TmeError('ERR_TME_IO', 'no such folder', { file: dir });
  return fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f));
}

/** RELION writes paths relative to its project folder, an ancestor of the STAR's: the first that exists, looking
 *  up from the STAR's folder (else as given, relative to it). */
function projectPath(recorded: string, star: string): string {
  if (path.isAbsolute(recorded)) return recorded;
  for (let dir = path.dirname(path.resolve(star)); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, recorded))) return path.join(dir, recorded);
    if (path.dirname(dir) === dir) break;
  }
  return path.resolve(path.dirname(star), recorded);
}

/**
 * The tomograms a manifest names: a RELION 5 tomograms.star (each row's rlnTomoReconstructedTomogram, with the row as
 * its tilt metadata), a text list of tomogram files (one a line, # comments, relative to the list), or a glob.
 */
export function readManifest(manifest: string): BatchEntry[] {
  let entries: BatchEntry[];
  if (/[*?]/.test(path.basename(manifest))) {
    entries = globFiles(manifest).map((target) => ({ name: safeName(target), target: path.resolve(target) }));
    if (entries.length === 0) throw new TmeError('ERR_TME_IO', 'matches no file', { file: manifest });
  } else if (manifest.toLowerCase().endsWith('.star')) {
    const text = fs.readFileSync(manifest, 'utf8');
    const rows = parseRelionTomograms(text, { file: manifest });
    entries = rows.map((row) => {
      if (row.reconstructedTomogram === undefined) {
        throw new TmeError('ERR_TME_FORMAT', `tomogram ${row.name} has no rlnTomoReconstructedTomogram (the file to match)`, { file: manifest });
      }
      const target = projectPath(row.reconstructedTomogram, manifest);
      return { name: row.name.replace(/[^A-Za-z0-9._+-]/g, '_'), target, tiltAngles: path.resolve(manifest), tomoName: row.name };
    });
  } else {
    const lines = fs.readFileSync(manifest, 'utf8').split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
    entries = lines.map((l) => { const target = path.resolve(path.dirname(manifest), l); return { name: safeName(target), target }; });
  }
  if (entries.length === 0) throw new TmeError('ERR_TME_FORMAT', 'names no tomogram', { file: manifest });
  const seen = new Map<string, string>();
  for (const e of entries) {
    if (!fs.existsSync(e.target)) throw new TmeError('ERR_TME_IO', `names ${e.target}, which does not exist`, { file: manifest });
    const other = seen.get(e.name);
    if (other !== undefined) throw new TmeError('ERR_TME_MISMATCH', `names two tomograms called ${e.name} (${other}, ${e.target}): their job folders would collide`, { file: manifest });
    seen.set(e.name, e.target);
  }
  return entries;
}

/** The file each of tme run's outputs ends with. */
const OUTPUT_FILE: Record<RunFormat, string> = {
  tsv: 'picks.tsv', relion: path.join('relion', 'particles.star'), imod: path.join('imod', 'picks.mod'), report: 'report.html',
};

/** A tomogram's job is done when its job and every output asked for are written (tme run exports after the job). */
function finished(dir: string, formats: readonly RunFormat[]): boolean {
  return [JOB_FILES.job, ...formats.map((f) => OUTPUT_FILE[f])].every((file) => fs.existsSync(path.join(dir, file)));
}

/**
 * One particles STAR for the whole set: each tomogram's rows (their subtomogram paths made relative to the batch
 * folder), one optics group per distinct optics row.
 */
function combineParticles(out: string, names: readonly string[]): number {
  let optics: StarBlock | undefined;
  let particles: StarBlock | undefined;
  const opticsRows: string[][] = [];
  let rows = 0;
  for (const name of names) {
    const file = path.join(out, name, 'relion', 'particles.star');
    if (!fs.existsSync(file)) continue;
    const star = readStar(file);
    const o = starBlock(star, 'optics');
    const p = starBlock(star, 'particles');
    const oLoop = o?.loops[0];
    const pLoop = p?.loops[0];
    if (!o || !p || !oLoop || !pLoop) throw new TmeError('ERR_TME_FORMAT', 'has no optics and particles tables', { file });
    optics ??= { ...o, loops: [{ labels: oLoop.labels, rows: [] }] };
    particles ??= { ...p, loops: [{ labels: pLoop.labels, rows: [] }] };
    const [combinedOptics, combinedParticles] = [optics.loops[0], particles.loops[0]];
    if (!combinedOptics || !combinedParticles || combinedOptics.labels.join() !== oLoop.labels.join() || combinedParticles.labels.join() !== pLoop.labels.join()) {
      throw new TmeError('ERR_TME_MISMATCH', 'has other columns than the first tomogram\'s particles.star', { file });
    }
    const groupColumn = oLoop.labels.indexOf('rlnOpticsGroup');
    const nameColumn = oLoop.labels.indexOf('rlnOpticsGroupName');
    const groupOf = new Map<string, string>();
    for (const row of oLoop.rows) {
      const key = row.filter((_, i) => i !== groupColumn && i !== nameColumn).join('\t');
      let found = opticsRows.findIndex((r) => r.filter((_, i) => i !== groupColumn && i !== nameColumn).join('\t') === key);
      if (found < 0) {
        const fresh = [...row];
        fresh[groupColumn] = String(opticsRows.length + 1);
        if (nameColumn >= 0) fresh[nameColumn] = `opticsGroup${opticsRows.length + 1}`;
        opticsRows.push(fresh);
        found = opticsRows.length - 1;
      }
      groupOf.set(row[groupColumn] as string, String(found + 1));
    }
    const image = pLoop.labels.indexOf('rlnImageName');
    const ctf = pLoop.labels.indexOf('rlnCtfImage');
    const group = pLoop.labels.indexOf('rlnOpticsGroup');
    // Halves alternate over the whole set (each tomogram's own alternate from its first particle: three tomograms of
    // one particle each would be one half).
    const half = pLoop.labels.indexOf('rlnRandomSubset');
    for (const row of pLoop.rows) {
      const r = [...row];
      for (const c of [image, ctf]) if (c >= 0) r[c] = path.join(name, 'relion', r[c] as string);
      if (group >= 0) r[group] = groupOf.get(r[group] as string) ?? (r[group] as string);
      if (half >= 0) r[half] = String(randomSubsetOf(rows));
      combinedParticles.rows.push(r);
      rows++;
    }
  }
  if (!optics || !particles || !optics.loops[0]) return 0;
  optics.loops[0].rows = opticsRows;
  const combined: StarFile = { blocks: [optics, particles] };
  writeFileAtomic(path.join(out, 'particles.star'), formatStar(combined, path.join(out, 'particles.star')));
  return rows;
}

/**
 * STOPGAP's motive list and Warp's template-matching table for the whole set, from each tomogram's picks.tsv and
 * job.json (geometry, name): tomo_num is the tomogram's place in the manifest (1-based, stable across reruns),
 * motl_idx runs over the set; Warp reads one table with many tilt series (it groups by rlnMicrographName). Both are
 * rebuilt from the per-tomogram outputs on every run, so they are not part of a tomogram's "finished" check.
 */
function combineTables(out: string, entries: readonly BatchEntry[]): number {
  const motl: string[][] = [];
  const warp: StarLoopTable[] = [];
  entries.forEach((e, k) => {
    const tsv = path.join(out, e.name, 'picks.tsv');
    if (!fs.existsSync(tsv)) return;
    const job = readJobDefaults(tsv);
    if (job?.targetShape === undefined || job.voxelSize === undefined) {
      throw new TmeError('ERR_TME_FORMAT', `records no target shape and voxel size (${WARP_FILE} needs them)`, { file: job?.file ?? path.join(out, e.name, 'job.json') });
    }
    const picks = readPicksTsv(tsv);
    motl.push(...stopgapMotlRows(picks, { tomogramNumber: k + 1, firstIndex: motl.length + 1 }));
    warp.push(warpMatchingTable(picks, { shape: job.targetShape, voxelSize: job.voxelSize, name: e.tomoName ?? job.tomoName ?? e.name }));
  });
  if (warp.length === 0) return 0;
  writeFileAtomic(path.join(out, STOPGAP_FILE), formatStopgapMotl(motl));
  writeStar(path.join(out, WARP_FILE), warpStarFile(warp));
  return motl.length;
}

interface BatchFlags extends RunFlags, BatchSlurmFlags { resume?: boolean }

/** The flags that only mean something with --slurm: refused without it rather than ignored. */
const SLURM_ONLY = {
  shards: '--shards', shardBy: '--shard-by', slurmConfig: '--slurm-config', partition: '--partition', account: '--account', time: '--time', module: '--module',
  cpusPerTask: '--cpus-per-task', mem: '--mem', gpusPerTask: '--gpus-per-task', relionRefine: '--relion-refine', relionRanks: '--relion-ranks', submit: '--submit',
} as const;

/** `tme batch MANIFEST -o OUT`: tme run on every tomogram into OUT/<name>, resumable, and one particles STAR. */
async function runBatch(manifest: string, flags: BatchFlags): Promise<void> {
  const entries = readManifest(manifest);
  if (entries.some((e) => e.tiltAngles !== undefined)) {
    for (const [flag, value] of [['--tilt-range', flags.tiltRange], ['--tilt-angles', flags.tiltAngles], ['--tomo-name', flags.tomoName]] as const) {
      if (value !== undefined) throw invalidOption(flag, `nothing: a tomograms.star gives each tomogram's tilts and name`, value, manifest);
    }
  }
  const formats = parseFormats(flags.formats);
  parseRunBox(flags.box, formats);
  const out = path.resolve(flags.output);
  const slurmMode = flags.slurm === true || flags.slurmTask !== undefined || flags.slurmFinish === true;
  if (!slurmMode) {
    for (const [key, flag] of Object.entries(SLURM_ONLY)) {
      const v = flags[key as keyof typeof SLURM_ONLY];
      if (v !== undefined) throw invalidOption(flag, 'it only with --slurm', Array.isArray(v) ? v.join(',') : v);
    }
  }
  createFolder(out);
  if (flags.slurmTask !== undefined) return runSlurmTask(out, entries, flags);
  if (flags.slurm) return writeBatchSlurm(manifest, out, entries, flags, commandLine());
  // The SLURM finish job: the array's shards become each tomogram's job; the loop below picks and exports from it.
  if (flags.slurmFinish) mergeTomogramShards(out, entries, flags);
  const say = (line: string): void => { if (!flags.quiet) process.stdout.write(`${line}\n`); };
  const failed: string[] = [];
  for (const [k, e] of entries.entries()) {
    const dir = path.join(out, e.name);
    const label = `tme batch: ${k + 1}/${entries.length} ${e.name}`;
    if (finished(dir, formats) && !flags.force) {
      say(`${label}: done earlier, skipped`);
      continue;
    }
    // An interrupted tomogram continues from its checkpoint; a folder without one starts over.
    const resume = !flags.force && fs.existsSync(path.join(dir, CHECKPOINT_FILE));
    // After SLURM's array the search is there (merged): only its picks and exports are left to make.
    const fromJob = flags.slurmFinish === true && fs.existsSync(path.join(dir, JOB_FILES.job));
    try {
      await runAll({
        ...flags, target: e.target, output: dir, fromJob, resume: resume && !fromJob,
        force: flags.force === true || fromJob || (!resume && fs.existsSync(dir)),
        ...(e.tiltAngles !== undefined ? { tiltAngles: e.tiltAngles, tomoName: e.tomoName } : {}),
      });
      say(`${label}: ${resume ? 'resumed and ' : ''}finished`);
    } catch (err) {
      if (err instanceof TmeError && err.code === 'ERR_TME_CANCELLED') throw err;
      failed.push(`${e.name}: ${err instanceof TmeError ? err.oneLine : String(err)}`);
      process.stderr.write(`tme: ${dir}: ${err instanceof TmeError ? err.oneLine : String(err)}\n`);
    }
  }
  const rows = combineParticles(out, entries.map((e) => e.name));
  const listed = combineTables(out, entries);
  const tables = listed > 0 ? `; ${listed} picks of picks.tsv in ${STOPGAP_FILE} (STOPGAP) and ${WARP_FILE} (Warp)` : '';
  say(`tme batch: ${entries.length - failed.length} of ${entries.length} tomograms finished; ${rows} particles in ${path.join(out, 'particles.star')}${tables}`);
  if (failed.length > 0) throw new TmeError('ERR_TME_IO', `${failed.length} tomogram${failed.length === 1 ? '' : 's'} failed (rerun the same command to retry them): ${failed.join('; ')}`, { file: out });
}

export function register(program: Command): void {
  const cmd = program
    .command('batch')
    .description('tme run on every tomogram of a manifest (RELION 5 tomograms.star, a list of files, or a glob) into OUT/<name>, resumable, and one particles STAR, STOPGAP motive list and Warp table for the set')
    .argument('<manifest>', 'tomograms.star (each row\'s rlnTomoReconstructedTomogram, its tilt series as metadata), a text list (one tomogram a line), or a glob such as "tomos/*.mrc" (quoted)');
  addMatchOptions(cmd, { target: false });
  addPeakOptions(cmd);
  addRunOutputOptions(cmd)
    .option('--force', 'run every tomogram again, finished ones too')
    .option('--quiet', 'print nothing but errors')
    .option('--progress', 'draw progress even when stderr is not a terminal or CI is set')
    .option('--slurm', 'write SLURM scripts instead of running here: an array of one task per (tomogram, shard), a job after it (afterok) that merges, calls the picks, exports and runs relion_reconstruct, and RELION\'s auto-refine after that; --submit submits them')
    .option('--shards <n>', 'with --slurm: array tasks per tomogram, each a part of its rotations (default 1)')
    .option('--shard-by <what>', 'with --slurm: what the shards split, rotations (default) or tiles (a tomogram too large for one device; give --tile)')
    .option('--slurm-config <file>', 'with --slurm: key = value lines for partition, account, time, module (repeatable), cpus-per-task, mem, gpus-per-task; flags win')
    .option('--partition <name>', 'with --slurm: SLURM partition')
    .option('--account <name>', 'with --slurm: SLURM account')
    .option('--time <limit>', 'with --slurm: SLURM time limit per job, e.g. 4:00:00')
    .option('--module <name>', 'with --slurm: a `module load` line in every script (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--cpus-per-task <n>', 'with --slurm: CPUs per task, the threads of each (default: --threads, else 1)')
    .option('--mem <size>', 'with --slurm: memory per task, e.g. 8G (default: tme estimate\'s forecast of the largest task on this machine, plus a quarter)')
    .option('--gpus-per-task <n>', 'with --slurm: GPUs per task (with --device gpu)')
    .option('--relion-refine <recipe>', 'with --slurm: refine.sbatch\'s relion_refine_mpi recipe: local (default; starts at healpix order 4 from the picked angles), global (healpix order 2), or none (no script)')
    .option('--relion-ranks <n>', 'with --slurm: MPI ranks of relion_refine_mpi (≥ 3; default 3)')
    .option('--submit', 'with --slurm: submit the scripts with sbatch (again after a failed or killed task: finished tasks are skipped, the rest resume)')
    .addOption(new Option('--slurm-task <k>', 'run array task k (what match.sbatch runs)').hideHelp())
    .addOption(new Option('--slurm-finish', 'merge, pick and export after the array (what finish.sbatch runs)').hideHelp())
    .requiredOption('-o, --output <dir>', 'batch folder: one job folder per tomogram, particles.star, stopgap.star and warp.star')
    .action(async (manifest: string, flags: BatchFlags) => runBatch(manifest, flags));
}
