import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  MrcRegionReader, TmeError, createVolume, inFile, invalidOption, isTmeError, parseNpy, readEmHeader, readMrcHeader, readVolume, volumeFormatOf,
  type Volume, type VolumeRegionSource, type Zyx,
} from '@tme/formats';
import {
  ANGULAR_STEP_RANGE, measureCovering, readRotationList, rotationsFromQuaternionArray, sampleRotations,
  type RotationListConvention,
} from '@tme/rotations';
import {
  buildTargetFilter, buildTemplateFilter, defocusZones, ellipsoidMask, isIdentityFilter, sphereMask, thresholdMask, whiteningProfile, type DefocusHandedness,
} from '@tme/template';
import { checkOutOfCore, inMemoryBytes, listDevices, resolveDevices, targetFilterGrid, wholeTargetBytes, type DeviceSelection, type MatchJob } from '@tme/engine';
import { checkRotationsGiven, resolveSearchOptions, SEARCH_FLAGS, type SearchInput, type SearchOptions } from './options';
import { searchFilters, type SearchFilters } from './filters';
import { shapeTemplate, type TemplateSource } from './template';
import { readPriorFile } from './priors';

/** A search made ready to run: the engine's job, and what the outputs and job.json need to know of it. */
export interface SearchPlan {
  /** The options with defaults filled in and files absolute: what job.json stores, verbatim. */
  options: SearchOptions;
  job: MatchJob;
  /** The target as read (before its filters): subtomograms are cut from it. Out of core, its reader (the file on
   *  disk, read by region). */
  target: Volume | VolumeRegionSource;
  /** How the target is matched: in memory, or out of core when the in-memory path needs more than is available
   *  (what is free now, capped by --memory). */
  memory: TargetMemory;
  template: Volume;
  filters: SearchFilters;
  templateSource: TemplateSource;
  /** The CTF zones along the defocus gradient: how many, per axis (z, y, x), the defocus change a zone may hold and
   *  the whole tomogram's (Å), and the handedness (0: off); `followed`: the zones --defocus-handedness ±1 would make
   *  (1 without a defocus). */
  zones: {
    count: number; splits: readonly [number, number, number]; boundAngstrom: number; spanAngstrom: number; handedness: DefocusHandedness;
    followed: { count: number; splits: readonly [number, number, number]; boundAngstrom: number; spanAngstrom: number };
  };
  /** Every template's rotations (all of them with several templates). */
  rotationCount: number;
  /** Templates 1, 2, … as shaped for the target (the options' moreTemplates), when there are several. */
  moreTemplates?: Volume[];
  /** The typed angular step, or a rotation list's measured covering angle: the orientation refinement's scale. */
  angularStep: number;
  /** The search in the words job.json's readers (tme export, tme batch) use; see `options` for the whole search. */
  inputs: Record<string, unknown>;
}

export interface TargetMemory {
  path: 'in-memory' | 'out-of-core';
  /** What the in-memory path would hold (@tme/engine's inMemoryBytes) and what is available; `limit`: --memory set it. */
  inMemoryBytes: number;
  availableBytes: number;
  limit: boolean;
  /** Whether what a search holds whole before any tile fits (wholeTargetBytes: tme itself, the tomogram as read and as
   *  matched, its two maps): a search that cannot go out of core then still runs in memory, with whatever room is
   *  left for tiles, and else is refused naming the flag that needs the whole tomogram. */
  wholeFits: boolean;
}

export interface PlanOptions {
  /** Notes about the inputs (a header's doubts, such as a voxel size taken as 1 Å), one call per note. */
  onWarning?: (message: string, file: string) => void;
  /**
   * 'search' (default) samples or reads the rotations; 'rescore' plans the job's template, filters and score for
   * scoring chosen orientations (the refinement of picks, a look at the template), with no rotation set: it neither
   * needs one, samples one, nor can fail on one.
   */
  purpose?: 'search' | 'rescore';
}

/**
 * Checks the options, reads and prepares every input (the template shaped and filtered for the target, the masks,
 * the rotations), and returns the engine's job. Nothing is written.
 */
