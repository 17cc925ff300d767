import { expectedFalsePositives, falseAlarmThreshold } from '../src';

describe('falseAlarmThreshold', () => {
  it('is √2·σ·erfcinv(2·nFP/(voxels·rotations)) plus the mean (scipy reference values)', () => {
    // python3: sqrt(2)*erfcinv(2*1/(1e6*1e4))
    expect(falseAlarmThreshold({ mean: 0, std: 1, rotations: 1e4, voxels: 1 }, 1, 1e6)).toBeCloseTo(6.361340902404057, 12);
    // python3: 0.01 + sqrt(2)*0.05*erfcinv(2*3/(250000*7000))
    expect(falseAlarmThreshold({ mean: 0.01, std: 0.05, rotations: 7000, voxels: 1 }, 3, 250000)).toBeCloseTo(0.3054819769487702, 13);
  });

  it('uses the voxel count given (the masked region), not the statistics voxel count', () => {
    const stats = { mean: 0, std: 1, rotations: 1000, voxels: 1e6 };
    const whole = falseAlarmThreshold(stats, 1, 1e6);
    const masked = falseAlarmThreshold(stats, 1, 1e5);
    expect(masked).toBeLessThan(whole);
    expect(expectedFalsePositives(stats, whole, 1e5)).toBeCloseTo(0.1, 9);
  });

  it('round-trips with expectedFalsePositives', () => {
    const stats = { mean: 0.02, std: 0.03, rotations: 15000, voxels: 1 };
    for (const nFp of [1e-3, 0.5, 1, 7, 1000]) {
      const t = falseAlarmThreshold(stats, nFp, 512 * 512 * 200);
      expect(Math.abs(expectedFalsePositives(stats, t, 512 * 512 * 200) - nFp) / nFp).toBeLessThan(1e-9);
    }
  });

  it('with per-rotation statistics: equal rotations give the pooled cut-off; unequal ones sum their own tails', () => {
    const rotations = 1000;
    const same = { mean: 0.01, std: 0.05, rotations, voxels: 1, perRotation: { mean: new Float64Array(rotations).fill(0.01), std: new Float64Array(rotations).fill(0.05) } };
    const pooled = falseAlarmThreshold({ ...same, perRotation: undefined }, 1, 1e6);
    expect(falseAlarmThreshold(same, 1, 1e6)).toBeCloseTo(pooled, 9);
    // A tenth of the rotations twice as wide (lcc's grid-aligned rotations): their tail decides, the pooled σ
    // (√(0.9·1 + 0.1·4) = 1.14) puts the cut-off far lower and lets ~500 noise peaks through per expected one.
    const std = Float64Array.from({ length: rotations }, (_, r) => (r % 10 === 0 ? 2 : 1));
    const mixed = { mean: 0, std: Math.sqrt(0.9 + 0.4), rotations, voxels: 1, perRotation: { mean: new Float64Array(rotations), std } };
    const t = falseAlarmThreshold(mixed, 1, 1e6);
    // python3: brentq(lambda t: 1e6*(100*0.5*erfc(t/(2*sqrt(2))) + 900*0.5*erfc(t/sqrt(2))) - 1, 5, 20)
    expect(t).toBeCloseTo(11.224002488349578, 9);
    expect(expectedFalsePositives(mixed, t, 1e6)).toBeCloseTo(1, 6);
    const naive = falseAlarmThreshold({ ...mixed, perRotation: undefined }, 1, 1e6);
    expect(naive).toBeLessThan(t);
    expect(expectedFalsePositives(mixed, naive, 1e6)).toBeGreaterThan(100);
    expect(() => falseAlarmThreshold({ ...mixed, perRotation: { mean: new Float64Array(3), std } }, 1, 1e6)).toThrow(/statistics.perRotation/);
  });

  it('rejects impossible requests with the house message', () => {
    const stats = { mean: 0, std: 1, rotations: 10, voxels: 100 };
    expect(() => falseAlarmThreshold(stats, 0, 100)).toThrow('Expected number > 0 for falseAlarms but received 0 of type number');
    expect(() => falseAlarmThreshold(stats, 1000, 100)).toThrow(/falseAlarms/);
    expect(() => falseAlarmThreshold({ ...stats, std: 0 }, 1, 100)).toThrow(/statistics.std/);
  });
});
