import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, invalidOption, isTmeError, removeStaleTemporaries, type Volume } from '@tme/formats';
import {
  CHECKPOINT_FILE, JOB_FILES, JOB_LOCK_FILE, OUT_OF_CORE_PARTIAL, TEMPLATE_INDEX_FILE, devicesLabel, isRegionSource, lockJobFolder, matchTemplate, matchTemplateOutOfCore, writeJob,
  type MatchResult, type OutOfCoreMatchResult,
} from '@tme/engine';
import { SEARCH_DEFAULTS, planSearch, type SearchInput, type SearchPlan } from '@tme/search';
import { createProgressRenderer } from '../progress';
import { addSearchFlags, searchInput, type SearchFlags } from '../search-flags';
import { VERSION } from '../version';
import { memorySize } from '../units';

/** The highest value of a score map (an indexed loop: for-of's iterator took 1.3 s over a 512×512×200 map). */
export function bestScoreOf(data: ArrayLike<number>): number {
  let best = -Infinity;
  for (let i = 0; i < data.length; i++) if ((data[i] as number) > best) best = data[i] as number;
  return best;
}

export interface MatchFlags extends SearchFlags {
  resume?: boolean;
  force?: boolean;
  quiet?: boolean;
  progress?: boolean;
  output: string;
  /**
   * Seconds between checkpoints of a running match (default 30; 0 = after every batch of rotations). Hidden from
   * --help (a tuning knob for tests and very slow devices); documented here.
   */
  checkpointInterval?: string;
}

function parseSeconds(name: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0) throw invalidOption(name, 'a number ≥ 0', text);
  return v;
}

/**
 * Refuses to overwrite a job unless --force (clears tme's files) or --resume (continues from the checkpoint). Returns
 * the warning it printed, if any.
 */
export function prepareJobDir(dir: string, flags: Pick<MatchFlags, 'force' | 'resume'>, options: { resumable?: boolean } = {}): string[] {
  if (flags.force && flags.resume) throw invalidOption('--force/--resume', 'only one of --force and --resume', 'both');
  const existed = fs.existsSync(dir);
  if (existed) {
    if (!fs.statSync(dir).isDirectory()) throw new TmeError('ERR_TME_EXISTS', 'exists and is not a folder', { file: dir });
    if (flags.resume) {
      if (fs.existsSync(path.join(dir, JOB_FILES.job))) {
        throw new TmeError('ERR_TME_EXISTS', 'holds a finished job; use --force to run it again', { file: dir });
      }
    } else if (!flags.force) {
      // A command without --resume (tme merge) does not offer it.
      throw new TmeError('ERR_TME_EXISTS', `output folder exists; use --force to overwrite it${options.resumable === false ? '' : ' or --resume to continue its job'}`, { file: dir });
    }
  }
  createFolder(dir);
  // One run per job folder (before --force removes anything another run may be writing); then what killed runs
  // left half-written goes.
  lockJobFolder(dir);
  removeStaleTemporaries(dir);
  if (existed && flags.force) {
    for (const name of [...Object.values(JOB_FILES), TEMPLATE_INDEX_FILE, CHECKPOINT_FILE, ...Object.values(OUT_OF_CORE_PARTIAL)]) fs.rmSync(path.join(dir, name), { force: true });
  }
  if (existed && flags.resume && !fs.existsSync(path.join(dir, CHECKPOINT_FILE))) {
    // Partial maps of an out-of-core run killed before its first checkpoint: no checkpoint names their tiles, so no run
    // can continue them, and one that now matches in memory would never overwrite them.
    for (const name of Object.values(OUT_OF_CORE_PARTIAL)) fs.rmSync(path.join(dir, name), { force: true });
    const warning = `${dir}: no checkpoint to resume (the earlier run stopped before writing one); starting from the first rotation`;
    process.stderr.write(`tme: warning: ${warning}\n`);
    return [warning];
  }
  return [];
}

/**
 * mkdir -p that fails with one clear ERR_TME_IO line (and leaves none of the folders it made) instead of an internal
 * error. Not `fs.mkdirSync(dir, { recursive: true })`: Node 20 loops forever on it under /proc (a parent that
 * exists but refuses mkdir with ENOENT), and its ENOTDIR/EACCES errors are raw.
 */
