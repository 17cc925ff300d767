import { createVolume, type Volume, type Zyx } from '@tme/formats';
import { resampleVolume, fourierShift, rollVolume } from '../src/resample';
import { prepareTemplate, centerOfMass, normalizeVolume } from '../src/template-map';
import { sphereMask, ellipsoidMask, thresholdMask, distanceTransform } from '../src/masks';

/** Anisotropic Gaussian blob at a physical position (Å) on a grid with origin 0. */
function blob(shape: Zyx, v: number, centerA: Zyx, sigmaA: Zyx): Volume {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  let i = 0;
  for (let z = 0; z < shape[0]; z++)
    for (let y = 0; y < shape[1]; y++)
      for (let x = 0; x < shape[2]; x++, i++)
        data[i] = Math.exp(-0.5 * (((z * v - centerA[0]) / sigmaA[0]) ** 2 + ((y * v - centerA[1]) / sigmaA[1]) ** 2 + ((x * v - centerA[2]) / sigmaA[2]) ** 2));
  return createVolume(data, shape, v);
}

function comAngstrom(vol: Volume): number[] {
  const c = centerOfMass(vol);
  return c.map((q, a) => vol.origin[a]! + q * vol.voxelSize[a]!);
}
const mean = (vol: Volume) => vol.data.reduce((a, b) => a + b, 0) / vol.data.length;

describe('resampleVolume', () => {
  const src = blob([60, 60, 60], 2, [50, 62, 70], [8, 6, 10]);
  it('coarsens 2 → 3 Å exactly (60 → 40 voxels): same centre of mass (Å) and mean', () => {
    const r = resampleVolume(src, 3);
    expect(r.shape).toEqual([40, 40, 40]);
    expect(r.voxelSize).toEqual([3, 3, 3]);
    const a = comAngstrom(src);
    const b = comAngstrom(r);
    for (const k of [0, 1, 2]) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(0.01);
    expect(mean(r) / mean(src)).toBeCloseTo(1, 5);
    // Point value at a shared sample (Å 60, 60, 60 = voxel 30 in src, 20 in r).
    expect(r.data[(20 * 40 + 20) * 40 + 20]).toBeCloseTo(src.data[(30 * 60 + 30) * 60 + 30]!, 3);
  });
  it('refines 2 → 1.37 Å (non-integer ratio): exact voxel size, same centre of mass', () => {
    const small = blob([36, 36, 36], 2, [30, 38, 40], [6, 5, 7]);
    const r = resampleVolume(small, 1.37);
    for (const v of r.voxelSize) expect(Math.abs(v / 1.37 - 1)).toBeLessThan(1e-4);
    const a = comAngstrom(small);
    const b = comAngstrom(r);
    for (const k of [0, 1, 2]) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(0.02);
    // Integral (Å³-weighted sum) preserved.
    const sum = (vol: Volume) => vol.data.reduce((p, q) => p + q, 0) * vol.voxelSize[0] * vol.voxelSize[1] * vol.voxelSize[2];
    expect(sum(r) / sum(small)).toBeCloseTo(1, 3);
  });
});

describe('shifts', () => {
  it('fourierShift by a whole number of voxels equals rollVolume; a half voxel moves the centre by 0.5', () => {
    const b = blob([20, 22, 24], 1, [9, 10, 11], [2, 2, 2]);
    const f = fourierShift(b, [1, -2, 3]);
    const r = rollVolume(b, [1, -2, 3]);
    let err = 0;
    for (let i = 0; i < f.data.length; i++) err = Math.max(err, Math.abs(f.data[i]! - r.data[i]!));
    expect(err).toBeLessThan(1e-5);
    const h = fourierShift(b, [0.5, 0, 0]);
    expect(centerOfMass(h)[0] - centerOfMass(b)[0]).toBeCloseTo(0.5, 3);
  });
});

