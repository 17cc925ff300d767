import { createVolume, type Volume } from '@tme/formats';
import { rotateBox } from '@tme/engine';
import { generateSyntheticTomogram } from '../src/synthetic-tomogram';

// An asymmetric blob template: three Gaussians of different sizes, so every rotation looks different.
function blobTemplate(n = 12): Volume {
  const data = new Float32Array(n * n * n);
  const c = n >> 1;
  const blobs = [[0, 0, 0, 2.0, 1], [0, 0, 3, 1.2, 0.8], [2, -2, 0, 1.0, 0.6]];
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    let v = 0;
    for (const [bz, by, bx, s, a] of blobs as number[][]) {
      const d2 = (z - c - bz!) ** 2 + (y - c - by!) ** 2 + (x - c - bx!) ** 2;
      v += a! * Math.exp(-d2 / (2 * s! * s!));
    }
    data[(z * n + y) * n + x] = v;
  }
  return createVolume(data, [n, n, n], 5);
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sa = 0; let sb = 0; let sab = 0; let saa = 0; let sbb = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) { sa += a[i]!; sb += b[i]!; }
  const ma = sa / n; const mb = sb / n;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma; const db = b[i]! - mb;
    sab += da * db; saa += da * da; sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Standard deviation of a − b over every voxel (the noise a tomogram adds to its noise-free twin). */
function stdOfDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0; let s2 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d; s2 += d * d;
  }
  const n = a.length;
  return Math.sqrt(s2 / n - (s / n) ** 2);
}

describe('generateSyntheticTomogram', () => {
  const template = blobTemplate();

  test('without noise or wedge, each particle box holds the template rotated by its true rotation', () => {
    const { tomogram, truth, noiseStd } = generateSyntheticTomogram(template, {
      shape: [32, 40, 48], particles: 3, snr: 0, tiltRange: null, seed: 7, minSeparation: 1.2,
    });
    expect(noiseStd).toBe(0);
    expect(truth).toHaveLength(3);
    const n = template.shape[0];
    for (const t of truth) {
      const box = new Float64Array(n * n * n);
      for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
        const [pz, py, px] = t.position;
        box[(z * n + y) * n + x] = tomogram.data[((pz - 6 + z) * 40 + (py - 6 + y)) * 48 + (px - 6 + x)]!;
      }
      const expected = rotateBox(template.data, template.shape, t.rotation, 'cubic');
      expect(correlation(box, expected)).toBeGreaterThan(0.999);
      // The unrotated template fits worse: the rotation really is in the data.
      expect(correlation(box, template.data)).toBeLessThan(0.99);
    }
  });

  test('the noise has the requested SNR and the same seed gives the same tomogram', () => {
    const a = generateSyntheticTomogram(template, { shape: [24, 32, 32], particles: 2, snr: 0.5, seed: 3 });
    const b = generateSyntheticTomogram(template, { shape: [24, 32, 32], particles: 2, snr: 0.5, seed: 3 });
    const clean = generateSyntheticTomogram(template, { shape: [24, 32, 32], particles: 2, snr: 0, seed: 3 });
    expect(Buffer.from(a.tomogram.data.buffer).equals(Buffer.from(b.tomogram.data.buffer))).toBe(true);
    const measured = stdOfDifference(a.tomogram.data, clean.tomogram.data);
    expect(measured / a.noiseStd).toBeGreaterThan(0.97);
    expect(measured / a.noiseStd).toBeLessThan(1.03);
  });

  test('the missing wedge removes the Fourier components around kz', () => {
    const { tomogram } = generateSyntheticTomogram(template, { shape: [32, 32, 32], particles: 2, snr: 0, seed: 5, tiltRange: [-45, 45] });
    // A line along z through the volume's spectrum: kx = ky = 0, kz ≠ 0 lies in the missing wedge, so the
    // mean over each z-plane (the projection onto z) must be constant.
    const planeMeans: number[] = [];
    for (let z = 0; z < 32; z++) {
      let m = 0;
      for (let i = 0; i < 32 * 32; i++) m += tomogram.data[z * 1024 + i]!;
      planeMeans.push(m / 1024);
    }
    const spread = Math.max(...planeMeans) - Math.min(...planeMeans);
    expect(spread).toBeLessThan(1e-4 * Math.max(...tomogram.data.map(Math.abs)));
  });

  describe('tiltSeries: each particle at its own defocus per tilt', () => {
    const tilts = [-60, -30, 0, 30, 60].map((angle, i) => ({ angle, dose: 3 * i, ctf: { defocus: 20000 } }));
    const odd = blobTemplate(13);

    test('a particle at the tomogram\'s centre sees the tilts\' own defocus: the same lamella for either hand or none', () => {
      // The only place a 13³ box fits a 13³ tomogram is its centre, (n − 1)/2: every gradient term is 0 there.
      const make = (h: -1 | 0 | 1) => generateSyntheticTomogram(odd, { shape: [13, 13, 13], particles: 1, snr: 0, seed: 4, tiltRange: null, tiltSeries: { tilts, defocusHandedness: h } });
      const [right, none, wrong] = [make(1), make(0), make(-1)];
      expect(right.truth[0]?.position).toEqual([6, 6, 6]);
      expect(Array.from(right.tomogram.data)).toEqual(Array.from(none.tomogram.data));
      expect(Array.from(wrong.tomogram.data)).toEqual(Array.from(none.tomogram.data));
      // And the series did filter it: the CTF makes the copy unlike the plain rotated template.
      const plain = generateSyntheticTomogram(odd, { shape: [13, 13, 13], particles: 1, snr: 0, seed: 4, tiltRange: null });
      expect(correlation(right.tomogram.data, plain.tomogram.data)).toBeLessThan(0.9);
    });

    test('off the centre the hands differ, the noise has the requested SNR, and a wedge or decoys besides are refused', () => {
      const make = (h: -1 | 1, snr: number) => generateSyntheticTomogram(odd, {
        shape: [13, 16, 64], particles: 2, snr, seed: 9, tiltRange: null, tiltSeries: { tilts, defocusHandedness: h },
      });
      const [right, wrong, noisy] = [make(1, 0), make(-1, 0), make(1, 0.5)];
      expect(right.truth.map((t) => t.position)).toEqual(wrong.truth.map((t) => t.position));
      expect(Buffer.from(right.tomogram.data.buffer).equals(Buffer.from(wrong.tomogram.data.buffer))).toBe(false);
      const measured = stdOfDifference(noisy.tomogram.data, right.tomogram.data);
      expect(measured / noisy.noiseStd).toBeGreaterThan(0.97);
      expect(measured / noisy.noiseStd).toBeLessThan(1.03);
      expect(() => generateSyntheticTomogram(odd, { shape: [13, 16, 64], particles: 1, tiltSeries: { tilts }, tiltRange: [-60, 60] })).toThrow(/tiltRange/);
      expect(() => generateSyntheticTomogram(odd, { shape: [13, 16, 64], particles: 1, tiltSeries: { tilts }, tiltRange: null, decoys: {} })).toThrow(/decoys/);
    });
  });
});
