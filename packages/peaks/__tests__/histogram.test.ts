import { scoreHistogram } from '../src';
import { rng } from './helpers/synthetic';

function normals(n: number, mean: number, std: number, seed: number): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const p = 2 * Math.PI * u();
    out[i] = mean + std * r * Math.cos(p);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(p);
  }
  return out;
}

describe('scoreHistogram', () => {
  it('counts every voxel once and matches the moments', () => {
    const map = normals(100000, 0.1, 0.02, 1);
    const h = scoreHistogram(map, { bins: 50, threshold: 0.2 });
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(100000);
    expect(h.edges).toHaveLength(51);
    expect(h.edges[0]).toBe(h.min);
    expect(h.edges[50]).toBeCloseTo(h.max, 12);
    let s = 0; for (const v of map) s += v;
    expect(h.mean).toBeCloseTo(s / map.length, 10);
    expect(h.threshold).toBe(0.2);
  });

  it('fits the noise Gaussian and ignores a signal tail and the masked-out part', () => {
    const noise = normals(200000, 0.1, 0.02, 2);
    const map = new Float32Array(220000);
    map.set(noise);
    const tail = normals(20000, 0.3, 0.05, 3); // 10 % "particles", far in the right tail
    map.set(tail, 200000);
    const h = scoreHistogram(map, { bins: 80 });
    expect(h.fit.method).toBe('log-parabola');
    expect(Math.abs(h.fit.mean - 0.1)).toBeLessThan(0.002);
    expect(Math.abs(h.fit.std / 0.02 - 1)).toBeLessThan(0.05);
    expect(h.std).toBeGreaterThan(0.05); // the plain std is ruined by the tail
    // fitted counts follow the histogram near the mode
    const k = h.counts.indexOf(Math.max(...h.counts));
    expect(Math.abs(h.fitted[k]! / h.counts[k]! - 1)).toBeLessThan(0.1);
    const mask = new Uint8Array(220000).fill(1, 0, 200000);
    const hm = scoreHistogram(map, { mask, bins: 80 });
    expect(hm.count).toBe(200000);
    expect(hm.max).toBeLessThan(0.25);
  });

  it('skips unscored voxels and rejects bad options', () => {
    const map = Float32Array.of(1, 2, NaN, 4);
    const rot = Int32Array.of(0, -1, 0, 0);
    expect(scoreHistogram(map, { rotationIndices: rot, bins: 3 }).count).toBe(2);
    expect(() => scoreHistogram(map, { bins: 0 })).toThrow('Expected integer in [1, 1000000] for bins but received 0 of type number');
  });
});