export function createFolder(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  if (fs.existsSync(at) && !fs.statSync(at).isDirectory()) {
    throw new TmeError('ERR_TME_IO', `cannot create the output folder: ${at} is a file, not a folder`, { file: dir });
  }
  const made: string[] = [];
  try {
    for (const d of missing) {
      fs.mkdirSync(d);
      made.push(d);
    }
  } catch (err) {
    for (const d of made.reverse()) fs.rmSync(d, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const why: Record<string, string> = {
      EACCES: 'permission denied', EPERM: 'permission denied', EROFS: 'read-only file system', ENOSPC: 'no space left',
      ENOENT: 'its parent does not accept new folders',
    };
    throw new TmeError('ERR_TME_IO', `cannot create the output folder (${why[code] ?? code})`, { file: dir, cause: err });
  }
}

/** A planned search and the job folder it will be written to. */
export interface MatchSetup extends SearchPlan {
  dir: string;
  /** Whether this run made the job folder (so a run that leaves nothing in it may remove it again). */
  createdDir: boolean;
  /** The warnings the set-up gave (printed unless --quiet), for job.json and the job's report. */
  warnings: string[];
  /**
   * Aborted by a Ctrl-C from the moment the job folder is made: a signal between making it and matching must cancel
   * the way one during matching does (without a listener the default action kills the process mid-set-up).
   */
  cancel: { controller: AbortController; onSigint: () => void };
}

/**
 * Plans the search the flags describe (@tme/search checks every value and reads the inputs), then makes the job
 * folder. A header's doubts (a voxel size taken as 1 Å) are said once per file, on stderr, unless --quiet.
 */
export async function setupMatch(flags: MatchFlags, options: { createDir?: boolean; holdsTarget?: string } = {}): Promise<MatchSetup> {
  if (flags.checkpointInterval !== undefined) parseSeconds('--checkpoint-interval', flags.checkpointInterval);
  if (flags.background === 'random-phase' && flags.resume) {
    throw invalidOption('--background', 'none or rotation-stats with --resume (random-phase runs two searches and keeps no checkpoint)', flags.background);
  }
  return setupSearch(searchInput(flags), flags.output, { ...flags, ...options });
}

/** Plans a typed search (the example's, a job's stored one) into the job folder `output`. */
export async function setupSearch(
  input: SearchInput, output: string, o: {
    force?: boolean; resume?: boolean; quiet?: boolean; createDir?: boolean;
    /** The command, when it holds the tomogram whole (inMemoryTarget): refused before the job folder is made. */
    holdsTarget?: string;
  },
): Promise<MatchSetup> {
  if (o.force && o.resume) throw invalidOption('--force/--resume', 'only one of --force and --resume', 'both');
  const warnings: string[] = [];
  const plan = await planSearch(input, {
    onWarning: (message, file) => {
      warnings.push(`${file}: ${message}`);
      if (!o.quiet) process.stderr.write(`tme: warning: ${file}: ${message}\n`);
    },
  });
  if (o.holdsTarget !== undefined) inMemoryTarget(plan, o.holdsTarget);
  const dir = path.resolve(output);
  const createDir = o.createDir ?? true;
  const createdDir = createDir && !fs.existsSync(dir);
  const controller = new AbortController();
  const cancel = { controller, onSigint: (): void => controller.abort() };
  if (createDir) {
    process.once('SIGINT', cancel.onSigint);
    try {
      warnings.push(...prepareJobDir(dir, o));
    } catch (err) {
      process.removeListener('SIGINT', cancel.onSigint);
      throw err;
    }
  }
  return { ...plan, dir, createdDir, warnings, cancel };
}

/**
 * The target of a search that holds it whole (tme run and tme example cut subtomograms from it and call peaks on the
 * maps in memory): one that only fits out of core is refused before anything runs, in one line.
 */
export function inMemoryTarget(setup: SearchPlan, command: string): Volume {
  const { target, memory } = setup;
  if (!isRegionSource(target)) return target;
  throw new TmeError('ERR_TME_DEVICE_MEMORY',
    `matching in memory needs ${memorySize(memory.inMemoryBytes)} but ${memory.limit ? `--memory allows ${memorySize(memory.availableBytes)}` : `${memorySize(memory.availableBytes)} is free`}; `
    + `${command} holds the tomogram and its maps whole: run tme match (it matches out of core), then tme peaks and tme export on its job folder`, { file: target.file });
}

/** The result of a search inMemoryTarget let through: its maps are in memory. */
export function inMemoryResult(result: MatchResult | OutOfCoreMatchResult): MatchResult {
  if ('outOfCore' in result) throw new TmeError('ERR_TME_INTERNAL', 'a search matched out of core where its maps were to be held');
  return result;
}


/** Runs a prepared match with progress, Ctrl-C → checkpoint, and writes the job folder. */
export async function executeMatch(
  setup: MatchSetup, flags: Pick<MatchFlags, 'resume' | 'quiet' | 'progress' | 'checkpointInterval'>, command = 'tme match',
  options: { keepFilteredTarget?: boolean } = {},
): Promise<MatchResult | OutOfCoreMatchResult> {
  const { dir, job } = setup;
  const intervalSeconds = flags.checkpointInterval === undefined ? undefined : parseSeconds('--checkpoint-interval', flags.checkpointInterval);
  const { controller, onSigint } = setup.cancel;
  const onLateSigint = (): void => { process.stderr.write(`tme: ${dir}: the search had finished; its results are written whole\n`); };
  process.removeListener('SIGINT', onSigint);
  process.once('SIGINT', onSigint);
  const progress = createProgressRenderer({ quiet: flags.quiet, force: flags.progress });
  let result: MatchResult | OutOfCoreMatchResult;
  try {
    if (isRegionSource(job.target) && flags.checkpointInterval !== undefined) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `Expected no --checkpoint-interval for a tomogram matched out of core (it checkpoints after each tile) but received ${flags.checkpointInterval}`);
    }
    result = isRegionSource(job.target)
      // Out of core the maps are assembled in the job folder tile by tile, with a checkpoint after each tile.
      ? await matchTemplateOutOfCore(job, { scores: path.join(dir, JOB_FILES.scores), rotations: path.join(dir, JOB_FILES.rotations) }, {
        signal: controller.signal, onProgress: (p) => progress.update(p), onFilterProgress: (p) => progress.filter(p), checkpoint: { dir, resume: flags.resume === true },
        ...(options.keepFilteredTarget ? { keepFilteredTarget: true } : {}),
      })
      : await matchTemplate(job, {
        signal: controller.signal,
        onProgress: (p) => progress.update(p),
        // random-phase's two searches keep no checkpoint (the engine refuses one rather than ignore it).
        ...(job.background === 'random-phase' ? {} : { checkpoint: { dir, resume: flags.resume === true, intervalSeconds } }),
      });
  } catch (err) {
    const kept = fs.existsSync(path.join(dir, CHECKPOINT_FILE));
    // Nothing to resume and a folder this run made: leave no empty job folder behind.
    if (!kept && setup.createdDir && fs.existsSync(dir) && fs.readdirSync(dir).every((n) => n === JOB_LOCK_FILE)) fs.rmSync(dir, { recursive: true });
    if (isTmeError(err, 'ERR_TME_CANCELLED')) {
      throw new TmeError('ERR_TME_CANCELLED', kept
        ? 'cancelled; the last checkpoint is kept: continue with the same command and --resume'
        : isRegionSource(job.target)
          ? 'cancelled before the first tile finished (out of core a checkpoint follows each tile); nothing was kept'
          : 'cancelled before the first batch of rotations finished; nothing was kept', { file: dir });
    }
    throw err;
  } finally {
    progress.stop();
    // From here on the job is written whole: a Ctrl-C now is answered, not obeyed (without a listener the default
    // action would kill the process between two files and leave a temporary file behind).
    process.on('SIGINT', onLateSigint);
    process.removeListener('SIGINT', onSigint);
  }
  writeJob(dir, result, { tmeVersion: VERSION, inputs: { ...setup.inputs, command, warnings: setup.warnings }, search: { ...setup.options } });
  // A signal that came during the (synchronous) write is delivered on the next turn; after it, Ctrl-C stops what
  // follows (tme run's peaks and export) the default way again.
  await new Promise<void>((resolve) => setImmediate(resolve));
  process.removeListener('SIGINT', onLateSigint);
  if (!flags.quiet) {
    const best = 'outOfCore' in result ? result.outOfCore.bestScore : bestScoreOf(result.scores.data);
    const tiles = result.tilePlan.tiles.length;
    process.stdout.write(
      `${dir}: ${setup.rotationCount} rotations${setup.moreTemplates ? ` of ${setup.moreTemplates.length + 1} templates` : ''} × ${tiles} tile${tiles === 1 ? '' : 's'} on ${devicesLabel(result.devices)} in ` +
      `${(result.timings.totalMs / 1000).toFixed(1)} s${result.resumed ? ' (resumed)' : ''}${'outOfCore' in result ? ' (out of core)' : ''}; best score ${best.toFixed(4)}, ` +
      `mean ${result.stats.mean.toFixed(4)} ± ${result.stats.std.toFixed(4)}` +
      `${result.stats.scope === 'tile' ? ' (statistics over whole tiles, padding included)' : ''}` +
      `${result.priors ? `; priors: ${result.priors.rotationsMatched} of ${result.priors.rotationsWithout} rotation·tile steps matched, ${result.priors.voxelsSearched} voxels searched` : ''}\n`,
    );
  }
  return result;
}

