import { execFileSync } from 'node:child_process';
import type { Zyx } from '@tme/formats';
import { extractRegion, resolvePadMode } from '../src/padding';
import { gaussianNoise } from './helpers';

function numpyPad(data: Float32Array, shape: Zyx, before: Zyx, after: Zyx, mode: string, value: number): number[] {
  const script = `
import json, sys, numpy as np
a = np.array(json.loads(sys.stdin.read()), dtype=np.float64).reshape(${JSON.stringify(shape)})
w = list(zip(${JSON.stringify(before)}, ${JSON.stringify(after)}))
p = np.pad(a, w, mode='reflect') if '${mode}' == 'mirror' else np.pad(a, w, mode='constant', constant_values=${value})
print(json.dumps(p.ravel().tolist()))`;

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);
  return JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(Array.from(data)) }).toString()) as number[];
}

describe('extractRegion', () => {
  const shape: Zyx = [4, 5, 6];
  const data = gaussianNoise(120, 3);
  it.each(['mirror', 'zero', 'mean'] as const)('%s matches numpy.pad (reflect / constant)', (mode) => {
    const before: Zyx = [3, 2, 7];
    const after: Zyx = [2, 4, 1];
    const size: Zyx = [shape[0] + 5, shape[1] + 6, shape[2] + 8];
    const out = extractRegion(data, shape, [-3, -2, -7], size, mode, 0.25);
    const expected = numpyPad(data, shape, before, after, mode, mode === 'mean' ? 0.25 : 0);
    expect(out.length).toBe(expected.length);
    expect(Array.from(out)).toEqual(expected.map((v) => Math.fround(v)));
  });

  it('reads an inner box unchanged', () => {
    const out = extractRegion(data, shape, [1, 1, 1], [2, 2, 2], 'zero');
    expect(out[0]).toBe(data[(1 * 5 + 1) * 6 + 1]);
    expect(out[7]).toBe(data[(2 * 5 + 2) * 6 + 2]);
  });

  it('rejects unknown modes', () => {
    expect(() => resolvePadMode('wrap')).toThrow(/Expected one of mean, zero, mirror for padTarget but received "wrap"/);
  });
});
