import { buildTemplateFilter, buildTargetFilter, isIdentityFilter } from '../src/compose';
import { bandPassFilter } from '../src/bandpass';
import { continuousWedgeFilter } from '../src/wedge';
import { ctfFilter } from '../src/ctf-filter';
import { filterPreview, toGrayscale, encodePgm, previewImage } from '../src/preview';
import { whiteningProfile, radialPowerSpectrum, sampleProfile, radialFilter, whiteningFilter } from '../src/whitening';
import { rfftn, irfftn } from '../src/fft';
import { createVolume, type Zyx } from '@tme/formats';

const shape: Zyx = [24, 20, 16];
const voxel: Zyx = [5, 5, 5];

describe('buildTemplateFilter', () => {
  it('is the product of its parts, in the half-spectrum layout', () => {
    const opts = { wedge: { tiltRange: [-50, 60] as const }, ctf: { ctf: { defocus: 30000 } }, bandPass: { lowpassAngstrom: 25, highpassAngstrom: 200 } };
    const f = buildTemplateFilter(opts)(shape, voxel);
    expect(f.length).toBe(24 * 20 * 9);
    const w = continuousWedgeFilter(shape, voxel, opts.wedge);
    const c = ctfFilter(shape, voxel, opts.ctf);
    const b = bandPassFilter(shape, voxel, opts.bandPass);
    for (let i = 0; i < f.length; i += 7) expect(f[i]).toBeCloseTo((w[i] as number) * (c[i] as number) * (b[i] as number), 6);
  });
  it('returns ones for no options and caches per shape', () => {
    const build = buildTemplateFilter({});
    expect(isIdentityFilter({})).toBe(true);
    expect(Array.from(new Set(build(shape, voxel)))).toEqual([1]);
    const g = buildTemplateFilter({ bandPass: { lowpassAngstrom: 20 } });
    expect(g(shape, voxel)).toBe(g(shape, voxel));
    expect(g([8, 8, 8], voxel).length).toBe(8 * 8 * 5);
  });
  it('target filter leaves out wedge and CTF unless asked', () => {
    const opts = { wedge: { tiltRange: [-40, 40] as const }, ctf: { ctf: { defocus: 30000 } }, bandPass: { lowpassAngstrom: 25 } };
    const t = buildTargetFilter(opts)(shape, voxel);
    const b = bandPassFilter(shape, voxel, opts.bandPass);
    expect(Array.from(t)).toEqual(Array.from(b));
    const tw = buildTargetFilter({ ...opts, applyWedgeToTarget: true })(shape, voxel);
    const w = continuousWedgeFilter(shape, voxel, opts.wedge);
    let err = 0;
    for (let i = 0; i < t.length; i++) err = Math.max(err, Math.abs((tw[i] as number) - (w[i] as number) * (b[i] as number)));
    expect(err).toBeLessThan(1e-7);
  });
});

describe('filterPreview', () => {
  it('shows the missing wedge around kz in the xz slice, DC at the centre', () => {
    const s: Zyx = [32, 32, 32];
    const f = continuousWedgeFilter(s, [1, 1, 1], { tiltRange: [-45, 45] });
    const p = filterPreview(f, s);
    expect([p.xz.width, p.xz.height]).toEqual([32, 32]);
    const at = (sl: { data: Float32Array; width: number }, i: number, j: number) => sl.data[j * sl.width + i];
    expect(at(p.xz, 16, 16)).toBe(1); // DC
    expect(at(p.xz, 16, 16 + 10)).toBe(0); // kz = 10, kx = 0: missing
    expect(at(p.xz, 16 - 10, 16)).toBe(1); // kx = −10 read through symmetry
    expect(at(p.xz, 16 - 10, 16 + 12)).toBe(0); // (kx −10, kz 12): 50°
    expect(at(p.xz, 16 - 10, 16 - 8)).toBe(1); // (kx −10, kz −8): 38.7°
    expect(Array.from(new Set(p.xy.data))).toEqual([1]); // kz = 0 plane is fully sampled
    const img = toGrayscale(p.xz);
    expect(img.pixels[16 * 32 + 16]).toBe(255);
    expect(img.pixels[26 * 32 + 16]).toBe(0);
    const pgm = encodePgm(img);
    expect(new TextDecoder().decode(pgm.slice(0, 13))).toBe('P5\n32 32\n255\n');
    expect(pgm.length).toBe(13 + 1024);
    const all = previewImage(p);
    expect([all.width, all.height]).toEqual([32 * 3 + 4, 32]);
    expect(all.pixels[16 * all.width + 16]).toBe(255); // xy centre
    expect(all.pixels[26 * all.width + 34 + 16]).toBe(0); // xz: kz = 10 missing
    expect(all.pixels[26 * all.width + 32]).toBe(0); // the gap
  });
});