export async function planSearch(input: SearchInput | SearchOptions, plan: PlanOptions = {}): Promise<SearchPlan> {
  const o = resolveSearchOptions(input);
  const rescore = plan.purpose === 'rescore';
  if (!rescore) checkRotationsGiven(o);
  checkDevices(o.device);
  // Rotations first: a bad rotation list or --shard is a usage error found before any volume is read.
  const set = rescore ? undefined : rotationSet(o);
  const rotationRange = set && o.shard && o.shardBy !== 'tiles' ? shardRange(o.shard, set.count) : undefined;
  // Tiles are counted by the engine's tile plan (it depends on the device): it checks the shard against them.
  const tileShard = set && o.shard && o.shardBy === 'tiles' ? o.shard : undefined;
  // The further templates' rotations: their own symmetry's asymmetric unit (the same list with --rotations).
  const moreSets = rescore ? [] : (o.moreTemplates ?? []).map((t) => rotationSet({ ...o, symmetry: t.symmetry }));
  const angularStep = o.angularStep
    ?? Math.min(ANGULAR_STEP_RANGE[1], Math.max(ANGULAR_STEP_RANGE[0], Number((set?.coveringAngle ?? ANGULAR_STEP_RANGE[1]).toFixed(2))));

  const filters = searchFilters(o);
  const filterOptions = filters.options;
  // The target gets the band-pass and whitening too, and the binary wedge of its tilt range (as pyTME does): noise
  // where the template has no signal would only lower every score.
  const targeted = Boolean(filterOptions.bandPass || o.whiten || filterOptions.wedge || filterOptions.tiltWeighting);
  // The target filter's grid grows by the template's box, not known before the template is shaped: first without it
  // (a lower bound), then with it below.
  const memory = targetMemory(o, targeted ? [0, 0, 0] : undefined);
  const read = (file: string): Volume & { header: { warnings: string[] } } => {
    const volume = readVolume(file);
    for (const w of volume.header.warnings) plan.onWarning?.(w, file);
    return volume;
  };
  const outOfCoreRefusal = (): unknown => {
    try {
      checkOutOfCore({
        score: o.score, background: o.background, targetMask: o.targetMask !== undefined,
        moreTemplates: (o.moreTemplates?.length ?? 0) > 0, priors: o.priors !== undefined, tileShard: tileShard !== undefined,
        fourierFilter: o.rotationMode === 'fourier' && (!isIdentityFilter(filterOptions) || Boolean(o.whiten)),
      }, {
        score: SEARCH_FLAGS.score, background: SEARCH_FLAGS.background, targetMask: SEARCH_FLAGS.targetMask, rotationMode: SEARCH_FLAGS.rotationMode,
        moreTemplates: `${SEARCH_FLAGS.template} given ${(o.moreTemplates?.length ?? 0) + 1} times`, priors: SEARCH_FLAGS.priors,
        tileShard: `${SEARCH_FLAGS.shardBy} tiles`,
      });
      return undefined;
    } catch (err) {
      return err;
    }
  };
  if (memory.path === 'out-of-core') {
    // What needs the whole target cannot go out of core: such a search stays in memory (with smaller tiles) while the
    // tomogram and its maps fit at all, as before out of core existed; beyond that the refusal names the flag.
    const err = outOfCoreRefusal();
    if (err !== undefined) {
      if (!memory.wholeFits) throw err;
      memory.path = 'in-memory';
    }
  }
  let outOfCore = memory.path === 'out-of-core';
  let target: (Volume | MrcRegionReader) & { header: { warnings: string[] } };
  if (outOfCore) {
    target = new MrcRegionReader(o.target);
    for (const w of target.header.warnings) plan.onWarning?.(w, o.target);
  } else {
    const volume = read(o.target);
    checkFinite(volume.data, o.target);
    target = volume;
  }
  const priors = o.priors === undefined ? undefined : readPriorFile(o.priors, target);
  if (priors !== undefined) {
    // Coordinates in Å where voxels are expected (or another tomogram's) put the priors outside: say so.
    let outside = 0;
    for (let i = 0; i < priors.positions.length / 3; i++) {
      if ([0, 1, 2].some((a) => { const v = priors.positions[3 * i + a] as number; return v < 0 || v > (target.shape[a] as number) - 1; })) outside++;
    }
    if (outside > 0) plan.onWarning?.(`${outside} of ${priors.positions.length / 3} priors lie outside the target (${[...target.shape].reverse().join('×')} voxels; positions are voxels of the target)`, o.priors as string);
  }
  const targetVoxelUnknown = target.header.warnings.some((w) => w.startsWith('voxel size'));
  const prepared = await shapeTemplate(o, target, read, targetVoxelUnknown);
  const madeMask = maskFor(o, prepared.template);
  // Further templates: each shaped and masked as template 0 is, with its own mask file, radius and symmetry.
  const more: Array<{ prepared: Awaited<ReturnType<typeof shapeTemplate>>; madeMask: Volume | undefined }> = [];
  for (const t of o.moreTemplates ?? []) {
    const own = { ...o, template: t.template, templateMask: t.templateMask, maskRadius: t.maskRadius };
    const shaped = await shapeTemplate(own, target, read, targetVoxelUnknown);
    more.push({ prepared: shaped, madeMask: maskFor(own, shaped.template) });
  }
  if (targeted && !outOfCore && memory.inMemoryBytes > 0) {
    // Now with the template's box (the largest: each box filters the target in turn). Where the filter's peak does not
    // fit, the tomogram read whole is let go and matched out of core (its filter by passes over temporary files).
    const box = Math.max(...[prepared, ...more.map((m) => m.prepared)].flatMap((t) => t.template.shape));
    const filterGrid = targetFilterGrid(target.shape, [box, box, box]);
    const needed = inMemoryBytes(target.shape, { targetMask: o.targetMask !== undefined, background: o.background, targetFilterGrid: filterGrid });
    if (needed > memory.availableBytes) {
      if (volumeFormatOf(o.target) === 'mrc' && outOfCoreRefusal() === undefined) {
        memory.inMemoryBytes = needed;
        memory.path = 'out-of-core';
        outOfCore = true;
        target = new MrcRegionReader(o.target);
      }
    } else {
      memory.inMemoryBytes = needed;
    }
  }
  const targetMask = o.targetMask === undefined ? undefined : read(o.targetMask);
  if (targetMask !== undefined) {
    if (targetMask.shape.some((n, i) => n !== target.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `target mask is ${[...targetMask.shape].reverse().join('×')} voxels; the target (${o.target}) is ${[...target.shape].reverse().join('×')}`, { file: o.targetMask });
    }
    checkBinary(targetMask, o.targetMask as string);
  }
  // Out of core the profile's sub-boxes are read from the file by region: the same profile.
  if (o.whiten) filterOptions.whitening = whiteningProfile(target);
  const filter = isIdentityFilter(filterOptions) ? undefined : buildTemplateFilter(filterOptions);
  const hasDefocus = filterOptions.ctf !== undefined || (filterOptions.tiltWeighting?.tilts.some((t) => t.ctf !== undefined) ?? false);
  // Off unless asked: measured on thick tilted lamellae (README, "Defocus gradient"), the right hand raised the score at
  // the particles by 0.0–0.1 % over one CTF per tilt at 3 and 5 Å and found no more particles; the wrong hand lost 3× that.
  const handedness: DefocusHandedness = o.defocusHandedness ?? 0;
  if (handedness !== 0 && !hasDefocus) {
    throw invalidOption(SEARCH_FLAGS.defocusHandedness, 'a defocus to follow (--defocus, or per-tilt defocus in --tilt-angles)', handedness);
  }
  const zones = defocusZones({ options: filterOptions, shape: target.shape, voxelSize: target.voxelSize, handedness });
  // What following the gradient would take, for tme estimate to say when it is off.
  const followed = handedness === 0 && hasDefocus ? defocusZones({ options: filterOptions, shape: target.shape, voxelSize: target.voxelSize, handedness: 1 }) : zones;
  const targetFilter = targeted ? buildTargetFilter({ ...filterOptions, applyWedgeToTarget: true }) : undefined;

  const job: MatchJob = {
    target, template: prepared.template, templateMask: madeMask ?? prepared.templateMask, maskRadius: madeMask ? undefined : o.maskRadius, targetMask,
    filter, targetFilter, rotations: set?.matrices ?? IDENTITY,
    ...(zones.options.length > 1 ? { zones: { splits: zones.splits, filters: zones.options.map((z) => buildTemplateFilter(z)) } } : {}), score: o.score, device: o.device, threads: o.threads, tile: o.tile,
    padTarget: o.padTarget, interpolation: o.interpolation, rotationMode: o.rotationMode, spectrumPrecision: o.spectrumPrecision,
    ...(o.background === 'none' ? {} : { background: o.background }),
    ...(priors === undefined ? {} : { priors: { ...priors, coneAngle: o.priorCone as number, radius: o.priorRadius as number, axis: o.priorAxis } }),
    ...(o.memoryLimitBytes === undefined ? {} : { memoryLimitBytes: o.memoryLimitBytes }),
    ...(rotationRange === undefined ? {} : { rotationRange }),
    ...(tileShard === undefined ? {} : { tileShard }),
    ...(more.length > 0 ? {
      moreTemplates: more.map((m, k) => ({
        template: m.prepared.template, rotations: (moreSets[k] as RotationSetOf | undefined)?.matrices ?? IDENTITY,
        ...(m.madeMask ?? m.prepared.templateMask ? { templateMask: m.madeMask ?? m.prepared.templateMask } : {}),
        ...(m.madeMask === undefined && o.moreTemplates?.[k]?.maskRadius !== undefined ? { maskRadius: o.moreTemplates[k]?.maskRadius } : {}),
      })),
    } : {}),
  };
  const rotationCount = (set?.count ?? 0) + moreSets.reduce((n, m) => n + m.count, 0);
  const inputs = {
    target: o.target, template: o.template, templateSource: prepared.source,
    templateMask: o.templateMask ?? null, targetMask: o.targetMask ?? null,
    angularStep, symmetry: o.symmetry, rotationCount, coveringBound: set?.coveringBound ?? null, rotationMethod: set?.method ?? null,
    ...(o.shard === undefined ? {} : { shard: `${o.shard.index}/${o.shard.count}` }),
    ...(o.rotations === undefined ? {} : {
      rotations: o.rotations, rotationsConvention: o.rotationsConvention ?? 'quaternions', coveringAngle: set?.coveringAngle,
    }),
    ...(more.length > 0 ? {
      templates: [
        { template: o.template, templateSource: prepared.source, templateMask: o.templateMask ?? null, symmetry: o.symmetry, rotationCount: set?.count ?? 0 },
        ...more.map((m, k) => ({
          template: o.moreTemplates?.[k]?.template, templateSource: m.prepared.source, templateMask: o.moreTemplates?.[k]?.templateMask ?? null,
          symmetry: o.moreTemplates?.[k]?.symmetry, rotationCount: moreSets[k]?.count ?? 0,
        })),
      ],
    } : {}),
    filters: filterRecord(o),
    ...(priors === undefined ? {} : {
      priors: { file: o.priors, count: priors.positions.length / 3, coneAngle: o.priorCone, radius: o.priorRadius, axis: o.priorAxis },
    }),
    // What `tme export` takes from the job when no flag says otherwise.
    microscope: { ...filters.microscope.microscope, source: filters.microscope.source },
    tiltRange: filters.tiltRange ?? null,
    tomoName: o.tomoName ?? filters.tomoName ?? null,
  };
  return {
    options: o, job, target, memory, template: prepared.template, filters, templateSource: prepared.source, rotationCount, angularStep, inputs,
    ...(more.length > 0 ? { moreTemplates: more.map((m) => m.prepared.template) } : {}),
    zones: {
      count: zones.options.length, splits: zones.splits, boundAngstrom: zones.boundAngstrom, spanAngstrom: zones.spanAngstrom, handedness,
      followed: { count: followed.options.length, splits: followed.splits, boundAngstrom: followed.boundAngstrom, spanAngstrom: followed.spanAngstrom },
    },
  };
}