describe('prepareTemplate', () => {
  it('resamples, boxes to a fast even cube, centres on box//2, normalises', () => {
    const map = blob([50, 44, 40], 2, [30, 40, 44], [8, 5, 6]);
    const t = prepareTemplate(map, { voxelSize: 3, subvoxel: true, normalize: false });
    expect(t.shape[0]).toBe(t.shape[2]);
    expect([34, 36, 40]).toContain(t.shape[0]); // ⌈50·2/3⌉ = 34 → fast even 36
    const c = centerOfMass(t);
    for (const q of c) expect(Math.abs(q - Math.floor(t.shape[0] / 2))).toBeLessThan(0.05);
    // The origin tracks the physical frame: the centre of mass stays at the same Å.
    const a = comAngstrom(map);
    const b = comAngstrom(t);
    for (const k of [0, 1, 2]) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(0.05);
    const n = prepareTemplate(map, { voxelSize: 3, invertContrast: false });
    expect(mean(n)).toBeCloseTo(0, 5);
    const sd = Math.sqrt(n.data.reduce((p, q) => p + q * q, 0) / n.data.length);
    expect(sd).toBeCloseTo(1, 4);
  });
  it('integer centring lands within half a voxel; inversion of a dark map gives bright density', () => {
    const dark = blob([40, 40, 40], 2, [30, 34, 50], [6, 6, 6]);
    dark.data.forEach((v, i) => (dark.data[i] = -v));
    const t = prepareTemplate(dark, { invertContrast: true, normalize: false });
    const c = centerOfMass(t);
    for (const q of c) expect(Math.abs(q - 20)).toBeLessThanOrEqual(0.5);
    expect(Math.max(...t.data)).toBeGreaterThan(0.9);
  });
  it('low-passes with gain 1 at DC (integral kept) and a lower, wider peak', () => {
    const sharp = blob([32, 32, 32], 2, [32, 32, 32], [2, 2, 2]);
    const lp = prepareTemplate(sharp, { lowpassAngstrom: 20, normalize: false, center: false });
    const sum = (v: Volume) => v.data.reduce((a, b) => a + b, 0);
    expect(sum(lp) / sum(sharp)).toBeCloseTo(1, 4);
    expect(Math.max(...lp.data)).toBeLessThan(0.5 * Math.max(...sharp.data));
  });

  it('normalises inside a mask', () => {
    const b = blob([16, 16, 16], 1, [8, 8, 8], [2, 2, 2]);
    const { mask } = sphereMask([16, 16, 16], 1, { radiusAngstrom: 4 });
    const n = normalizeVolume(b, mask);
    let s = 0;
    let s2 = 0;
    let w = 0;
    for (let i = 0; i < n.data.length; i++) if (mask.data[i]! > 0) (s += n.data[i]!), (s2 += n.data[i]! ** 2), w++;
    expect(s / w).toBeCloseTo(0, 5);
    expect(s2 / w).toBeCloseTo(1, 4);
  });
});

describe('masks', () => {
  it('sphere: 1 inside the stated radius, cosine edge, 0 beyond; reports radius + edge', () => {
    const { mask, radiusAngstrom } = sphereMask([40, 40, 40], 2, { radiusAngstrom: 20, edgeAngstrom: 6 });
    const at = (z: number, y: number, x: number) => mask.data[(z * 40 + y) * 40 + x]!;
    expect(at(20, 20, 30)).toBe(1); // 20 Å
    expect(at(20, 20, 31)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 3)), 6); // 22 Å: 2 Å into a 6 Å edge
    expect(at(20, 20, 33)).toBe(0); // 26 Å
    expect(radiusAngstrom).toBeLessThan(26);
    expect(radiusAngstrom).toBeGreaterThan(24);
    const hard = sphereMask([40, 40, 40], 1, { radiusAngstrom: 12 });
    const vol = hard.mask.data.reduce((a, b) => a + b, 0);
    expect(vol / ((4 / 3) * Math.PI * 12 ** 3)).toBeCloseTo(1, 1); // voxel count ≈ sphere volume (±5%)
    expect(hard.radiusAngstrom).toBeCloseTo(12, 6);
  });
  it('ellipsoid: semi-axes along z, y, x', () => {
    const { mask } = ellipsoidMask([40, 40, 40], 1, { radiiAngstrom: [6, 10, 15] });
    const at = (z: number, y: number, x: number) => mask.data[(z * 40 + y) * 40 + x]!;
    expect([at(26, 20, 20), at(27, 20, 20), at(20, 30, 20), at(20, 31, 20), at(20, 20, 35), at(20, 20, 36)]).toEqual([1, 0, 1, 0, 1, 0]);
  });
  it('distance transform is exact on anisotropic voxels', () => {
    const seed = new Uint8Array(10 * 10 * 10);
    seed[(5 * 10 + 5) * 10 + 5] = 1;
    const d = distanceTransform(seed, [10, 10, 10], [1, 2, 3]);
    expect(d[(8 * 10 + 1) * 10 + 9]).toBeCloseTo(Math.hypot(3, 8, 12), 9);
  });
  it('threshold mask: grown by the dilation, soft edge, radius reported', () => {
    const b = blob([40, 40, 40], 2, [40, 40, 40], [6, 6, 6]); // centred at voxel 20
    // exp(−r²/72) > 0.5 ↔ r < 7.06 Å; dilate 6 Å → 1 up to 13.06 Å, edge 4 Å → 0 from 17.06 Å.
    const { mask, radiusAngstrom } = thresholdMask(b, { threshold: 0.5, dilationAngstrom: 6, edgeAngstrom: 4 });
    const at = (x: number) => mask.data[(20 * 40 + 20) * 40 + x]!;
    expect(at(26)).toBe(1); // 12 Å
    expect(at(27)).toBeGreaterThan(0); // 14 Å: in the edge (distance to the seed boundary voxel at 6 Å: 8 Å)
    expect(at(27)).toBeLessThan(1);
    expect(at(29)).toBe(0); // 18 Å
    expect(radiusAngstrom).toBeGreaterThan(14);
    expect(radiusAngstrom).toBeLessThan(17.1);
  });
});
