import { createVolume, invalidOption, TmeError, type Volume, type Zyx } from '@tme/formats';
import { bandPassFilter } from './bandpass';
import { irfftn, rfftn } from './fft';
import { nextFastEvenSize } from './fast-size';
import { fourierShift, resampleVolume, rollVolume } from './resample';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

export interface PrepareTemplateOptions {
  /** Resample to this voxel size (Å): the target's. Default: keep. */
  voxelSize?: number;
  /** Multiply by −1 first (dark-protein maps → bright). Default false. */
  invertContrast?: boolean;
  /** Cubic box edge (voxels). Default: the fast even size ≥ the largest edge after resampling. */
  boxSize?: number;
  /** Move the centre of mass (of the positive density) to box//2. Default true. */
  center?: boolean;
  /** Centre to sub-voxel precision with a Fourier shift (else the nearest whole voxel). Default false. */
  subvoxel?: boolean;
  /** Gaussian low-pass (Å, gain 0.5 at 1/resolution). Default: none. */
  lowpassAngstrom?: number;
  /** Standardise to zero mean, unit std (inside `mask` when given). Default true. */
  normalize?: boolean;
  /** Mask (template's final shape) for normalisation statistics. Default: the whole box. */
  mask?: Volume;
}

/** Centre of mass (voxels, z, y, x) of max(value, 0). */
export function centerOfMass(volume: Volume): Zyx {
  const [nz, ny, nx] = volume.shape;
  let s = 0;
  let cz = 0;
  let cy = 0;
  let cx = 0;
  let i = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, i++) {
        const v = Math.max(0, volume.data[i] as number);
        s += v;
        cz += v * z;
        cy += v * y;
        cx += v * x;
      }
  if (!(s > 0)) throw new TmeError('ERR_TME_INVALID_OPTION', 'Cannot centre a template with no positive density (invert its contrast?)');
  return [cz / s, cy / s, cx / s];
}

/** Zero mean, unit standard deviation inside `mask` (weights; > 0 counts), or over the whole volume. */
export function normalizeVolume(volume: Volume, mask?: Volume): Volume {
  if (mask && mask.data.length !== volume.data.length) {
    throw new TmeError('ERR_TME_MISMATCH', `Mask shape (${mask.shape.join(', ')}) differs from template shape (${volume.shape.join(', ')})`);
  }
  let w = 0;
  let m = 0;
  for (let i = 0; i < volume.data.length; i++) {
    const wi = mask ? Math.max(0, mask.data[i] as number) : 1;
    w += wi;
    m += wi * (volume.data[i] as number);
  }
  if (!(w > 0)) throw new TmeError('ERR_TME_INVALID_OPTION', 'Cannot normalise under an empty mask');
  m /= w;
  let v = 0;
  for (let i = 0; i < volume.data.length; i++) v += (mask ? Math.max(0, mask.data[i] as number) : 1) * ((volume.data[i] as number) - m) ** 2;
  const sd = Math.sqrt(v / w);
  if (!(sd > 0)) throw new TmeError('ERR_TME_INVALID_OPTION', 'Cannot normalise a constant template');
  const data = new Float32Array(volume.data.length);
  for (let i = 0; i < data.length; i++) data[i] = ((volume.data[i] as number) - m) / sd;
  return createVolume(data, volume.shape, volume.voxelSize, volume.origin);
}

/** Pads or crops to a cubic box, keeping voxel box//2 of the old box on box//2 of the new one. */
export function reboxVolume(volume: Volume, edge: number): Volume {
  const shape: Zyx = [edge, edge, edge];
  const out = new Float32Array(edge ** 3);
  const [nz, ny, nx] = volume.shape;
  const off = [0, 1, 2].map((a) => Math.floor(edge / 2) - Math.floor(volume.shape[a]! / 2)) as [number, number, number];
  for (let z = 0; z < nz; z++) {
    const zz = z + off[0];
    if (zz < 0 || zz >= edge) continue;
    for (let y = 0; y < ny; y++) {
      const yy = y + off[1];
      if (yy < 0 || yy >= edge) continue;
      for (let x = 0; x < nx; x++) {
        const xx = x + off[2];
        if (xx < 0 || xx >= edge) continue;
        out[(zz * edge + yy) * edge + xx] = volume.data[(z * ny + y) * nx + x] as number;
      }
    }
  }
  const origin: Zyx = [0, 1, 2].map((a) => volume.origin[a]! - off[a]! * volume.voxelSize[a]!) as unknown as Zyx;
  return createVolume(out, shape, volume.voxelSize, origin);
}

/**
 * A template from a density map: resample to the target's voxel size, invert on request, box to a fast even
 * cube, centre the centre of mass on box//2, low-pass, and standardise. Returns a new volume; the origin
 * tracks the map's physical frame.
 */
export function prepareTemplate(map: Volume, options: PrepareTemplateOptions = {}): Volume {
  let vol = options.voxelSize === undefined ? map : resampleVolume(map, options.voxelSize);
  if (options.invertContrast) vol = createVolume(vol.data.map((v) => -v), vol.shape, vol.voxelSize, vol.origin);
  const edge = options.boxSize ?? nextFastEvenSize(Math.max(...vol.shape));
  if (!(Number.isInteger(edge) && edge >= 2)) throw invalidOption('boxSize', 'integer ≥ 2', edge);
  vol = reboxVolume(vol, edge);
  if (options.center ?? true) {
    const com = centerOfMass(vol);
    const c = Math.floor(edge / 2);
    const shift = com.map((q) => c - q) as unknown as Zyx;
    const applied: Zyx = options.subvoxel ? shift : (shift.map((s) => Math.round(s)) as unknown as Zyx);
    if (applied.some((s) => s !== 0)) {
      vol = options.subvoxel ? fourierShift(vol, applied) : rollVolume(vol, applied);
      vol = createVolume(vol.data, vol.shape, vol.voxelSize, [0, 1, 2].map((a) => vol.origin[a]! - applied[a]! * vol.voxelSize[a]!) as unknown as Zyx);
    }
  }
  if (options.lowpassAngstrom !== undefined) {
    const f = bandPassFilter(vol.shape, vol.voxelSize, { lowpassAngstrom: options.lowpassAngstrom });
    const spec = rfftn(vol.data, vol.shape);
    for (let i = 0; i < f.length; i++) {
      spec.re[i] = (spec.re[i] as number) * (f[i] as number);
      spec.im[i] = (spec.im[i] as number) * (f[i] as number);
    }
    vol = createVolume(Float32Array.from(irfftn(spec)), vol.shape, vol.voxelSize, vol.origin);
  }
  if (options.normalize ?? true) vol = normalizeVolume(vol, options.mask);
  return vol;
}
