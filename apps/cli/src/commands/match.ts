import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import {
  TmeError, invalidOption, isTmeError, parseNpy, readEmHeader, readMrcHeader, readVolume, removeStaleTemporaries, volumeFormatOf, type Volume, type Zyx,
} from '@tme/formats';
import {
  ANGULAR_STEP_RANGE, measureCovering, readRotationList, rotationsFromQuaternionArray, sampleRotations,
  type RotationListConvention,
} from '@tme/rotations';
import {
  CHECKPOINT_FILE, JOB_FILES, JOB_LOCK_FILE, PAD_MODES, SCORE_NAMES, devicesLabel, listDevices, lockJobFolder, matchTemplate, resolveDevices, resolvePadMode, resolveScore,
  writeJob, type DeviceSelection, type DeviceSpec, type Interpolation, type MatchJob, type MatchResult, type RotationMode,
} from '@tme/engine';
import { createProgressRenderer } from '../progress';
import { gib } from '../units';
import { buildTemplateFilter } from '@tme/template';
import { addSearchOptions, isDefocusFile, prepareSearch, type SearchFilters, type SearchFlags } from '../search-options';
import { VERSION } from '../version';

export interface MatchFlags extends SearchFlags {
  target: string;
  template: string;
  templateMask?: string;
  maskRadius?: string;
  targetMask?: string;
  /** Required unless `rotations` is given; with it, the scale of the orientation refinement. */
  angularStep?: string;
  /** A rotation list searched instead of a sampled set (TSV/CSV of Euler angles or matrices, or pyTME's .npy). */
  rotations?: string;
  rotationsConvention?: string;
  symmetry: string;
  score: string;
  device: string;
  threads?: string;
  tile: string;
  /** Host memory the job may use ("8G", "512M", bytes); default: what is free. */
  memory?: string;
  /** `i/n`: the i-th (from 0) of n contiguous parts of the rotation set (tme match only; `tme merge` joins them). */
  shard?: string;
  padTarget: string;
  interpolation: string;
  rotationMode: string;
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

function parseNumber(name: string, text: string, min: number, max = Infinity): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
    throw invalidOption(name, max === Infinity ? `a number ≥ ${min}` : `a number in [${min}, ${max}]`, text);
  }
  return v;
}

/** A memory size as SLURM's --mem writes it: a number with K, M, G or T (binary units; "GiB", "GB" alike) or bytes. */
export function parseMemorySize(flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  const bytes = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : NaN;
  if (!(bytes >= 2 ** 20 && Number.isFinite(bytes))) throw invalidOption(flag, 'a memory size of at least 1M, like 8G, 512M or 16GiB', text);
  return Math.floor(bytes);
}

/**
 * Refuses, from its header alone, a target whose float32 copy and best-score and rotation maps (12 bytes a voxel)
 * cannot be held: reading a 16 GiB tomogram on a 24 GiB machine was killed by the kernel 47 s in, with no message.
 */
function checkTargetFits(file: string, limit: number | undefined): void {
  let shape: Zyx;
  try {
    shape = volumeFormatOf(file) === 'em' ? readEmHeader(file).shape : readMrcHeader(file).shape;
  } catch {
    return; // unreadable headers are reported by the read itself, in its words
  }
  const voxels = shape[0] * shape[1] * shape[2];
  const needed = 12 * voxels;
  const cpu = listDevices().devices.find((d) => d.index === 'cpu');
  const available = Math.min(limit ?? Infinity, cpu ? cpu.memoryBytes : Infinity);
  if (needed > available) {
    throw new TmeError('ERR_TME_DEVICE_MEMORY',
      `${[...shape].reverse().join('×')} voxels need ${gib(needed)} (the tomogram as float32 and its best-score and rotation maps) but `
      + `${limit !== undefined && limit <= (cpu?.memoryBytes ?? Infinity) ? `--memory allows ${gib(limit)}` : `${gib(available)} of memory is free`}; `
      + 'bin or crop it (tme does not yet match tomograms larger than memory)', { file });
  }
}

/** `--shard i/n`: the rotations [⌊i·N/n⌋, ⌊(i+1)·N/n⌋) of N, i from 0 (a SLURM array task's index). */
export function shardRange(text: string, rotations: number): [number, number] {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const [i, n] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(n >= 1 && i >= 0 && i < n)) throw invalidOption('--shard', 'i/n with 0 ≤ i < n (the i-th of n parts of the rotations, from 0)', text);
  if (n > rotations) throw invalidOption('--shard', `at most as many parts as rotations (${rotations})`, text);
  return [Math.floor((i * rotations) / n), Math.floor(((i + 1) * rotations) / n)];
}

