import { runMatch } from '../index';
import { maxAbs, maxAbsDiff } from './helpers/devices';
import { axisAngle, sphereMask, type Shape } from './helpers/reference';
import { randomRotations, smoothVolume } from './helpers/volumes';

// Fourier-space rotation against real-space rotation on a band-limited template (the measured accuracy is in
// native/README.md; 'real' stays the default).
describe("rotationMode 'fourier' (CPU path)", () => {
  const tile: Shape = [32, 32, 32];
  const box: Shape = [12, 12, 12];
  const mask = sphereMask(box, 5);
  const template = smoothVolume(box, 6, 1.5).map((v, i) => v * mask[i]!);
  const target = smoothVolume(tile, 5, 1.5);
  const common = { device: 'cpu' as const, target, targetShape: tile, template, templateShape: box, mask };

  it('equals real space on grid-aligned rotations (identity, 90°) up to the zeroed Nyquist planes', async () => {
    const rotations = Float64Array.from([...axisAngle([0, 0, 1], 0), ...axisAngle([0, 1, 0], 90)]);
    const real = await runMatch({ ...common, rotations, score: 'cc' });
    // Oversampling 3 makes the template grid the tile itself (36 > 32): grid-aligned rotations sample exactly.
    const fourier = await runMatch({ ...common, rotations, score: 'cc', rotationMode: 'fourier', fourierOversampling: 3 });
    expect(maxAbsDiff(real.scores, fourier.scores) / maxAbs(real.scores)).toBeLessThan(2e-3);
  });

  it('stays within a few percent on random rotations at the default 2× oversampling (cc: map ≤ 8%, peaks ≤ 6%; flc-sphere peaks within −7%..+2%)', async () => {
    const rotations = Float64Array.from(randomRotations(6, 9).flat());
    const real = await runMatch({ ...common, rotations, score: 'cc' });
    const fourier = await runMatch({ ...common, rotations, score: 'cc', rotationMode: 'fourier' });
    expect(maxAbsDiff(real.scores, fourier.scores) / maxAbs(real.scores)).toBeLessThan(0.08);
    real.stats.perRotationMax.forEach((v, r) => expect(Math.abs(fourier.stats.perRotationMax[r]! - v) / v).toBeLessThan(0.06));
    const realFlc = await runMatch({ ...common, rotations, score: 'flc-sphere' });
    const fourierFlc = await runMatch({ ...common, rotations, score: 'flc-sphere', rotationMode: 'fourier' });
    realFlc.stats.perRotationMax.forEach((v, r) => {
      const ratio = fourierFlc.stats.perRotationMax[r]! / v;
      expect(ratio).toBeGreaterThan(0.93);
      expect(ratio).toBeLessThan(1.02);
    });
  });
});