const IDENTITY = new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);

/**
 * The mask the options ask tme to make on the template's box: an ellipsoid, a threshold of the template, or a
 * sphere with a soft edge. Undefined where the engine's own hard sphere (maskRadius, or the inscribed one) or the
 * user's file serves.
 */
function maskFor(o: SearchOptions, template: Volume): Volume | undefined {
  const shape = template.shape;
  const edgeAngstrom = o.maskEdge;
  if (o.maskEllipsoid !== undefined) return ellipsoidMask(shape, template.voxelSize, { radiiAngstrom: o.maskEllipsoid, edgeAngstrom }).mask;
  if (o.maskRadius !== undefined && edgeAngstrom !== undefined) {
    return sphereMask(shape, template.voxelSize, { radiusAngstrom: o.maskRadius, edgeAngstrom }).mask;
  }
  if (o.maskThreshold === undefined) return undefined;
  // The protein's density: with inverted contrast the template's protein is negative.
  const sign = o.invertContrast ? -1 : 1;
  const density = createVolume(template.data.map((v) => sign * v), shape, template.voxelSize, template.origin);
  let max = -Infinity;
  for (const v of density.data) if (v > max) max = v;
  return inFile(o.template, () => thresholdMask(density, { threshold: o.maskThreshold as number * max, dilationAngstrom: o.maskDilation, edgeAngstrom }).mask);
}

