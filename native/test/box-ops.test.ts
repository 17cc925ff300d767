// The CPU box operations (src/cpu/box_ops.cc): the vectorised rotation and the pruned filter against the plain ones
// (TME_BOX_OPS=reference: one voxel at a time, a full-grid FFT; in a child process, as jest's process.env is a copy) and against float64 references. The boxes are read
// out exactly through scoreOrientations: a cc score against a patch that is 1 at one voxel and 0 elsewhere is the
// rotated (and filtered) template's value there.
import { runMatch, scoreOrientations, type NativeScore } from '../index';
import { runJobInChild } from './helpers/child';
import { filterBoxDirect, randomVolume, rotateBox, sphereMask, voxels, type Shape } from './helpers/reference';
import { randomRotations, wedgeLowPass } from './helpers/volumes';

type Interp = 'linear' | 'cubic';

/** The job whose cc scores are the boxes scoreOrientations builds: query i is voxel i, with every rotation. */
function boxesJob(template: Float32Array, box: Shape, rotations: number[][], interpolation: Interp, filter?: { values: Float32Array; shape: Shape }) {
  const n = voxels(box);
  const all = new Float64Array(9 * n * rotations.length);
  for (let i = 0; i < n; i++) rotations.forEach((R, r) => all.set(R, 9 * (i * rotations.length + r)));
  const offsets = Int32Array.from({ length: n + 1 }, (_, i) => i * rotations.length);
  return {
    template, templateShape: box, mask: new Float32Array(n).fill(1), score: 'cc' as const, interpolation, rotations: all, offsets,
    ...(filter ? { filter: filter.values, filterShape: filter.shape } : {}),
  };
}

/** Scores by query (rotation fastest) -> boxes: out[r * n + i] is voxel i of rotation r. */
function byRotation(got: Float32Array, n: number, count: number): Float32Array {
  const out = new Float32Array(n * count);
  for (let i = 0; i < n; i++) for (let r = 0; r < count; r++) out[r * n + i] = got[i * count + r]!;
  return out;
}

async function boxes(template: Float32Array, box: Shape, rotations: number[][], interpolation: Interp, filter?: { values: Float32Array; shape: Shape }): Promise<Float32Array> {
  const n = voxels(box);
  const patches = new Float32Array(n * n);
  for (let i = 0; i < n; i++) patches[i * n + i] = 1;
  const got = await scoreOrientations({ ...boxesJob(template, box, rotations, interpolation, filter), patches });
  return byRotation(got, n, rotations.length);
}

/** A job run in a child process with TME_BOX_OPS=reference: its raw output bytes. */
function runReference(kind: 'orientations' | 'match', job: Record<string, unknown>): Buffer {
  return runJobInChild(kind, job, { TME_BOX_OPS: 'reference' });
}

function referenceBoxes(template: Float32Array, box: Shape, rotations: number[][], interpolation: Interp, filter?: { values: Float32Array; shape: Shape }): Float32Array {
  const n = voxels(box);
  const bytes = runReference('orientations', { ...boxesJob(template, box, rotations, interpolation, filter), identityPatches: n });
  const got = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return byRotation(got, n, rotations.length);
}

const identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** A filter on `g` with the same value along y (a wedge about y) and/or z: `source` read at ky = 0 / kz = 0. */
function constantAlong(source: Float32Array, g: Shape, y: boolean, z: boolean): Float32Array {
  const hx = Math.floor(g[2] / 2) + 1;
  const out = new Float32Array(source.length);
  for (let kz = 0; kz < g[0]; kz++)
    for (let ky = 0; ky < g[1]; ky++)
      for (let kx = 0; kx < hx; kx++) out[(kz * g[1] + ky) * hx + kx] = source[((z ? 0 : kz) * g[1] + (y ? 0 : ky)) * hx + kx]!;
  return out;
}

