import { electronWavelength, ctfModel, ctfValue } from '../src/ctf';
import { ctfFilter } from '../src/ctf-filter';
import type { Zyx } from '@tme/formats';

/** k (1/Å) of the n-th CTF zero, solving χ = nπ analytically (smaller root of the quadratic in k²). */
function ctfZero(n: number, defocus: number, voltage: number, csMm: number, amplitude: number): number {
  const lambda = electronWavelength(voltage);
  const cs = csMm * 1e7;
  const m = n - Math.asin(amplitude) / Math.PI; // π·λ·q·Δf − ½π·Cs·λ³·q² + asin(A) = nπ
  const a = 0.5 * cs * lambda ** 3;
  const b = -lambda * defocus;
  const q = (-b - Math.sqrt(b * b - 4 * a * m)) / (2 * a);
  return Math.sqrt(q);
}

describe('electronWavelength', () => {
  it('gives the relativistic wavelengths (Å) tabulated for 100, 200 and 300 kV', () => {
    expect(electronWavelength(300)).toBeCloseTo(0.019687, 5);
    expect(electronWavelength(200)).toBeCloseTo(0.025079, 5);
    expect(electronWavelength(100)).toBeCloseTo(0.037014, 5);
  });
});

describe('ctfFilter', () => {
  const shape: Zyx = [1, 1, 1024];
  const voxel: Zyx = [1, 1, 1];
  it.each([
    [30000, 300, 2.7, 0.07],
    [15000, 200, 2.0, 0.1],
    [50000, 300, 0.01, 0.0],
  ])('crosses zero at the analytic zeros of χ = nπ (Δf %i Å, %i kV, Cs %f mm, A %f)', (defocus, voltage, cs, amp) => {
    const f = ctfFilter(shape, voxel, { ctf: { defocus, voltage, sphericalAberration: cs, amplitudeContrast: amp }, flipPhase: false });
    const dk = 1 / 1024;
    for (let n = 1; n <= 6; n++) {
      const k0 = ctfZero(n, defocus, voltage, cs, amp);
      if (k0 > 0.5) break;
      const i = Math.floor(k0 / dk);
      const a = f[i] as number;
      const b = f[i + 1] as number;
      expect(a * b).toBeLessThanOrEqual(0); // a sign change in the bracketing pair
      // Linear interpolation of the zero crossing lands on the analytic zero within 2% of a sample spacing.
      const kCross = (i + a / (a - b)) * dk;
      expect(Math.abs(kCross - k0)).toBeLessThan(0.02 * dk);
    }
  });

  it('is −A at DC (full CTF) and A with phase flipping', () => {
    const full = ctfFilter(shape, voxel, { ctf: { defocus: 30000, amplitudeContrast: 0.1 }, flipPhase: false });
    const flipped = ctfFilter(shape, voxel, { ctf: { defocus: 30000, amplitudeContrast: 0.1 } });
    expect(full[0]).toBeCloseTo(-0.1, 6);
    expect(flipped[0]).toBeCloseTo(0.1, 6);
    for (let i = 0; i < full.length; i++) expect(flipped[i]).toBeCloseTo(Math.abs(full[i] as number), 6);
  });

  it('applies astigmatism along the stated azimuth and a 90° phase shift moves DC to −1', () => {
    const m = ctfModel({ defocus: 20000, defocus2: 30000, astigmatismAngle: 30 });
    const along = (30 * Math.PI) / 180;
    const k = 0.05;
    const iso1 = ctfModel({ defocus: 20000 });
    const iso2 = ctfModel({ defocus: 30000 });
    expect(ctfValue(m, k * Math.cos(along), k * Math.sin(along), false)).toBeCloseTo(ctfValue(iso1, k, 0, false), 9);
    expect(ctfValue(m, -k * Math.sin(along), k * Math.cos(along), false)).toBeCloseTo(ctfValue(iso2, k, 0, false), 9);
    expect(ctfValue(ctfModel({ defocus: 1, amplitudeContrast: 0, phaseShift: 90 }), 0, 0, false)).toBeCloseTo(-1, 12);
  });

  it('sees the full |k| on tilted planes: the kz axis has the same CTF as the kx axis', () => {
    const s: Zyx = [64, 1, 64];
    const f = ctfFilter(s, [4, 4, 4], { ctf: { defocus: 40000 }, flipPhase: false });
    for (let k = 1; k < 32; k++) expect(f[k * 33]).toBeCloseTo(f[k] as number, 6); // (kz=k, kx=0) vs (kz=0, kx=k)
  });
});
