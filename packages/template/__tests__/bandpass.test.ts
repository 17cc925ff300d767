import { bandPassFilter, lowpassGain } from '../src/bandpass';
import { criticalExposure, exposureWeight } from '../src/exposure';
import type { Zyx } from '@tme/formats';

describe('bandPassFilter', () => {
  const shape: Zyx = [1, 1, 200];
  const voxel: Zyx = [2, 2, 2]; // kx index i ↔ i / 400 Å⁻¹
  it('has gain 0.5 at the low-pass and high-pass cutoffs (Gaussian, default)', () => {
    const lp = bandPassFilter(shape, voxel, { lowpassAngstrom: 20 }); // 1/20 Å⁻¹ = index 20
    expect(lp[20]).toBeCloseTo(0.5, 6);
    expect(lp[0]).toBe(1);
    expect(lp[10]).toBeCloseTo(Math.pow(0.5, 0.25), 6); // Gaussian: gain(k) = 0.5^((k/kc)²)
    const hp = bandPassFilter(shape, voxel, { highpassAngstrom: 100 }); // index 4
    expect(hp[4]).toBeCloseTo(0.5, 6);
    expect(hp[0]).toBe(0);
  });
  it('has gain 0.5 at the cutoff for raised-cosine edges and is 1/0 outside the edge', () => {
    const f = bandPassFilter(shape, voxel, { lowpassAngstrom: 20, edge: 'cosine', edgeWidth: 0.01 }); // ±2 indices
    expect(f[20]).toBeCloseTo(0.5, 6);
    expect(f[18]).toBe(1);
    expect(f[22]).toBe(0);
    expect(f[19]).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI * 0.25)), 6);
  });
  it('hard edges keep the cutoff and drop beyond it', () => {
    const f = bandPassFilter(shape, voxel, { lowpassAngstrom: 20, highpassAngstrom: 100, edge: 'hard' });
    expect([f[3], f[4], f[20], f[21]]).toEqual([0, 1, 1, 0]);
  });
  it('is radial in 3D with anisotropic voxels', () => {
    const f = bandPassFilter([32, 32, 32], [2, 3, 4], { lowpassAngstrom: 30 });
    const k = Math.hypot(1 / 64, 2 / 96, 3 / 128); // (z, y, x) indices (1, 2, 3)
    expect(f[(1 * 32 + 2) * 17 + 3]).toBeCloseTo(lowpassGain(k, 1 / 30), 6);
  });
  it('rejects a negative resolution with the house message', () => {
    expect(() => bandPassFilter(shape, voxel, { lowpassAngstrom: -3 })).toThrow(
      'Expected a resolution > 0 Å for lowpassAngstrom but received -3 of type number',
    );
  });
});

describe('exposure weighting', () => {
  it('equals the Grant & Grigorieff formula at k = 0.1 Å⁻¹ and is monotone in dose', () => {
    const ne = 0.245 * Math.pow(0.1, -1.665) + 2.81;
    expect(criticalExposure(0.1)).toBeCloseTo(ne, 12);
    expect(ne).toBeCloseTo(14.14, 2); // 0.245·10^1.665 + 2.81
    expect(exposureWeight(0.1, 30)).toBeCloseTo(Math.exp(-30 / (2 * ne)), 12);
    let prev = 1;
    for (let d = 5; d < 200; d += 5) {
      const w = exposureWeight(0.1, d);
      expect(w).toBeLessThan(prev);
      prev = w;
    }
    expect(exposureWeight(0, 100)).toBe(1);
    expect(exposureWeight(0.2, 50)).toBeLessThan(exposureWeight(0.05, 50)); // high frequencies fade first
  });
});