describe('box operations (CPU)', () => {
  // Odd, unequal sides: rows that are not a multiple of 16 lanes, centres off the middle.
  const box: Shape = [7, 9, 19];
  const template = randomVolume(box, 41);
  const rotations = [identity, ...randomRotations(7, 42)];

  it.each<Interp>(['linear', 'cubic'])('rotation (%s): bitwise the one-voxel-at-a-time rotation, and the float64 one', async (interpolation) => {
    const got = await boxes(template, box, rotations, interpolation);
    const reference = referenceBoxes(template, box, rotations, interpolation);
    expect(Buffer.from(got.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
    // The identity reproduces the template exactly; the others are real rotations of it.
    expect(Array.from(got.subarray(0, voxels(box)))).toEqual(Array.from(template));
    if (interpolation === 'linear') {
      rotations.forEach((R, r) => {
        const expected = rotateBox(template, box, R);
        expect(maxDiff(got.subarray(r * voxels(box), (r + 1) * voxels(box)), expected)).toBeLessThan(1e-4);
      });
    }
    let outside = 0;
    for (const v of got) if (v === 0) outside++;
    expect(outside).toBeGreaterThan(0); // rotated corners leave the box: the border and outside lanes are exercised
  });

  const g: Shape = [11, 14, 28];
  const general = wedgeLowPass(g, 0.3);
  // The float64 DFT is slow (O(grid × box) per box): it checks one rotated box, for the two filters the search
  // meets (a general one and a wedge about y); the full-grid comparison covers every case.
  it.each([
    ['varies along every axis', general, true],
    ['constant along y (a wedge about y)', constantAlong(general, g, true, false), true],
    ['constant along z', constantAlong(general, g, false, true), false],
    ['constant along y and z', constantAlong(general, g, true, true), false],
  ] as const)('filter (%s): the full-grid filter and the float64 DFT to float rounding', async (_, values, direct) => {
    const filter = { values, shape: g }; // unnormalised: the native side and filterBoxDirect divide by the grid's size
    const some = rotations.slice(0, 3);
    const got = await boxes(template, box, some, 'linear', filter);
    const reference = referenceBoxes(template, box, some, 'linear', filter);
    const scale = maxAbs(reference);
    expect(scale).toBeGreaterThan(0.1);
    expect(maxDiff(got, reference) / scale).toBeLessThan(1e-6);
    expect(maxDiff(got, reference)).toBeGreaterThan(0); // two computations: the child ran the full-grid filter
    if (direct) {
      const n = voxels(box);
      const unfiltered = await boxes(template, box, [some[1]!], 'linear');
      const expected = filterBoxDirect(unfiltered, box, filter);
      expect(maxDiff(got.subarray(n, 2 * n), expected) / scale).toBeLessThan(1e-6);
    }
  });

  it.each<NativeScore>(['cc', 'flc-sphere', 'flc', 'mcc'])('%s maps with a filtered template: the reference box operations\' within 1e-6 of the best score', async (score) => {
    const tile: Shape = [24, 26, 40];
    const target = randomVolume(tile, 43);
    const mask = sphereMask(box, 3.4);
    const job = {
      device: 'cpu' as const, target, targetShape: tile, template, templateShape: box, mask, score,
      rotations: Float64Array.from(rotations.flat()), filter: general, filterShape: g,
      interpolation: 'cubic' as const,
    };
    const got = await runMatch(job);
    const bytes = runReference('match', job);
    const count = voxels(tile);
    const reference = {
      scores: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 4 * count)),
      indices: new Int32Array(bytes.buffer.slice(bytes.byteOffset + 4 * count, bytes.byteOffset + 8 * count)),
    };
    const best = maxAbs(reference.scores);
    expect(best).toBeGreaterThan(0);
    expect(maxDiff(got.scores, reference.scores) / best).toBeLessThan(1e-6);
    expect(maxDiff(got.scores, reference.scores)).toBeGreaterThan(0); // the child's box operations were the reference's
    let same = 0;
    for (let i = 0; i < got.indices.length; i++) if (got.indices[i] === reference.indices[i]) same++;
    expect(same / got.indices.length).toBeGreaterThan(0.999);
  });
});
