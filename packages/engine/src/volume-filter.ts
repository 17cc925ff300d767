import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { AtomicFileWriter, TmeError, type VolumeRegionSource, type Zyx } from '@tme/formats';
import * as native from '@tme/native';
import { extractRegion, reflectIndex, type PadMode } from './padding';
import { readWithNoData, targetFilterGrid, type RowFilterFunction } from './prepare';

/**
 * The target's Fourier filter for a tomogram larger than memory: the same arithmetic as prepare.ts's filterTarget
 * (the target continued by its pad mode a template box beyond every face, on the same fast grid, times the same
 * filter values, cut back), done as a 3D FFT by passes over temporary files in the job folder:
 *   1. per z-slab of the grid, a 2D R2C of every plane, written to a half-spectrum file;
 *   2. per block of ky rows, every plane's rows of the block read, transformed along z, multiplied by the filter's
 *      values for the block (RowFilterFunction.rows: the filter is never held whole), transformed back, written back;
 *   3. per z-slab of the target's planes, a 2D C2R of every plane, cut back to the target, written to a float32 file
 *      that the tile loop reads in place of the tomogram.
 * Each pass holds one slab or block, sized from the job's memory budget.
 */

/** How the passes go for one target: the grid, the slab and block sizes, and what they need. */
export interface VolumeFilterPlan {
  /** The FFT grid (filterTarget's) and where the target starts in it (the template box). */
  grid: Zyx;
  pad: Zyx;
  /** z-planes per slab (passes 1 and 3) and ky rows per block (pass 2). */
  slabPlanes: number;
  blockRows: number;
  /** Temporary disk: the grid's half spectrum (complex64) and the filtered target (float32). */
  diskBytes: number;
  /** The largest pass's arrays. */
  memoryBytes: number;
}

/** Bytes one read or write moves at most (one fs call moves under 2 GiB). */
const IO_BYTES = 2 ** 30;
/** Rows of the filter evaluated at once: its parts (wedge, band-pass, whitening) each take an array of their own. */
const FILTER_ROWS = 8;

/** The slab and block sizes that fit `budgetBytes` (throws ERR_TME_DEVICE_MEMORY when one plane or row does not). */
export function planVolumeFilter(shape: Zyx, box: Zyx, budgetBytes: number): VolumeFilterPlan {
  const grid = targetFilterGrid(shape, box);
  const [gz, gy, gx] = grid;
  const [nz, ny, nx] = shape;
  const hx = Math.floor(gx / 2) + 1;
  // A plane of passes 1 and 3: the tomogram's section as read (float32 and its no-data flags, twice while they are
  // found; and the last slab's read, which the garbage collector frees only after the next is read), the padded plane
  // and its half spectrum; a slab also reads its no-data halo's sections. Measured (1024×1024×512, --memory 1G):
  // without the last slab's read counted and with new arrays per slab, the process peaked at 1.9 GiB.
  const perPlane = 11 * ny * nx + 4 * gy * gx + 8 * gy * hx;
  const halo = 2 * 2 * 6 * ny * nx;
  // A ky row of pass 2: its complex values in every plane, and the filter's (evaluated a few rows at a time).
  const perRow = 12 * gz * hx + FILTER_ROWS * 12 * gz * hx;
  const need = Math.max(perPlane + halo, perRow);
  if (!(budgetBytes >= need)) {
    throw new TmeError('ERR_TME_DEVICE_MEMORY',
      `the target's filter out of core needs ${bytesText(need)} (one ${gy}×${gx} plane of its FFT grid, or one row of every plane) `
      + `but ${bytesText(Math.max(0, budgetBytes))} is available; allow it more (--memory)`);
  }
  const slabPlanes = Math.max(1, Math.min(gz, Math.floor((budgetBytes - halo) / perPlane), Math.floor(IO_BYTES / (8 * gy * hx))));
  const blockRows = Math.max(1, Math.min(gy, Math.floor((budgetBytes - FILTER_ROWS * 12 * gz * hx) / (12 * gz * hx)), Math.floor(IO_BYTES / (8 * hx))));
  return {
    grid, pad: box, slabPlanes, blockRows,
    diskBytes: 8 * gz * gy * hx + 4 * nz * ny * nx,
    memoryBytes: Math.max(slabPlanes * perPlane + halo, (blockRows + FILTER_ROWS) * 12 * gz * hx),
  };
}