describe('whitening', () => {
  const n = 48;
  const s: Zyx = [n, n, n];
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed / 2 ** 32 - 0.5);
  const white = Float32Array.from({ length: n ** 3 }, rand);
  // Coloured noise: [1, 2, 1] smoothing along x, power ∝ cos⁴(π·f) along kx.
  const col = new Float32Array(n ** 3);
  for (let i = 0; i < n ** 3; i++) {
    const x = i % n;
    const row = i - x;
    col[i] = (white[row + ((x + n - 1) % n)] as number) + 2 * (white[i] as number) + (white[row + ((x + 1) % n)] as number);
  }
  const spread = (p: { values: Float64Array }) => {
    const v = Array.from(p.values).slice(2, 12);
    return Math.max(...v) / Math.min(...v);
  };

  it('measures a flat spectrum for white noise', () => {
    expect(spread(radialPowerSpectrum(createVolume(white, s, 2), { boxSize: 16 }))).toBeLessThan(1.3);
  });

  it('flattens coloured noise when applied to it, and is normalised to max 1 with DC 0', () => {
    const target = createVolume(col, s, 2);
    const before = spread(radialPowerSpectrum(target, { boxSize: 16 }));
    expect(before).toBeGreaterThan(3);
    const prof = whiteningProfile(target, { boxSize: 16 });
    expect(prof.values[0]).toBe(0);
    expect(Math.max(...Array.from(prof.values).slice(1))).toBeCloseTo(1, 9);
    expect(sampleProfile(prof, 0.2)).toBeGreaterThan(sampleProfile(prof, 0.05));
    const spec = rfftn(col, s);
    const f = radialFilter(prof, s, [2, 2, 2]);
    for (let i = 0; i < f.length; i++) (spec.re[i] = spec.re[i]! * f[i]!), (spec.im[i] = spec.im[i]! * f[i]!);
    const whitened = createVolume(Float32Array.from(irfftn(spec)), s, 2);
    const after = spread(radialPowerSpectrum(whitened, { boxSize: 16 }));
    expect(after).toBeLessThan(before / 2);
    expect(Array.from(whiteningFilter(target, s, [2, 2, 2], { boxSize: 16 }))).toEqual(Array.from(f));
  });
});

describe('the target filter by blocks of ky rows (a target larger than memory)', () => {
  it.each([
    ['y', [24, 20, 16]], ['x', [23, 19, 17]],
  ] as const)('blocks of rows put together are the whole filter, value for value (tilt axis %s, shape %j)', (tiltAxis, s) => {
    const grid: Zyx = [s[0], s[1], s[2]];
    const profile = whiteningProfile(createVolume(Float32Array.from({ length: 16 ** 3 }, (_, i) => Math.sin(i * 0.37) + ((i * 7919) % 13) / 13), [16, 16, 16], 5));
    const filter = buildTargetFilter({
      wedge: { tiltRange: [-50, 60], tiltAxis }, bandPass: { lowpassAngstrom: 20, highpassAngstrom: 90 }, whitening: profile, applyWedgeToTarget: true,
    });
    const whole = filter(grid, voxel);
    const hx = Math.floor(grid[2] / 2) + 1;
    const joined = new Float32Array(whole.length);
    for (const [y0, y1] of [[0, 7], [7, 8], [8, grid[1]]] as const) {
      const block = filter.rows(grid, voxel, [y0, y1]);
      expect(block.length).toBe(grid[0] * (y1 - y0) * hx);
      for (let z = 0; z < grid[0]; z++) joined.set(block.subarray(z * (y1 - y0) * hx, (z + 1) * (y1 - y0) * hx), (z * grid[1] + y0) * hx);
    }
    expect(joined).toEqual(whole);
    // Not all ones: the wedge, band-pass and whitening all act.
    expect(new Set(whole).size).toBeGreaterThan(10);
    expect(() => filter.rows(grid, voxel, [5, 5])).toThrow(/^Expected ky rows \[y0, y1\)/);
  });
});

describe('whitening a target on disk', () => {
  it('reads only its sub-boxes and gives the profile of the volume held whole, bit for bit', () => {
    const s: Zyx = [130, 132, 141];
    const data = Float32Array.from({ length: s[0] * s[1] * s[2] }, (_, i) => Math.sin(i * 0.013) + ((i * 7919) % 101) / 101);
    const volume = createVolume(data, s, 5);
    const boxes: string[] = [];
    const region = {
      file: 'target.mrc', shape: s, voxelSize: volume.voxelSize, origin: volume.origin,
      readRegion: (start: Zyx, size: Zyx): Float32Array => {
        boxes.push(`${start.join(',')}+${size.join(',')}`);
        const out = new Float32Array(size[0] * size[1] * size[2]);
        for (let z = 0; z < size[0]; z++) for (let y = 0; y < size[1]; y++) {
          const from = ((start[0] + z) * s[1] + start[1] + y) * s[2] + start[2];
          out.set(data.subarray(from, from + size[2]), (z * size[1] + y) * size[2]);
        }
        return out;
      },
    };
    const onDisk = whiteningProfile(region);
    expect(onDisk).toEqual(whiteningProfile(volume));
    expect(boxes.every((b) => b.endsWith('+64,64,64'))).toBe(true);
    expect(boxes.length).toBe(8);
  });
});
