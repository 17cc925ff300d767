// Sizes read from files are bounded before they are used: each case below once hung tme or crashed it with an
// "Invalid typed array length" (found by fuzzing the readers, issue 19).
import { TmeError } from '@tme/formats';
import { simulateDensity } from '../src/atomic-model';
import { nextFastEvenSize } from '../src/fast-size';
import { imodDefocusPerView, parseImodDefocus } from '../src/metadata/imod-defocus';
import { parseWarpXml } from '../src/metadata/warp-xml';

function timed<T>(fn: () => T): { ms: number; value?: T; error?: unknown } {
  const t0 = Date.now();
  try {
    const value = fn();
    return { ms: Date.now() - t0, value };
  } catch (error) {
    return { ms: Date.now() - t0, error };
  }
}

it('nextFastEvenSize refuses sizes past 2³¹ at once (at ≥ 2⁵⁴ its search never ended)', () => {
  for (const n of [2 ** 54, 1e30, Infinity]) {
    const r = timed(() => nextFastEvenSize(n));
    expect(r.error).toBeInstanceOf(TmeError);
    expect(r.ms).toBeLessThan(100);
  }
  expect(nextFastEvenSize(2 ** 31 - 5)).toBe(2 ** 31);
});

describe('simulateDensity with a stray atom far away', () => {
  const model = (far: number) => ({
    x: new Float64Array([0, 1.5, far]), y: new Float64Array([0, 0, 0]), z: new Float64Array([0, 0.5, 0]), element: ['C', 'N', 'O'],
  });
  it('refuses a box past maxEdge before allocating it, naming the file and the distance', () => {
    for (const far of [20_000, 6_000, 1e30]) {
      const r = timed(() => simulateDensity(model(far), { voxelSize: 5, maxEdge: 200, file: 'model.pdb' }));
      expect(r.error).toBeInstanceOf(TmeError);
      expect((r.error as TmeError).code).toBe('ERR_TME_MISMATCH');
      expect((r.error as TmeError).file).toBe('model.pdb');
      expect((r.error as TmeError).message).toMatch(/box at 5 Å; at most 200 fits/);
      expect(r.ms).toBeLessThan(200);
    }
  });
  it('refuses an explicit box past maxEdge (--template-box 1000000000)', () => {
    const r = timed(() => simulateDensity(model(3), { voxelSize: 5, boxSize: 1e9, file: 'model.pdb' }));
    expect((r.error as TmeError).code).toBe('ERR_TME_INVALID_OPTION');
    expect(r.ms).toBeLessThan(100);
  });
  it('still simulates a model that fits', () => {
    const sim = simulateDensity(model(30), { voxelSize: 5, maxEdge: 200 });
    expect(sim.volume.shape[0]).toBeLessThanOrEqual(200);
    expect(sim.atomCount).toBe(3);
  });
});

it('imodDefocusPerView walks only the views that exist (a range to view 1e12 once hung)', () => {
  const file = parseImodDefocus('1 1000000000000 -60 60 4000 2\n');
  const r = timed(() => imodDefocusPerView(file, 41));
  expect(r.ms).toBeLessThan(100);
  expect(r.value?.length).toBe(41);
  expect(r.value?.[40]?.defocus1).toBeCloseTo(40000, 6); // 4000 nm in Å
});

describe('parseWarpXml in linear time', () => {
  it('50,000 unclosed tags: one clear error, at once (was 19 s)', () => {
    const r = timed(() => parseWarpXml(`<TiltSeries>${'<Angles>'.repeat(50_000)}`, { file: 'ts.xml' }));
    expect(r.error).toBeInstanceOf(TmeError);
    expect((r.error as TmeError).file).toBe('ts.xml');
    expect(r.ms).toBeLessThan(1000);
  });
  it('a 100 KB attribute name (was 90 s)', () => {
    const r = timed(() => parseWarpXml(`<TiltSeries ${'a'.repeat(100_000)}="1"><Angles>-3 0 3</Angles></TiltSeries>`));
    expect(r.ms).toBeLessThan(1000);
    expect(r.value?.angles).toEqual([-3, 0, 3]);
  });
});
