import { continuousWedgeFilter, tiltWeightingFilter, uniqueAngles } from '../src/wedge';
import { rfftn } from '../src/fft';
import { exposureWeight } from '../src/exposure';
import type { Zyx } from '@tme/formats';

const N = 64;
const shape2d: Zyx = [N, 1, N]; // an (z, x) plane: tilt axis y
const HX = N / 2 + 1;
const at = (f: Float32Array, kzIndex: number, kx: number) => f[(((kzIndex % N) + N) % N) * HX + kx] as number;

/**
 * Simulates a real tilt series of a 2D (x, z) object: line projections p_θ(x') with x' = x·cos θ + z·sin θ,
 * each smeared back over the plane (unfiltered back-projection). Its spectrum holds energy only where the
 * projections sampled Fourier space.
 */
function backProjection(angles: number[]): Float64Array {
  const obj = new Float64Array(N * N);
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32);
  for (let i = 0; i < 40; i++) {
    const cz = 16 + 32 * rand();
    const cx = 16 + 32 * rand();
    const a = rand() - 0.3;
    for (let z = 0; z < N; z++) for (let x = 0; x < N; x++) obj[z * N + x] = obj[z * N + x]! + a * Math.exp(-((z - cz) ** 2 + (x - cx) ** 2) / 3);
  }
  const bp = new Float64Array(N * N);
  const c0 = N / 2;
  const bins = 2 * N;
  for (const deg of angles) {
    const t = (deg * Math.PI) / 180;
    const proj = new Float64Array(bins);
    const coord = (z: number, x: number) => (x - c0) * Math.cos(t) + (z - c0) * Math.sin(t) + N;
    for (let z = 0; z < N; z++)
      for (let x = 0; x < N; x++) {
        const u = coord(z, x);
        const i0 = Math.floor(u);
        proj[i0] = proj[i0]! + obj[z * N + x]! * (1 - (u - i0));
        proj[i0 + 1] = proj[i0 + 1]! + obj[z * N + x]! * (u - i0);
      }
    for (let z = 0; z < N; z++)
      for (let x = 0; x < N; x++) {
        const u = coord(z, x);
        const i0 = Math.floor(u);
        bp[z * N + x] = bp[z * N + x]! + proj[i0]! * (1 - (u - i0)) + proj[i0 + 1]! * (u - i0);
      }
  }
  // Periodic taper so the box edges do not leak energy along the axes.
  for (let z = 0; z < N; z++)
    for (let x = 0; x < N; x++) bp[z * N + x] = bp[z * N + x]! * Math.sin((Math.PI * (z + 0.5)) / N) ** 2 * Math.sin((Math.PI * (x + 0.5)) / N) ** 2;
  return bp;
}

/**
 * Mean spectral power of `bp` deep in the missing wedge (0 even in `wider`, the wedge widened by 10° each side)
 * over the mean deep in the sampled region (1 even in `narrower`), radius 4..N/2 voxels.
 */
function missingToSampledPower(bp: Float64Array, wider: Float32Array, narrower: Float32Array): number {
  const spec = rfftn(bp, shape2d);
  let pMissing = 0;
  let nMissing = 0;
  let pSampled = 0;
  let nSampled = 0;
  for (let kz = 0; kz < N; kz++)
    for (let kx = 0; kx < HX; kx++) {
      const sz = kz <= N / 2 ? kz : kz - N;
      const r = Math.hypot(sz, kx);
      if (r < 4 || r > N / 2) continue;
      const i = kz * HX + kx;
      const p = spec.re[i]! ** 2 + spec.im[i]! ** 2;
      if (wider[i] === 0) (pMissing += p), nMissing++;
      else if (narrower[i] === 1) (pSampled += p), nSampled++;
    }
  return pMissing / nMissing / (pSampled / nSampled);
}