/** What --device takes, for its help and its errors. */
export const DEVICE_CHOICES = 'auto, gpu, cpu, vulkan-cpu, a device index, gpu:all (every GPU), or a comma-separated list (e.g. 0,1 or 0,cpu) that splits the rotations across the devices';

export function parseDevice(text: string): DeviceSelection {
  if (text === 'gpu:all') return text;
  const specs: DeviceSpec[] = [];
  for (const part of text.split(',').map((s) => s.trim())) {
    if (part === 'auto' || part === 'gpu' || part === 'cpu' || part === 'vulkan-cpu') specs.push(part);
    else if (/^\d+$/.test(part)) specs.push(Number(part));
    else throw invalidOption('--device', DEVICE_CHOICES, text);
  }
  return specs.length === 1 ? specs[0] as DeviceSpec : specs;
}

/** Refuses a --device this machine does not have, in one line, before any input is read. */
export function checkDevices(selection: DeviceSelection, text: string): void {
  // 'auto' and 'cpu' always resolve (the CPU path is always listed): no need to enumerate devices for them.
  if (selection === 'auto' || selection === 'cpu') return;
  try {
    resolveDevices(selection);
  } catch (err) {
    if (!isTmeError(err, 'ERR_TME_NO_DEVICE')) throw err;
    throw new TmeError('ERR_TME_NO_DEVICE', `--device ${text}: ${err.message}; see tme devices`);
  }
}

export function parseTile(text: string): 'auto' | Zyx {
  if (text === 'auto') return 'auto';
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 3 || !parts.every((s) => /^\d+$/.test(s) && Number(s) >= 1)) {
    throw invalidOption('--tile', 'auto or Z,Y,X (three integers ≥ 1, voxels)', text);
  }
  return [Number(parts[0]), Number(parts[1]), Number(parts[2])];
}

