import { execFileSync } from 'node:child_process';
import { rotateBox, toArrayOrder } from '../src/rotate';
import { laplacian } from '../src/laplace';
import { sphereMask, inscribedRadius } from '../src/masks';
import { axisRotation, blobTemplate, maxAbsDiff } from './helpers';

describe('rotateBox', () => {
  const t = blobTemplate(7);

  it('maps x onto y for 90° about z (the xyz frame, active)', () => {
    // A single voxel at +1 in x from the centre goes to +1 in y.
    const data = new Float32Array(343);
    data[(3 * 7 + 3) * 7 + 4] = 1;
    const out = rotateBox(data, [7, 7, 7], Float64Array.from(axisRotation('z', 90)), 'cubic');
    expect(out[(3 * 7 + 4) * 7 + 3]).toBeCloseTo(1, 12);
    expect(out.reduce((s, v) => s + Math.abs(v), 0)).toBeCloseTo(1, 12);
  });

  it('matches scipy.ndimage.affine_transform (order 1, grid-constant, about box//2) for an oblique rotation', () => {
    const R = Float64Array.from(axisRotation('y', 33));
    const A = toArrayOrder(R);
    const script = `
import json, sys, numpy as np
from scipy.ndimage import affine_transform
d = json.loads(sys.stdin.read())
t = np.array(d['t']).reshape(7, 7, 7)
A = np.array(d['A']).reshape(3, 3)
c = np.array([3.0, 3.0, 3.0])
out = affine_transform(t, A.T, offset=c - A.T @ c, order=1, mode='grid-constant', cval=0.0)
print(json.dumps(out.ravel().tolist()))`;

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);
    const expected = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify({ t: Array.from(t.data), A: Array.from(A) }) }).toString()) as number[];
    const out = rotateBox(t.data, [7, 7, 7], R, 'linear');
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-6);
  });
});

describe('laplacian and masks', () => {
  it('the Laplacian of x² + 2y² is 6 inside (2 + 4)', () => {
    const d = new Float32Array(125);
    for (let z = 0; z < 5; z++) for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) d[(z * 5 + y) * 5 + x] = x * x + 2 * y * y;
    const l = laplacian(d, [5, 5, 5], 'nearest');
    expect(l[(2 * 5 + 2) * 5 + 2]).toBe(6);
    // At the x = 0 edge the repeated edge voxel gives (1 − 0) + 4 = 5.
    expect(l[(2 * 5 + 2) * 5 + 0]).toBe(5);
  });

  it('a sphere of radius 2 voxels has the 33 lattice points within distance 2', () => {
    expect(sphereMask([5, 5, 5], 4, [2, 2, 2]).reduce((s, v) => s + v, 0)).toBe(33);
    expect(inscribedRadius([6, 7, 9], [2, 2, 2])).toBe(4);
  });
});