describe('continuousWedgeFilter', () => {
  const angles = Array.from({ length: 31 }, (_, i) => -30 + 3 * i); // an asymmetric −30°..+60° series

  it('is 1 where a simulated −30°..60° tilt series put its energy and 0 in the missing wedge', () => {
    const bp = backProjection(angles);
    const wedge = (lo: number, hi: number) => continuousWedgeFilter(shape2d, [1, 1, 1], { tiltRange: [lo, hi] });
    const ratio = missingToSampledPower(bp, wedge(-40, 70), wedge(-20, 50));
    expect(ratio).toBeLessThan(0.01); // measured 0.0024
    // The opposite handedness puts the wedge on the wrong side: the test can tell them apart.
    expect(missingToSampledPower(bp, wedge(-70, 40), wedge(-50, 20))).toBeGreaterThan(0.1);
  });

  it('has exact values on the axes and at the range edges', () => {
    const w = continuousWedgeFilter(shape2d, [1, 1, 1], { tiltRange: [-30, 60] });
    expect(at(w, 0, 10)).toBe(1); // kx axis: the 0° plane
    expect(at(w, 10, 0)).toBe(0); // kz axis: the beam direction, missing
    expect(at(w, 10, 10)).toBe(1); // 45°
    expect(at(w, -10, 10)).toBe(0); // −45°
    expect(at(w, -10, 18)).toBe(1); // −29.05°
    expect(at(w, 17, 10)).toBe(1); // 59.53°
    expect(at(w, 18, 10)).toBe(0); // 60.95°
  });

  it('with cosineWeighting, weighs each voxel by cos of the tilt of its plane, 0 in the missing wedge', () => {
    const w = continuousWedgeFilter(shape2d, [1, 1, 1], { tiltRange: [-30, 60], cosineWeighting: true });
    expect(at(w, 0, 0)).toBe(1); // DC: on every plane
    expect(at(w, 0, 10)).toBe(1); // kx axis: the 0° plane, cos 0
    expect(at(w, 10, 10)).toBeCloseTo(Math.SQRT1_2, 6); // 45°
    expect(at(w, -10, 18)).toBeCloseTo(18 / Math.hypot(10, 18), 6); // −29.05°: cos = kx/|k|
    expect(at(w, 17, 10)).toBeCloseTo(10 / Math.hypot(17, 10), 6); // 59.53°
    expect(at(w, 18, 10)).toBe(0); // 60.95°: missing
    expect(at(w, -10, 10)).toBe(0); // −45°: missing
    const full = continuousWedgeFilter(shape2d, [1, 1, 1], { tiltRange: [-90, 90], cosineWeighting: true });
    expect(at(full, 10, 0)).toBeCloseTo(0, 6); // kz axis: the 90° plane, cos 90° = 0
    // Tilt axis x: θ = atan2(kz, ky), the same values with ky in place of kx.
    const wx = continuousWedgeFilter([N, N, 1], [1, 1, 1], { tiltRange: [-60, 60], tiltAxis: 'x', cosineWeighting: true });
    expect(wx[10 * N + 10]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(wx[20 * N + 10]).toBe(0); // 63.4°
    expect(wx[(N - 5) * N + 10]).toBeCloseTo(10 / Math.hypot(5, 10), 6); // kz −5: −26.6°
  });

  it('uses physical frequencies: anisotropic voxels move the wedge edge off the index diagonal', () => {
    // kz spacing 1/80 Å⁻¹, kx spacing 1/120 Å⁻¹.
    const w = continuousWedgeFilter([40, 1, 30], [2, 1, 4], { tiltRange: [-45, 45] });
    expect(w[4 * 16 + 5]).toBe(0); // (kz 0.05, kx 0.0417): 50.2° — index units would say 38.7°
    expect(w[3 * 16 + 5]).toBe(1); // (kz 0.0375, kx 0.0417): 42.0°
  });

  it('tilting about x puts the wedge in the (kz, ky) plane', () => {
    const w = continuousWedgeFilter([N, N, 1], [1, 1, 1], { tiltRange: [-45, 45], tiltAxis: 'x' });
    expect(w[10 * N + 0]).toBe(0); // (kz 10, ky 0)
    expect(w[0 * N + 10]).toBe(1); // (kz 0, ky 10)
  });
});

describe('tiltWeightingFilter', () => {
  const step = Array.from({ length: 21 }, (_, i) => -60 + 6 * i);

  it('is 1 on each tilt plane and 0 between tilts at high frequency and in the missing wedge', () => {
    const f = tiltWeightingFilter(shape2d, [1, 1, 1], { tilts: step.map((angle) => ({ angle })) });
    for (const deg of step) {
      const t = (deg * Math.PI) / 180;
      const kx = Math.round(20 * Math.cos(t));
      const kz = Math.round(20 * Math.sin(t));
      // The nearest grid point is within half a voxel of the plane: slab weight ≥ 0.5 (the exact plane gives 1).
      if (kx >= 0) expect(at(f, kz, kx)).toBeGreaterThanOrEqual(0.29);
    }
    expect(at(f, 0, 20)).toBe(1);
    expect(at(f, 0, 0)).toBe(1);
    // Between the 0° and 6° planes at radius 30: 3° off each, 1.57 voxels away → outside both slabs.
    expect(at(f, Math.round(30 * Math.sin((3 * Math.PI) / 180)), 30)).toBe(0);
    expect(at(f, 20, 2)).toBe(0); // 84°: missing wedge
  });

  it('does not zero or double the filter for duplicated 0° tilts (bidirectional schemes, pytom #348)', () => {
    const once = tiltWeightingFilter(shape2d, [1, 1, 1], { tilts: step.map((angle) => ({ angle })) });
    const twice = tiltWeightingFilter(shape2d, [1, 1, 1], { tilts: [...step, 0, 0].map((angle) => ({ angle })) });
    expect(Array.from(twice)).toEqual(Array.from(once));
    expect(twice.reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
    expect(uniqueAngles([0, -3, 0, 3, 0.0001])).toEqual([-3, 0, 3]);
  });

  it('applies cosine and exposure weights per tilt exactly on the tilt planes', () => {
    const voxel: Zyx = [2, 2, 2];
    const f = tiltWeightingFilter(shape2d, voxel, {
      tilts: [
        { angle: 0, dose: 10 },
        { angle: 60, dose: 40 },
      ],
      cosineWeighting: true,
    });
    const k0 = 16 / (N * 2); // kx index 16 on the 0° plane
    expect(at(f, 0, 16)).toBeCloseTo(exposureWeight(k0, 10), 6);
    // 45° passes exactly through grid points (kx 8, kz 8).
    const f60 = tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 45, dose: 40 }], cosineWeighting: true });
    const k45 = Math.hypot(8, 8) / (N * 2);
    expect(at(f60, 8, 8)).toBeCloseTo(Math.cos(Math.PI / 4) * exposureWeight(k45, 40), 6);
    // More dose, lower weight: monotone.
    const g = (d: number) => at(tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 0, dose: d }] }), 0, 20);
    expect(g(5)).toBeGreaterThan(g(20));
    expect(g(20)).toBeGreaterThan(g(80));
  });

  it('multiplies each slab by its own CTF, evaluated at the in-plane frequency', () => {
    const voxel: Zyx = [3, 3, 3];
    const ctf = { defocus: 35000, amplitudeContrast: 0.07 };
    const f = tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 45, ctf }], flipPhase: false });
    const k = Math.hypot(10, 10) / (N * 3);
    const lambda = 0.0196875;
    const chi = Math.PI * lambda * k * k * (35000 - 0.5 * 2.7e7 * lambda * lambda * k * k) + Math.asin(0.07);
    expect(at(f, 10, 10)).toBeCloseTo(-Math.sin(chi), 3);
  });

  it('shifts the defocus of each tilt by the tile height along its beam (defocus gradient, handedness)', () => {
    const voxel: Zyx = [3, 3, 3];
    const base = { defocus: 30000, amplitudeContrast: 0.07 };
    // Tilt 30°, tile at x = 1000 Å: z' = −x·sin 30° = −500 Å → defocus + handedness·500 Å.
    const moved = tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 30, ctf: base }], flipPhase: false, positionAngstrom: { x: 1000, z: 0 } });
    const deeper = tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 30, ctf: { ...base, defocus: 30500 } }], flipPhase: false });
    const flipped = tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 30, ctf: base }], flipPhase: false, positionAngstrom: { x: 1000, z: 0 }, defocusHandedness: -1 });
    const shallower = tiltWeightingFilter(shape2d, voxel, { tilts: [{ angle: 30, ctf: { ...base, defocus: 29500 } }], flipPhase: false });
    let e1 = 0;
    let e2 = 0;
    let differs = 0;
    for (let i = 0; i < moved.length; i++) {
      e1 = Math.max(e1, Math.abs(moved[i]! - deeper[i]!));
      e2 = Math.max(e2, Math.abs(flipped[i]! - shallower[i]!));
      differs = Math.max(differs, Math.abs(moved[i]! - flipped[i]!));
    }
    expect(e1).toBeLessThan(1e-6);
    expect(e2).toBeLessThan(1e-6);
    expect(differs).toBeGreaterThan(0.1);
  });

  it("'spacing' slabs fill the tilt range without gaps and stop one step beyond it", () => {
    const f = tiltWeightingFilter(shape2d, [1, 1, 1], { tilts: [...step, 0].map((angle) => ({ angle })), slabWidth: 'spacing' });
    // Radius 30, every 1° from −58° to 58° (grid points stay inside ±60°): weight 1; one step past 60° and beyond: 0.
    for (let deg = -58; deg <= 58; deg++) {
      const t = (deg * Math.PI) / 180;
      expect(at(f, Math.round(30 * Math.sin(t)), Math.round(30 * Math.cos(t)))).toBe(1);
    }
    for (const deg of [67, 75, -67, -80]) {
      const t = (deg * Math.PI) / 180;
      expect(at(f, Math.round(30 * Math.sin(t)), Math.round(30 * Math.cos(t)))).toBe(0);
    }
    // Cosine weights interpolate between neighbouring tilts: at 3° (between 0° and 6°) ≈ the mean of cos 0 and cos 6.
    const g = tiltWeightingFilter(shape2d, [1, 1, 1], { tilts: step.map((angle) => ({ angle })), slabWidth: 'spacing', cosineWeighting: true });
    const mid = at(g, Math.round(30 * Math.sin(Math.PI / 60)), Math.round(30 * Math.cos(Math.PI / 60)));
    expect(mid).toBeGreaterThan(Math.cos((6 * Math.PI) / 180) - 1e-6);
    expect(mid).toBeLessThan(1);
  });
});
