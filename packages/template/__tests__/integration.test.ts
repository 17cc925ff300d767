import { type Zyx } from '@tme/formats';
import { bundledModelPath, simulateDensity, buildTemplateFilter, rfftn, irfftn, normalizeVolume, type HalfSpectrum } from '../src';
import { readPdbAtoms } from './helpers/pdb';

/**
 * End to end on the host: a tomogram made of two copies of the bundled 1TII potential seen through a full CTF
 * and a missing wedge; the template filter built for the tomogram's grid, multiplied into the template's
 * spectrum, must find both copies — and do better than the unfiltered template.
 */
describe('filters used as the engine uses them', () => {
  const n = 64;
  const shape: Zyx = [n, n, n];
  const voxel: Zyx = [8, 8, 8];
  const model = readPdbAtoms(bundledModelPath());
  const particle = simulateDensity(model, { voxelSize: 8, boxSize: n, lowpassAngstrom: 16 }).volume; // centred on 32
  const options = { wedge: { tiltRange: [-45, 55] as const }, ctf: { ctf: { defocus: 30000 }, flipPhase: false } };
  const filter = buildTemplateFilter(options)(shape, voxel);

  const roll = (data: Float32Array, s: Zyx) => {
    const out = new Float64Array(n ** 3);
    for (let z = 0; z < n; z++)
      for (let y = 0; y < n; y++)
        for (let x = 0; x < n; x++) out[(((z + s[0]) % n) * n + ((y + s[1]) % n)) * n + ((x + s[2]) % n)] = data[(z * n + y) * n + x]!;
    return out;
  };
  const multiply = (spec: HalfSpectrum, f: Float32Array) => {
    for (let i = 0; i < f.length; i++) (spec.re[i] = spec.re[i]! * f[i]!), (spec.im[i] = spec.im[i]! * f[i]!);
    return spec;
  };
  // Two copies, at (32+10, 32−7, 32+5) and (32−12, 32+9, 32−14); then the microscope; then noise.
  const a = roll(particle.data, [10, n - 7, 5]);
  const b = roll(particle.data, [n - 12, 9, n - 14]);
  const clean = a.map((v, i) => v + b[i]!);
  const tomo = irfftn(multiply(rfftn(clean, shape), filter));
  let seed = 3;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed / 2 ** 32 - 0.5);
  let sd = 0;
  for (const v of tomo) sd += v * v;
  sd = Math.sqrt(sd / tomo.length);
  const noisy = tomo.map((v) => v + 20 * sd * (rand() + rand() + rand()));

  /** CC(x) = Σ f(x + p − c)·t(p): template centred at c = box//2, so peaks sit on particle centres. */
  const correlate = (template: Float32Array) => {
    const ft = rfftn(noisy, shape);
    const tt = rfftn(template, shape);
    const out: HalfSpectrum = { re: new Float64Array(ft.re.length), im: new Float64Array(ft.re.length), realShape: shape };
    for (let i = 0; i < ft.re.length; i++) {
      out.re[i] = ft.re[i]! * tt.re[i]! + ft.im[i]! * tt.im[i]!;
      out.im[i] = ft.im[i]! * tt.re[i]! - ft.re[i]! * tt.im[i]!;
    }
    const cc = irfftn(out); // peak at shift s = particle centre − c
    const peak = (s: Zyx) => cc[(s[0] * n + s[1]) * n + s[2]]!;
    let mean = 0;
    for (const v of cc) mean += v;
    mean /= cc.length;
    let sdv = 0;
    for (const v of cc) sdv += (v - mean) ** 2;
    sdv = Math.sqrt(sdv / cc.length);
    let best = 0;
    for (let i = 1; i < cc.length; i++) if (cc[i]! > cc[best]!) best = i;
    return { snrA: (peak([10, n - 7, 5]) - mean) / sdv, snrB: (peak([n - 12, 9, n - 14]) - mean) / sdv, best, cc };
  };

  it('finds both copies with the filtered template (CTF sign included), with higher peaks than the bare template', () => {
    const template = normalizeVolume(particle).data;
    const filtered = Float32Array.from(irfftn(multiply(rfftn(template, shape), filter)));
    const withFilter = correlate(filtered);
    const without = correlate(template);
    expect([(10 * n + (n - 7)) * n + 5, ((n - 12) * n + 9) * n + (n - 14)]).toContain(withFilter.best);
    expect(withFilter.snrA).toBeGreaterThan(5);
    expect(withFilter.snrB).toBeGreaterThan(5);
    // The full CTF is −A at DC: the bare (bright) template sees the particles dark, as negative peaks, and weaker.
    // Measured: filtered 29.4σ / 29.1σ, bare −19.9σ / −18.3σ.
    expect(without.snrA).toBeLessThan(0);
    expect(withFilter.snrA).toBeGreaterThan(1.2 * Math.abs(without.snrA));
    expect(withFilter.snrB).toBeGreaterThan(1.2 * Math.abs(without.snrB));
  });
});
