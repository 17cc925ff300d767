import { localSnr } from '../src';
import { rng } from './helpers/synthetic';

describe('localSnr', () => {
  // Background uniform in [0, 2): mean 1, std 1/√3. A peak of 5 has SNR (5 − 1)·√3 ≈ 6.93.
  const n = 90;
  const u = rng(11);
  const scores = Float32Array.from({ length: n ** 3 }, () => 2 * u());
  const rot = new Int32Array(n ** 3);
  const c = 45;
  scores[(c * n + c) * n + c] = 5;
  const want = 4 * Math.sqrt(3);

  it('is (score − shell mean)/shell std for a small shell (every voxel)', () => {
    expect(Math.abs(localSnr(scores, rot, [n, n, n], [c, c, c], 5, 2, 6) / want - 1)).toBeLessThan(0.05);
  });

  it('samples a large shell and stays within 5 %', () => {
    expect(Math.abs(localSnr(scores, rot, [n, n, n], [c, c, c], 5, 20, 40) / want - 1)).toBeLessThan(0.05);
  });

  it('ignores unscored voxels and gives NaN for an empty shell', () => {
    const r2 = new Int32Array(n ** 3).fill(-1);
    expect(localSnr(scores, r2, [n, n, n], [c, c, c], 5, 2, 6)).toBeNaN();
    expect(localSnr(scores, rot, [n, n, n], [0, 0, 0], 5, 200, 201)).toBeNaN();
  });
});
