import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, readMrc, writeMrc } from '@tme/formats';
import { nativeAddonBuilt } from '@tme/engine';
import { runTemplate } from '../src/commands/template';
import { exitCodeFor, formatError } from '../src/format-error';

const withNative = nativeAddonBuilt() ? describe : describe.skip;

withNative('tme template: what a search would match, before it runs', () => {
  let dir: string;
  const n = 20;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-template-'));
    writeMrc(path.join(dir, 'tomo.mrc'), createVolume(new Float32Array(40 * 40 * 40).map((_, i) => Math.sin(i)), [40, 40, 40], 5));
    // A dense blob off the box centre along x: a threshold mask must follow it, an ellipsoid must not.
    const t = new Float32Array(n ** 3);
    for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
      t[(z * n + y) * n + x] = Math.exp(-((z - 10) ** 2 + (y - 10) ** 2 + (x - 13) ** 2) / 6);
    }
    writeMrc(path.join(dir, 'templ.mrc'), createVolume(t, [n, n, n], 5));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const flags = (out: string, extra: Record<string, string | boolean> = {}) => ({
    target: path.join(dir, 'tomo.mrc'), template: path.join(dir, 'templ.mrc'), score: 'flc-sphere', tiltAxis: 'y', modelBfactor: '0',
    output: path.join(dir, out), quiet: true, ...extra,
  });
  async function refusal(f: ReturnType<typeof flags>): Promise<{ code: number; line: string }> {
    try {
      await runTemplate(f);
    } catch (e) {
      return { code: exitCodeFor(e), line: formatError(e, false) };
    }
    throw new Error('expected a refusal');
  }

  it('writes the shaped template, its mask, the filter with the wedge, and the template normalised under the mask', async () => {
    await runTemplate(flags('ellipsoid', { maskEllipsoid: '30,20,10', tiltRange: '-40,60' }));
    const out = (f: string) => readMrc(path.join(dir, 'ellipsoid', f));
    const mask = out('mask.mrc').data;
    let inside = 0;
    mask.forEach((v) => { inside += v; });
    // Semi-axes 6, 4, 2 voxels: 4/3·π·48 ≈ 201 voxels.
    expect(inside).toBeGreaterThan(170);
    expect(inside).toBeLessThan(230);
    // z reaches 6 voxels from the centre, x only 2.
    expect(mask[((10 + 5) * n + 10) * n + 10]).toBe(1);
    expect(mask[(10 * n + 10) * n + 10 + 3]).toBe(0);
    const matched = out('matched.mrc').data;
    let sum = 0, sq = 0;
    matched.forEach((v, i) => { if (mask[i] === 1) { sum += v; sq += v * v; } });
    expect(Math.abs(sum / inside)).toBeLessThan(1e-4);
    expect(Math.sqrt(sq / inside)).toBeCloseTo(1, 3);
    const filter = out('filter.mrc');
    const [gz, gy, gx] = filter.shape;
    const f = (kz: number, ky: number, kx: number) => filter.data[((kz + (gz >> 1)) * gy + ky + (gy >> 1)) * gx + kx + (gx >> 1)]!;
    expect(f(0, 0, 0)).toBe(1);
    // A y tilt axis: the sampled planes are tilted in z–x; kz ≫ kx lies in the missing wedge, kx ≫ kz does not.
    expect(f(gz >> 2, 0, 1)).toBe(0);
    expect(f(1, 0, gx >> 2)).toBe(1);
    // The spectrum is whole and centrosymmetric.
    expect(f(3, 2, -5)).toBe(f(-3, -2, 5));
  });

  it('a threshold mask follows the template’s density, grown and softened as asked', async () => {
    await runTemplate(flags('threshold', { maskThreshold: '0.5', maskDilation: '5', maskEdge: '5' }));
    const mask = readMrc(path.join(dir, 'threshold', 'mask.mrc')).data;
    expect(mask[(10 * n + 10) * n + 13]).toBe(1);
    expect(mask[(10 * n + 10) * n + 6]).toBe(0);
    const soft = [...mask].filter((v) => v > 0 && v < 1).length;
    expect(soft).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dir, 'threshold', 'filter.mrc'))).toBe(false);
  });

  it('refuses in one line: replacing without --force, two masks, an edge with nothing to soften', async () => {
    expect(await refusal(flags('ellipsoid', { maskEllipsoid: '30,20,10' }))).toEqual({
      code: 1, line: `tme: ${path.join(dir, 'ellipsoid')}: holds template.mrc; use --force to replace it`,
    });
    expect((await refusal(flags('x', { maskRadius: '20', maskThreshold: '0.3' }))).line)
      .toBe('tme: Expected only one of --mask-radius and --mask-threshold for --mask-threshold but received "both" of type string');
    expect(await refusal(flags('x', { maskEdge: '3' }))).toMatchObject({ code: 2, line: expect.stringContaining('for --mask-edge') });
    expect(fs.existsSync(path.join(dir, 'x'))).toBe(false);
  });
});