/** The filter options of a search, as job.json's readers find them (`inputs.filters`). */
function filterRecord(o: SearchOptions): Record<string, unknown> {
  const keys = [
    'tiltRange', 'tiltAxis', 'tiltAngles', 'dose', 'defocus', 'defocusHandedness', 'voltage', 'sphericalAberration', 'amplitudeContrast', 'phaseShift',
    'phaseFlip', 'cosineWeighting', 'lowpass', 'highpass', 'whiten', 'invertContrast', 'resample', 'modelResolution', 'modelBfactor',
    'templateBox',
  ] as const;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

interface RotationSetOf {
  matrices: Float64Array; count: number; coveringBound: number | null; coveringAngle: number; method: string;
}

function rotationSet(o: SearchOptions): RotationSetOf {
  if (o.rotations === undefined) {
    const set = sampleRotations({ angularStep: o.angularStep as number, symmetry: o.symmetry, measure: false });
    return { matrices: set.matrices, count: set.count, coveringBound: set.coveringBound, coveringAngle: set.coveringAngle, method: set.method };
  }
  return rotationsFromFile(o.rotations, o.rotationsConvention);
}

/** A user's rotation list: searched as given (so only C1), its covering measured. */
function rotationsFromFile(file: string, convention: RotationListConvention | undefined): RotationSetOf {
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
    matrices: list.matrices, count: list.count, coveringBound: null, coveringAngle,
    method: `list ${path.basename(file)} (${list.count} rotations${convention ? `, ${convention} convention` : ', quaternions x, y, z, w'}; measured covering ${coveringAngle.toFixed(2)}°)`,
  };
}