/** Refuses to overwrite a job unless --force (clears tme's files) or --resume (continues from the checkpoint). */
export function prepareJobDir(dir: string, flags: Pick<MatchFlags, 'force' | 'resume'>): void {
  if (flags.force && flags.resume) throw invalidOption('--force/--resume', 'only one of --force and --resume', 'both');
  const existed = fs.existsSync(dir);
  if (existed) {
    if (!fs.statSync(dir).isDirectory()) throw new TmeError('ERR_TME_EXISTS', 'exists and is not a folder', { file: dir });
    if (flags.resume) {
      if (fs.existsSync(path.join(dir, JOB_FILES.job))) {
        throw new TmeError('ERR_TME_EXISTS', 'holds a finished job; use --force to run it again', { file: dir });
      }
    } else if (!flags.force) {
      throw new TmeError('ERR_TME_EXISTS', 'output folder exists; use --force to overwrite it or --resume to continue its job', { file: dir });
    }
  }
  createFolder(dir);
  // One run per job folder (before --force removes anything another run may be writing); then what killed runs
  // left half-written goes.
  lockJobFolder(dir);
  removeStaleTemporaries(dir);
  if (existed && flags.force) {
    for (const name of [...Object.values(JOB_FILES), CHECKPOINT_FILE]) fs.rmSync(path.join(dir, name), { force: true });
  }
  if (existed && flags.resume && !fs.existsSync(path.join(dir, CHECKPOINT_FILE))) {
    process.stderr.write(`tme: warning: ${dir}: no checkpoint to resume (the earlier run stopped before writing one); starting from the first rotation\n`);
  }
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

/** Everything a match needs, read and validated, before any device work. */
export interface MatchSetup {
  dir: string;
  job: MatchJob;
  /** The target as read (before its own filters): subtomograms are cut from it. */
  target: Volume;
  template: Volume;
  /** The microscope, tilt range and tomograms.star row the filters were made with. */
  filters: SearchFilters;
  /** The CTF zones along the defocus gradient: how many, per axis (z, y, x), the defocus change a zone may hold and
   *  the whole tomogram's (Å), and the handedness (0: off). */
  zones: { count: number; splits: readonly [number, number, number]; boundAngstrom: number; spanAngstrom: number; handedness: number };
  rotationCount: number;
  /** The typed --angular-step, or a rotation list's measured covering angle: the refinement's scale. */
  angularStep: number;
  inputs: Record<string, unknown>;
  /** Whether this run made the job folder (so a run that leaves nothing in it may remove it again). */
  createdDir: boolean;
}

/** Validates every option, then reads the inputs and prepares the template and filters. Creates the job folder. */
export async function setupMatch(flags: MatchFlags, options: { createDir?: boolean } = {}): Promise<MatchSetup> {
  // Validate every option before touching a file.
  const score = resolveScore(flags.score);
  const padTarget = resolvePadMode(flags.padTarget);
  if (flags.angularStep === undefined && flags.rotations === undefined) {
    throw invalidOption('--angular-step', `a number of degrees from ${ANGULAR_STEP_RANGE[0]} to ${ANGULAR_STEP_RANGE[1]} (or a rotation list, --rotations <file>)`, 'nothing');
  }
  const typedStep = flags.angularStep === undefined
    ? undefined : parseNumber('--angular-step', flags.angularStep, ANGULAR_STEP_RANGE[0], ANGULAR_STEP_RANGE[1]);
  const convention = parseConvention(flags);
  const device = parseDevice(flags.device);
  checkDevices(device, flags.device);
  const tile = parseTile(flags.tile);
  const threads = flags.threads === undefined ? undefined : parseNumber('--threads', flags.threads, 1);
  if (flags.checkpointInterval !== undefined) parseNumber('--checkpoint-interval', flags.checkpointInterval, 0);
  if (threads !== undefined && !Number.isInteger(threads)) throw invalidOption('--threads', 'integer ≥ 1', flags.threads);
  if (flags.interpolation !== 'linear' && flags.interpolation !== 'cubic') throw invalidOption('--interpolation', 'linear or cubic', flags.interpolation);
  if (flags.rotationMode !== 'real' && flags.rotationMode !== 'fourier') throw invalidOption('--rotation-mode', 'real or fourier', flags.rotationMode);
  if (flags.templateMask !== undefined && flags.maskRadius !== undefined) {
    throw invalidOption('--template-mask/--mask-radius', 'only one of --template-mask and --mask-radius', 'both');
  }
  const maskRadius = flags.maskRadius === undefined ? undefined : parseNumber('--mask-radius', flags.maskRadius, 0);
  if (maskRadius === 0) throw invalidOption('--mask-radius', 'a radius > 0 (Å)', flags.maskRadius);
  if (flags.force && flags.resume) throw invalidOption('--force/--resume', 'only one of --force and --resume', 'both');
  // Rotations first: a bad --symmetry or rotation list is a usage error and must not leave a folder behind.
  const set = flags.rotations === undefined
    ? sampleRotations({ angularStep: typedStep as number, symmetry: flags.symmetry, measure: false })
    : rotationsFromFile(flags.rotations, convention, flags.symmetry);
  const rotationRange = flags.shard === undefined ? undefined : shardRange(flags.shard, set.count);
  // With a list, the refinement's scale: the typed step, else the list's measured covering angle.
  const angularStep = typedStep ?? Math.min(ANGULAR_STEP_RANGE[1], Math.max(ANGULAR_STEP_RANGE[0], Number(set.coveringAngle.toFixed(2))));

  const dir = path.resolve(flags.output);
  const memoryLimit = flags.memory === undefined ? undefined : parseMemorySize('--memory', flags.memory);
  checkTargetFits(flags.target, memoryLimit);
  // A header's doubts (a voxel size taken as 1 Å, statistics that do not match the data) are said once per file,
  // before anything is matched, on the run's one warning channel: stderr, unless --quiet.
  const read = (file: string): ReturnType<typeof readVolume> => {
    const volume = readVolume(file);
    if (!flags.quiet) for (const w of volume.header.warnings) process.stderr.write(`tme: warning: ${file}: ${w}\n`);
    return volume;
  };
  const target = read(flags.target);
  checkFinite(target.data, flags.target);
  const userMask = flags.templateMask === undefined ? undefined : read(flags.templateMask);
  const search = await prepareSearch(flags, target, userMask, { targetVoxelUnknown: target.header.warnings.some((w) => w.startsWith('voxel size')), read });
  // The filter acts on each rotated template on its own grid before it is normalised; a spectrum sampled on the
  // tile's grid cannot do that.
  if (flags.rotationMode === 'fourier' && search.filter !== undefined) {
    throw invalidOption('--rotation-mode', 'real when the template is filtered (--tilt-range, --tilt-angles, --defocus, --lowpass, --highpass, --whiten)', flags.rotationMode);
  }
  const templateMask = search.templateMask;
  const targetMask = flags.targetMask === undefined ? undefined : read(flags.targetMask);
  if (targetMask !== undefined) {
    if (targetMask.shape.some((n, i) => n !== target.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `target mask is ${[...targetMask.shape].reverse().join('×')} voxels; the target (${flags.target}) is ${[...target.shape].reverse().join('×')}`, { file: flags.targetMask });
    }
    checkBinary(targetMask, flags.targetMask as string);
  }
  const createdDir = (options.createDir ?? true) && !fs.existsSync(dir);
  if (options.createDir ?? true) prepareJobDir(dir, flags);
  const job: MatchJob = {
    target, template: search.template, templateMask, maskRadius, targetMask, filter: search.filter, targetFilter: search.targetFilter,
    ...(search.zones.options.length > 1 ? { zones: { splits: search.zones.splits, filters: search.zones.options.map((o) => buildTemplateFilter(o)) } } : {}),
    rotations: set.matrices, score, device, threads, tile, padTarget, interpolation: flags.interpolation as Interpolation,
    rotationMode: flags.rotationMode as RotationMode,
    ...(memoryLimit === undefined ? {} : { memoryLimitBytes: memoryLimit }),
    ...(rotationRange === undefined ? {} : { rotationRange }),
  };
  const inputs = {
    target: path.resolve(flags.target), template: path.resolve(flags.template), templateSource: search.templateSource,
    templateMask: flags.templateMask === undefined ? null : path.resolve(flags.templateMask),
    targetMask: flags.targetMask === undefined ? null : path.resolve(flags.targetMask),
    angularStep, symmetry: set.symmetry, rotationCount: set.count, coveringBound: set.coveringBound, rotationMethod: set.method,
    ...(flags.shard === undefined ? {} : { shard: flags.shard }),
    ...(flags.rotations === undefined ? {} : {
      rotations: path.resolve(flags.rotations), rotationsConvention: convention ?? 'quaternions', coveringAngle: set.coveringAngle,
    }),
    filters: describeFilters(flags),
    // What `tme export` takes from the job when no flag says otherwise.
    microscope: { ...search.filters.microscope.microscope, source: search.filters.microscope.source },
    tiltRange: search.filters.tiltRange ?? null,
    tomoName: flags.tomoName ?? search.filters.tomoName ?? null,
  };
  const zones = { count: search.zones.options.length, splits: search.zones.splits, boundAngstrom: search.zones.boundAngstrom, spanAngstrom: search.zones.spanAngstrom, handedness: search.defocusHandedness };
  return { dir, job, target, template: search.template, filters: search.filters, zones, rotationCount: set.count, angularStep, inputs, createdDir };
}

const CONVENTIONS: readonly RotationListConvention[] = ['relion', 'pytme', 'matrix'];

/** The convention of a text rotation list (default relion); none for a .npy, which holds quaternions. */
function parseConvention(flags: MatchFlags): RotationListConvention | undefined {
  const npy = flags.rotations !== undefined && flags.rotations.toLowerCase().endsWith('.npy');
  if (flags.rotationsConvention === undefined) return npy ? undefined : 'relion';
  if (flags.rotations === undefined) throw invalidOption('--rotations-convention', 'it only with --rotations <file>', flags.rotationsConvention);
  if (npy) throw invalidOption('--rotations-convention', 'no convention for a .npy rotation list (it holds quaternions x, y, z, w as pyTME\'s sets do)', flags.rotationsConvention);
  if (!(CONVENTIONS as readonly string[]).includes(flags.rotationsConvention)) {
    throw invalidOption('--rotations-convention', CONVENTIONS.join(', '), flags.rotationsConvention);
  }
  return flags.rotationsConvention as RotationListConvention;
}

/** A user's rotation list as a set: searched as given (so only C1), its covering measured. */
function rotationsFromFile(file: string, convention: RotationListConvention | undefined, symmetry: string): {
  matrices: Float64Array; count: number; symmetry: string; coveringBound: number | null; coveringAngle: number; method: string;
} {
  if (symmetry !== 'C1') throw invalidOption('--symmetry', 'C1 with --rotations (a rotation list is searched as given; list only the asymmetric unit)', symmetry);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new TmeError('ERR_TME_IO', `cannot read the rotation list: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  const list = convention === undefined
    ? (() => { const a = parseNpy(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file); return rotationsFromQuaternionArray(a.shape, a.data, file); })()
    : readRotationList(bytes.toString('utf8'), convention, file);
  const coveringAngle = measureCovering(list.matrices, { probes: 20_000 }).coveringAngle;
  return {
    matrices: list.matrices, count: list.count, symmetry: 'C1', coveringBound: null, coveringAngle,
    method: `list ${path.basename(file)} (${list.count} rotations${convention ? `, ${convention} convention` : ', quaternions x, y, z, w'}; measured covering ${coveringAngle.toFixed(2)}°)`,
  };
}

/**
 * A target mask must say in or out: mcc and the score statistics use it as weights, so 0.5 would count a voxel
 * half. Refuse any other value with the first voxel that has one.
 */
function checkBinary(mask: Volume, file: string): void {
  const [, ny, nx] = mask.shape;
  for (let i = 0; i < mask.data.length; i++) {
    const v = mask.data[i] as number;
    if (v !== 0 && v !== 1) {
      const x = i % nx;
      const y = Math.floor(i / nx) % ny;
      const z = Math.floor(i / (nx * ny));
      throw new TmeError('ERR_TME_FORMAT', `holds ${String(v)} at voxel (x, y, z) = (${x}, ${y}, ${z}); a target mask must be 0 or 1 everywhere: threshold it (e.g. 1 where it is ≥ 0.5, else 0)`, { file });
    }
  }
}

/** NaN or Inf in a tomogram would silently poison every score: refuse it with the first bad voxel. */
function checkFinite(data: Float32Array, file: string): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i] as number)) {
      throw new TmeError('ERR_TME_FORMAT', `holds ${String(data[i])} at voxel ${i} (NaN or infinite values cannot be matched)`, { file });
    }
  }
}

/** The filter flags as typed, file names made absolute (a job is read again from other folders: peaks --refine, export). */
function describeFilters(flags: MatchFlags): Record<string, unknown> {
  const keys: Array<keyof MatchFlags> = [
    'tiltRange', 'tiltAxis', 'tiltAngles', 'dose', 'defocus', 'defocusHandedness', 'voltage', 'cs', 'amplitudeContrast', 'phaseShift', 'phaseFlip',
    'cosineWeighting', 'lowpass', 'highpass', 'whiten', 'invertContrast', 'resample', 'modelResolution', 'modelBfactor', 'templateBox',
  ];
  const out: Record<string, unknown> = {};
  for (const k of keys) if (flags[k] !== undefined && flags[k] !== '') out[k] = flags[k];
  if (flags.tiltAngles !== undefined) out['tiltAngles'] = path.resolve(flags.tiltAngles);
  if (flags.dose !== undefined && !Number.isFinite(Number(flags.dose))) out['dose'] = path.resolve(flags.dose);
  if (flags.defocus !== undefined && isDefocusFile(flags.defocus)) out['defocus'] = path.resolve(flags.defocus);
  return out;
}

/** Runs a prepared match with progress, Ctrl-C → checkpoint, and writes the job folder. */
export async function executeMatch(
  setup: MatchSetup, flags: Pick<MatchFlags, 'resume' | 'quiet' | 'progress' | 'checkpointInterval'>, command = 'tme match',
): Promise<MatchResult> {
  const { dir, job } = setup;
  const intervalSeconds = flags.checkpointInterval === undefined ? undefined : parseNumber('--checkpoint-interval', flags.checkpointInterval, 0);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  const onLateSigint = (): void => { process.stderr.write(`tme: ${dir}: the search had finished; its results are written whole\n`); };
  process.once('SIGINT', onSigint);
  const progress = createProgressRenderer({ quiet: flags.quiet, force: flags.progress });
  let result: MatchResult;
  try {
    result = await matchTemplate(job, {
      signal: controller.signal,
      onProgress: (p) => progress.update(p),
      checkpoint: { dir, resume: flags.resume === true, intervalSeconds },
    });
  } catch (err) {
    const kept = fs.existsSync(path.join(dir, CHECKPOINT_FILE));
    // Nothing to resume and a folder this run made: leave no empty job folder behind.
    if (!kept && setup.createdDir && fs.existsSync(dir) && fs.readdirSync(dir).every((n) => n === JOB_LOCK_FILE)) fs.rmSync(dir, { recursive: true });
    if (isTmeError(err, 'ERR_TME_CANCELLED')) {
      throw new TmeError('ERR_TME_CANCELLED', kept
        ? 'cancelled; the last checkpoint is kept: continue with the same command and --resume'
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
  writeJob(dir, result, { tmeVersion: VERSION, inputs: { ...setup.inputs, command } });
  // A signal that came during the (synchronous) write is delivered on the next turn; after it, Ctrl-C stops what
  // follows (tme run's peaks and export) the default way again.
  await new Promise<void>((resolve) => setImmediate(resolve));
  process.removeListener('SIGINT', onLateSigint);
  if (!flags.quiet) {
    let best = -Infinity;
    for (const v of result.scores.data) if (v > best) best = v;
    const tiles = result.tilePlan.tiles.length;
    process.stdout.write(
      `${dir}: ${setup.rotationCount} rotations × ${tiles} tile${tiles === 1 ? '' : 's'} on ${devicesLabel(result.devices)} in ` +
      `${(result.timings.totalMs / 1000).toFixed(1)} s${result.resumed ? ' (resumed)' : ''}; best score ${best.toFixed(4)}, ` +
      `mean ${result.stats.mean.toFixed(4)} ± ${result.stats.std.toFixed(4)}` +
      `${result.stats.scope === 'tile' ? ' (statistics over whole tiles, padding included)' : ''}\n`,
    );
  }
  return result;
}

/** The options every command that matches shares (match, run, estimate), with one spelling per concept. */
export function addMatchOptions(cmd: Command, options: { target?: boolean } = {}): Command {
  // tme batch takes its tomograms from a manifest.
  if (options.target !== false) cmd.requiredOption('--target <file>', 'tomogram (MRC or EM)');
  cmd
    .requiredOption('--template <file>', 'template: a map (MRC/EM; same voxel size as the target unless --resample) or an atomic model (PDB/mmCIF, simulated at the target voxel size)')
    .option('--template-mask <file>', 'template mask (MRC, template box); default: a sphere (see --mask-radius)')
    .option('--mask-radius <Å>', 'radius of a spherical template mask in Å; default: the largest sphere inside the box')
    .option('--target-mask <file>', 'target mask (MRC, target shape, values 0 or 1): required by mcc, restricts score statistics')
    .option('--angular-step <deg>', 'largest angle from any orientation to the nearest searched rotation, degrees (required unless --rotations; with it, the scale of the orientation refinement)')
    .option('--rotations <file>', 'search exactly these rotations instead of a sampled set: a text list (one rotation per line; see --rotations-convention) or pyTME\'s rotation set (.npy of quaternions x, y, z, w[, weight])')
    .option('--rotations-convention <name>', 'columns of a text --rotations list: relion (rot tilt psi), pytme (euler_x euler_y euler_z of its orientations TSV) or matrix (9 entries, row-major, active template→tomogram); default relion')
    .option('--symmetry <group>', 'template symmetry (C1, Cn, Dn, T, O, I): only an asymmetric unit is searched', 'C1')
    .option('--score <name>', `${SCORE_NAMES.join(', ')} (pyTME names accepted)`, 'flc-sphere')
    .option('--device <device>', `${DEVICE_CHOICES} (see tme devices)`, 'auto')
    .option('--threads <n>', 'CPU threads for the CPU path (default: all cores)')
    .option('--memory <size>', 'host memory the job may use, e.g. 8G (a cluster allocation); default: what is free when it starts')
    .option('--tile <auto|Z,Y,X>', 'split the target into tiles of Z,Y,X voxels (core + template support − 1; the support is the box or, with a mask, less: tme estimate shows it); auto: only to fit memory', 'auto')
    .option('--pad-target <mode>', `how the target continues beyond its edges: ${PAD_MODES.join(', ')}`, 'mean')
    .option('--interpolation <kind>', 'template rotation: linear or cubic', 'linear')
    .option('--rotation-mode <mode>', 'real (rotate in real space) or fourier (sample the spectrum)', 'real')
    .addOption(new Option('--checkpoint-interval <s>', 'seconds between checkpoints (0: after every batch); default 30').hideHelp());
  return addSearchOptions(cmd);
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
    .option('--shard <i/n>', 'search only the i-th (from 0) of n equal parts of the rotations, e.g. a SLURM array task\'s; tme merge joins the n job folders into the one a whole search writes')
    .requiredOption('-o, --output <dir>', 'job folder to create')
    .action(async (flags: MatchFlags) => runMatch(flags));
}
