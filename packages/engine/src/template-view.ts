import { createVolume, type Volume, type Zyx } from '@tme/formats';
import { filterGridFor, filterOnGrid, type MatchJob } from './prepare';
import { inscribedRadius, sphereMask } from './masks';
import { planScore, resolveScore } from './scores';
import { laplacian, standardise } from './laplace';
import { boxCentre } from './rotate';

/** What a search correlates, for looking at before a long run (`tme template`). */
export interface TemplateView {
  /** The template at the identity rotation as the loop sees it: filtered, normalised to mean 0 and σ 1 under the
   *  mask, times the mask. */
  matched: Volume;
  /** The template mask on the box (0..1). */
  mask: Volume;
  /** The template's Fourier filter on its grid, the whole spectrum with the zero frequency at the centre (index
   *  n//2), as image viewers show a missing wedge; undefined without a filter. */
  filter?: Volume;
}

/**
 * The template as the search will correlate it: the score's own preprocessing (lcc's Laplacian, cam's
 * standardisation), the filter applied on the filter grid with the box centre at index 0 (as every rotated copy is),
 * then normalised under the mask. Uses the CPU FFT; the target is not read.
 */
export function templateView(job: MatchJob): TemplateView {
  const { template } = job;
  const shape = template.shape;
  const plan = planScore(resolveScore(job.score ?? 'flc-sphere'));
  let data = template.data;
  if (plan.laplace) data = laplacian(data, shape, 'zero');
  if (plan.standardise) data = standardise(data);
  const mask = job.templateMask?.data
    ?? sphereMask(shape, job.maskRadius ?? inscribedRadius(shape, template.voxelSize), template.voxelSize);
  let filterVolume: Volume | undefined;
  if (job.filter) {
    const grid = filterGridFor(shape);
    const h = job.filter(grid, template.voxelSize);
    data = filterAtOrigin(data, shape, grid, h);
    filterVolume = createVolume(fullSpectrum(h, grid), grid, template.voxelSize);
  }
  let sum = 0;
  let weight = 0;
  for (let i = 0; i < data.length; i++) {
    sum += (mask[i] as number) * (data[i] as number);
    weight += mask[i] as number;
  }
  const mean = weight > 0 ? sum / weight : 0;
  let sq = 0;
  for (let i = 0; i < data.length; i++) sq += (mask[i] as number) * ((data[i] as number) - mean) ** 2;
  const sd = weight > 0 ? Math.sqrt(sq / weight) : 0;
  const matched = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) matched[i] = sd > 0 ? ((data[i] as number) - mean) / sd * (mask[i] as number) : 0;
  return {
    matched: createVolume(matched, shape, template.voxelSize, template.origin),
    mask: createVolume(Float32Array.from(mask), shape, template.voxelSize, template.origin),
    ...(filterVolume ? { filter: filterVolume } : {}),
  };
}

/** The box placed on `grid` with its centre at index 0 (wrapping), filtered by the half spectrum `h`, cut back out. */
function filterAtOrigin(data: Float32Array, shape: Zyx, grid: Zyx, h: Float32Array): Float32Array {
  const [nz, ny, nx] = shape;
  const [gz, gy, gx] = grid;
  const [cz, cy, cx] = boxCentre(shape);
  const at = (z: number, y: number, x: number): number =>
    ((((z - cz) % gz) + gz) % gz * gy + ((((y - cy) % gy) + gy) % gy)) * gx + ((((x - cx) % gx) + gx) % gx);
  const placed = new Float32Array(gz * gy * gx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) placed[at(z, y, x)] = data[(z * ny + y) * nx + x] as number;
  const filtered = filterOnGrid(placed, grid, h);
  const out = new Float32Array(data.length);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) out[(z * ny + y) * nx + x] = filtered[at(z, y, x)] as number;
  return out;
}

/** A real, centrosymmetric half spectrum (nz, ny, nx//2+1) as the whole spectrum, zero frequency at n//2. */
function fullSpectrum(h: Float32Array, grid: Zyx): Float32Array {
  const [gz, gy, gx] = grid;
  const hx = Math.floor(gx / 2) + 1;
  const out = new Float32Array(gz * gy * gx);
  const wrap = (k: number, n: number): number => ((k % n) + n) % n;
  for (let z = 0; z < gz; z++) {
    for (let y = 0; y < gy; y++) {
      for (let x = 0; x < gx; x++) {
        let kz = z - Math.floor(gz / 2);
        let ky = y - Math.floor(gy / 2);
        let kx = x - Math.floor(gx / 2);
        // F(−k) = F(k): negative kx are read at −k.
        if (kx < 0) [kz, ky, kx] = [-kz, -ky, -kx];
        out[(z * gy + y) * gx + x] = h[(wrap(kz, gz) * gy + wrap(ky, gy)) * hx + kx] as number;
      }
    }
  }
  return out;
}