/** GiB or MiB to one decimal (a need and what is available must not round to the same number). */
function bytesText(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Progress of the filter's passes: `done` of `total` steps over all three, in planes of the grid moved. */
export interface VolumeFilterProgress {
  pass: 1 | 2 | 3;
  done: number;
  total: number;
}

export interface VolumeFilterInput {
  /** The tomogram on disk. */
  source: VolumeRegionSource;
  /** Where its padding starts: the template box (filterTarget's). */
  box: Zyx;
  filter: RowFilterFunction;
  padMode: PadMode;
  /** What no-data voxels are set to before filtering (prepareJob's fill), and whether the tomogram has any. */
  noDataFill: number;
  anyNoData: boolean;
  /** The value 'mean' padding continues the target with: the mean of the tomogram with its no-data voxels filled. */
  padFill: number;
  /** The folder of the temporary files (the job folder). */
  dir: string;
  budgetBytes: number;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (progress: VolumeFilterProgress) => void;
}

/** The filtered tomogram (a temporary float32 file, read by region) and its moments; `release` deletes the file. */
export interface FilteredVolume {
  source: VolumeRegionSource;
  /** What it was made from (the input less where and how): another user of the same filtered target checks it with
   *  `sameVolumeFilter` rather than filter the tomogram again. */
  madeFrom: Pick<VolumeFilterInput, 'source' | 'box' | 'filter' | 'padMode' | 'noDataFill' | 'anyNoData' | 'padFill'>;
  mean: number;
  variance: number;
  plan: VolumeFilterPlan;
  /** Wall time of each pass, ms. */
  passMs: [number, number, number];
  release(): void;
}

/** A float32 volume in a temporary file (native byte order), read by region. */
class Float32TempFile implements VolumeRegionSource {
  readonly file: string;
  constructor(private readonly writer: AtomicFileWriter, readonly shape: Zyx, readonly voxelSize: Zyx, readonly origin: Zyx) {
    this.file = writer.target;
  }

  readRegion(start: Zyx, shape: Zyx): Float32Array {
    const [, ny, nx] = this.shape;
    const [bz, by, bx] = shape;
    const out = new Float32Array(bz * by * bx);
    const bytes = new Uint8Array(out.buffer);
    const at = (z: number, y: number): number => 4 * ((z * ny + y) * nx + start[2]);
    if (bx === nx && by === ny) {
      for (let z = 0; z < bz; z += Math.max(1, Math.floor(IO_BYTES / (4 * ny * nx)))) {
        const n = Math.min(bz - z, Math.max(1, Math.floor(IO_BYTES / (4 * ny * nx))));
        this.writer.readAt(bytes.subarray(4 * z * ny * nx, 4 * (z + n) * ny * nx), at(start[0] + z, 0));
      }
      return out;
    }
    for (let z = 0; z < bz; z++) {
      for (let y = 0; y < by; y++) {
        const o = 4 * (z * by + y) * bx;
        this.writer.readAt(bytes.subarray(o, o + 4 * bx), at(start[0] + z, start[1] + y));
      }
    }
    return out;
  }
}

let fullCollection: (() => void) | undefined;

/**
 * V8's full garbage collection, after a pass: V8 frees typed arrays only when its own heap asks for a collection, and
 * neither the next pass nor the tile loop (which waits on the addon) allocates much on that heap. Measured on a
 * 1024×1024×512 tomogram under --memory 1G: the process peaked at 1.26 GiB with the passes' last arrays still held in
 * the tile loop, against 0.94 GiB for the passes alone and for the same search without the filter.
 */
export function collectGarbage(): void {
  if (!fullCollection) {
    v8.setFlagsFromString('--expose-gc');
    fullCollection = vm.runInNewContext('gc') as () => void;
  }
  fullCollection();
}

/** The free bytes of the file system that holds `dir`; refuses a shortfall in one line naming the folder. */
function checkDisk(dir: string, needed: number): void {
  let free: number;
  try {
    const s = fs.statfsSync(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return;
  }
  if (free < needed) {
    throw new TmeError('ERR_TME_IO',
      `the target's filter out of core needs ${bytesText(needed)} of temporary disk space here (the filter's spectrum and the filtered tomogram) but ${bytesText(free)} is free; free some, or bin or crop the tomogram`,
      { file: dir });
  }
}

/** The filter's plan for a target of `shape` on `budgetBytes`, refused in one line when memory or the disk under
 *  `dir` is short: before anything is read. */
export function checkVolumeFilter(shape: Zyx, box: Zyx, budgetBytes: number, dir: string): VolumeFilterPlan {
  const plan = planVolumeFilter(shape, box, budgetBytes);
  checkDisk(dir, plan.diskBytes);
  return plan;
}

/**
 * Filters a tomogram on disk with the whole-volume filter, out of core (see the top of this file). The temporary
 * files are named as atomic writes' are (`.name.<pid>.<n>.tmp`), so a killed run's leftovers are removed by the next
 * run's stale-temporary cleanup; they are deleted on error, on cancel (signal) and by `release`.
 */
export async function filterVolumeOutOfCore(input: VolumeFilterInput): Promise<FilteredVolume> {
  const { source, box, filter, padMode, noDataFill, anyNoData, padFill, dir } = input;
  const plan = checkVolumeFilter(source.shape, box, input.budgetBytes, dir);
  const threads = input.threads ?? os.availableParallelism();
  const [nz, ny, nx] = source.shape;
  const [gz, gy, gx] = plan.grid;
  const hx = Math.floor(gx / 2) + 1;
  const planeSpectrum = gy * hx;
  // Steps in planes of the grid moved: pass 1 writes gz, pass 2 reads and writes gz (a block of rows, its share), pass 3
  // reads nz.
  const total = 2 * gz + nz;
  let done = 0;
  let pass: 1 | 2 | 3 = 1;
  const step = async (n: number): Promise<void> => {
    done += n;
    input.onProgress?.({ pass, done, total });
    // Between slabs: a Ctrl-C (the signal) is seen, and the temporary files go with the error.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (input.signal?.aborted) throw new TmeError('ERR_TME_CANCELLED', 'matching was cancelled');
  };
  const spectrum = new AtomicFileWriter(path.join(dir, 'target-spectrum'));
  const spectrumAt = (plane: number, row = 0): number => 8 * (plane * planeSpectrum + row * hx);
  // Each pass allocates its arrays once, for its largest slab or block (the garbage collector lags behind new arrays
  // per slab), in a function of its own, so that the next pass does not hold them.

  // Pass 1: each plane of the grid is a plane of the tomogram (its no-data voxels filled), continued in y and x; beyond
  // the z faces, a reflected plane ('mirror') or the constant plane.
  const forward = async (): Promise<void> => {
    const realSlab = new Float32Array(plan.slabPlanes * gy * gx);
    const specSlab = new Float32Array(2 * plan.slabPlanes * planeSpectrum);
    const outside = padMode === 'mean' ? padFill : 0;
    for (let pz0 = 0; pz0 < gz; pz0 += plan.slabPlanes) {
      const pn = Math.min(plan.slabPlanes, gz - pz0);
      const real = realSlab.subarray(0, pn * gy * gx);
      const planes = Array.from({ length: pn }, (_, k) => {
        const z = pz0 + k - box[0];
        return padMode === 'mirror' ? reflectIndex(z, nz) : z >= 0 && z < nz ? z : -1;
      });
      const inside = planes.filter((z) => z >= 0);
      if (inside.length > 0) {
        const lo = Math.min(...inside);
        const read = readWithNoData(source, [lo, 0, 0], [Math.max(...inside) - lo + 1, ny, nx]);
        if (read.noData) for (let i = 0; i < read.data.length; i++) if (read.noData[i]) read.data[i] = noDataFill;
        planes.forEach((z, k) => {
          if (z < 0) return;
          const from = (z - read.start[0]) * ny * nx;
          real.set(extractRegion(read.data.subarray(from, from + ny * nx), [1, ny, nx], [0, -box[1], -box[2]], [1, gy, gx], padMode, padFill), k * gy * gx);
        });
      }
      planes.forEach((z, k) => { if (z < 0) real.fill(outside, k * gy * gx, (k + 1) * gy * gx); });
      const spec = specSlab.subarray(0, 2 * pn * planeSpectrum);
      native.fftPlanes(false, real, spec, [pn, gy, gx], threads);
      spectrum.writeAt(new Uint8Array(spec.buffer, 0, spec.byteLength), spectrumAt(pz0));
      await step(pn);
    }
  };

  // Pass 2: along z and through the filter, a block of ky rows of every plane at a time.
  const throughFilter = async (): Promise<void> => {
    const blockAll = new Float32Array(2 * gz * plan.blockRows * hx);
    const valuesAll = new Float32Array(gz * plan.blockRows * hx);
    for (let y0 = 0; y0 < gy; y0 += plan.blockRows) {
      const rn = Math.min(plan.blockRows, gy - y0);
      const block = blockAll.subarray(0, 2 * gz * rn * hx);
      const bytes = new Uint8Array(block.buffer, 0, block.byteLength);
      const chunk = 8 * rn * hx;
      for (let pz = 0; pz < gz; pz++) spectrum.readAt(bytes.subarray(pz * chunk, (pz + 1) * chunk), spectrumAt(pz, y0));
      const values = valuesAll.subarray(0, gz * rn * hx);
      for (let r0 = 0; r0 < rn; r0 += FILTER_ROWS) {
        const rk = Math.min(FILTER_ROWS, rn - r0);
        const part = filter.rows(plan.grid, source.voxelSize, [y0 + r0, y0 + r0 + rk]);
        if (part.length !== gz * rk * hx) {
          throw new TmeError('ERR_TME_MISMATCH', `the target filter's rows [${y0 + r0}, ${y0 + r0 + rk}) of FFT shape (${plan.grid.join(', ')}) have ${part.length} values; ${gz * rk * hx} expected`);
        }
        for (let i = 0; i < part.length; i++) {
          if (!Number.isFinite(part[i] as number)) throw new TmeError('ERR_TME_INVALID_OPTION', 'the target filter holds a non-finite value');
        }
        for (let z = 0; z < gz; z++) values.set(part.subarray(z * rk * hx, (z + 1) * rk * hx), (z * rn + r0) * hx);
      }
      native.filterColumns(block, values, gz, threads);
      for (let pz = 0; pz < gz; pz++) spectrum.writeAt(bytes.subarray(pz * chunk, (pz + 1) * chunk), spectrumAt(pz, y0));
      await step(Math.round((gz * (y0 + rn)) / gy) - Math.round((gz * y0) / gy));
    }
  };

  // Pass 3: back to real space, the target's planes only, cut back.
  const inverse = async (filtered: AtomicFileWriter): Promise<void> => {
    const realSlab = new Float32Array(plan.slabPlanes * gy * gx);
    const specSlab = new Float32Array(2 * plan.slabPlanes * planeSpectrum);
    const outSlab = new Float32Array(plan.slabPlanes * ny * nx);
    const scale = 1 / (gz * gy * gx);
    for (let z0 = 0; z0 < nz; z0 += plan.slabPlanes) {
      const pn = Math.min(plan.slabPlanes, nz - z0);
      const spec = specSlab.subarray(0, 2 * pn * planeSpectrum);
      spectrum.readAt(new Uint8Array(spec.buffer, 0, spec.byteLength), spectrumAt(z0 + box[0]));
      const real = realSlab.subarray(0, pn * gy * gx);
      native.fftPlanes(true, real, spec, [pn, gy, gx], threads);
      const out = outSlab.subarray(0, pn * ny * nx);
      for (let k = 0; k < pn; k++) {
        for (let y = 0; y < ny; y++) {
          const from = (k * gy + box[1] + y) * gx + box[2];
          const to = (k * ny + y) * nx;
          for (let x = 0; x < nx; x++) out[to + x] = (real[from + x] as number) * scale;
        }
      }
      filtered.writeAt(new Uint8Array(out.buffer, 0, out.byteLength), 4 * z0 * ny * nx);
      await step(pn);
    }
  };

  let filtered: AtomicFileWriter | undefined;
  const passMs: [number, number, number] = [0, 0, 0];
  try {
    filtered = new AtomicFileWriter(path.join(dir, 'target-filtered'));
    input.onProgress?.({ pass, done, total });
    let t0 = Date.now();
    await forward();
    collectGarbage();
    passMs[0] = Date.now() - t0;
    pass = 2;
    t0 = Date.now();
    await throughFilter();
    collectGarbage();
    passMs[1] = Date.now() - t0;
    pass = 3;
    t0 = Date.now();
    await inverse(filtered);
    collectGarbage();
    passMs[2] = Date.now() - t0;
    spectrum.abort();
    // The moments every tile normalises by: the filtered target's, in two more reads.
    const volume = new Float32TempFile(filtered, source.shape, source.voxelSize, source.origin);
    const { mean, variance } = slabMoments(volume, anyNoData ? source : undefined, plan.slabPlanes);
    collectGarbage();
    const kept = filtered;
    return { source: volume, madeFrom: { source, box, filter, padMode, noDataFill, anyNoData, padFill }, mean, variance, plan, passMs, release: () => kept.abort() };
  } catch (err) {
    spectrum.abort();
    filtered?.abort();
    throw err;
  }
}

/**
 * Mean and variance of a volume on disk in two passes of z-slabs, in voxel order (prepare.ts's `moments`), without
 * the no-data voxels of `noDataOf` (the tomogram the volume was filtered from) when given.
 */
function slabMoments(values: VolumeRegionSource, noDataOf: VolumeRegionSource | undefined, slab: number): { mean: number; variance: number } {
  const [nz, ny, nx] = values.shape;
  const section = ny * nx;
  const each = (visit: (data: Float32Array, skip: Uint8Array | undefined) => void): void => {
    for (let z0 = 0; z0 < nz; z0 += slab) {
      const zn = Math.min(slab, nz - z0);
      const data = values.readRegion([z0, 0, 0], [zn, ny, nx]);
      let skip: Uint8Array | undefined;
      if (noDataOf) {
        const read = readWithNoData(noDataOf, [z0, 0, 0], [zn, ny, nx]);
        const from = (z0 - read.start[0]) * section;
        skip = read.noData?.subarray(from, from + zn * section);
      }
      visit(data, skip);
    }
  };
  let s = 0;
  let n = 0;
  each((data, skip) => {
    for (let i = 0; i < data.length; i++) if (!skip?.[i]) { s += data[i] as number; n++; }
  });
  const mean = n > 0 ? s / n : 0;
  let q = 0;
  // prepare.ts's two spellings (with and without no-data voxels).
  each((data, skip) => {
    if (!noDataOf) for (let i = 0; i < data.length; i++) { const d = (data[i] as number) - mean; q += d * d; }
    else for (let i = 0; i < data.length; i++) if (!skip?.[i]) q += ((data[i] as number) - mean) ** 2;
  });
  return { mean, variance: n > 0 ? q / n : 0 };
}

/** Whether `filtered` is what filterVolumeOutOfCore would make from `input`: the same tomogram file, the same filter
 *  object, box, continuation and fills. */
export function sameVolumeFilter(filtered: FilteredVolume, input: FilteredVolume['madeFrom']): boolean {
  const m = filtered.madeFrom;
  return m.source.file === input.source.file && m.filter === input.filter && m.padMode === input.padMode
    && m.box.every((n, a) => n === input.box[a]) && Object.is(m.noDataFill, input.noDataFill) && Object.is(m.padFill, input.padFill)
    && m.anyNoData === input.anyNoData;
}