/** A shard's rotations [⌊i·N/n⌋, ⌊(i+1)·N/n⌋) of N. */
function shardRange(shard: { index: number; count: number }, rotations: number): [number, number] {
  const { index, count } = shard;
  if (count > rotations) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `Expected at most as many parts as rotations (${rotations}) for ${SEARCH_FLAGS.shard} but received "${index}/${count}"`);
  }
  return [Math.floor((index * rotations) / count), Math.floor(((index + 1) * rotations) / count)];
}

/** Refuses, in one line and before any input is read, a device this machine does not have. */
function checkDevices(selection: DeviceSelection): void {
  // 'auto' and 'cpu' always resolve (the CPU path is always listed): no need to enumerate devices for them.
  if (selection === 'auto' || selection === 'cpu') return;
  try {
    resolveDevices(selection);
  } catch (err) {
    if (!isTmeError(err, 'ERR_TME_NO_DEVICE')) throw err;
    const typed = Array.isArray(selection) ? selection.join(',') : String(selection);
    throw new TmeError('ERR_TME_NO_DEVICE', `${SEARCH_FLAGS.device} ${typed}: ${err.message}; see tme devices`);
  }
}

/** GiB to one decimal, below 1 GiB whole MiB (so that a small --memory reads as what it is). */
function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}

/**
 * In memory or out of core, from the target's header alone: in memory when what that path holds (inMemoryBytes) fits
 * the memory available now (the host's free memory, capped by --memory), else out of core. Reading a 16 GiB tomogram
 * whole on a 24 GiB machine was killed by the kernel 47 s in, with no message. Only MRC files are read by region: an
 * EM file that does not fit is refused in one line.
 */
function targetMemory(o: SearchOptions, filterBox?: Zyx): TargetMemory {
  const file = o.target;
  const limit = o.memoryLimitBytes;
  let shape: Zyx;
  try {
    shape = volumeFormatOf(file) === 'em' ? readEmHeader(file).shape : readMrcHeader(file).shape;
  } catch (err) {
    // An EM file past one typed array is refused by its header reader in its words; any other unreadable header is
    // reported by the read itself.
    if (volumeFormatOf(file) === 'em' && isTmeError(err, 'ERR_TME_UNSUPPORTED')) throw err;
    return { path: 'in-memory', inMemoryBytes: 0, availableBytes: Infinity, limit: false, wholeFits: true };
  }
  const needed = inMemoryBytes(shape, {
    targetMask: o.targetMask !== undefined, background: o.background, ...(filterBox ? { targetFilterGrid: targetFilterGrid(shape, filterBox) } : {}),
  });
  const cpu = listDevices().devices.find((d) => d.index === 'cpu');
  const free = cpu ? cpu.memoryBytes : Infinity;
  const available = Math.min(limit ?? Infinity, free);
  const memory: TargetMemory = {
    path: needed > available ? 'out-of-core' : 'in-memory', inMemoryBytes: needed, availableBytes: available, limit: limit !== undefined && limit <= free,
    wholeFits: wholeTargetBytes(shape, { targetMask: o.targetMask !== undefined, background: o.background }) < available,
  };
  if (memory.path === 'out-of-core' && volumeFormatOf(file) === 'em') {
    if (memory.wholeFits) return { ...memory, path: 'in-memory' };
    throw new TmeError('ERR_TME_DEVICE_MEMORY',
      `${[...shape].reverse().join('×')} voxels need ${gib(needed)} in memory but `
      + `${memory.limit ? `${SEARCH_FLAGS.memoryLimitBytes} allows ${gib(available)}` : `${gib(available)} of memory is free`}; `
      + 'tme matches tomograms larger than memory from MRC files only: convert it (tme convert) or bin or crop it', { file });
  }
  return memory;
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