/** The options every command that matches shares (match, run, estimate, slurm, batch). */
export function addMatchOptions(cmd: Command, options: { target?: boolean } = {}): Command {
  return addSearchFlags(cmd, options);
}

async function runMatch(flags: MatchFlags): Promise<void> {
  const setup = await setupMatch(flags);
  await executeMatch(setup, flags);
}

export function register(program: Command): void {
  const cmd = program
    .command('match')
    .description('Search a tomogram for a template over all rotations; writes scores.mrc, rotations.mrc, angles.tsv and job.json into a job folder');
  addMatchOptions(cmd)
    .option('--resume', 'continue the job in the output folder from its checkpoint')
    .option('--force', 'overwrite the job in the output folder')
    .option('--quiet', 'print nothing but errors')
    .option('--progress', 'draw progress even when stderr is not a terminal or CI is set')
    .option('--shard <i/n>', 'search only the i-th (from 0) of n equal parts of the rotations (or tiles: --shard-by), e.g. a SLURM array task\'s; tme merge joins the n job folders into the one a whole search writes')
    .option('--shard-by <what>', `what --shard splits: rotations (each shard searches the whole target) or tiles (each searches every rotation on its part of the tile plan: a tomogram too large for one device; give --tile so every node plans the same tiles) (default: ${SEARCH_DEFAULTS.shardBy})`)
    .requiredOption('-o, --output <dir>', 'job folder to create')
    .action(async (flags: MatchFlags) => runMatch(flags));
}
