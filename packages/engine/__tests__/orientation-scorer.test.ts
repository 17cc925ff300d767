import { createVolume, type Zyx } from '@tme/formats';
import { relionEulerToMatrix } from '@tme/rotations';
import { matchTemplate } from '../src/match';
import { nativeAddonBuilt } from '../src/native-backend';
import { createOrientationScorer } from '../src/orientation-scorer';
import { ReferenceBackend } from '../src/reference-backend';
import { blobTemplate, halfSpectrumFilter, noiseVolume } from './helpers';

// The scorer must give, at any voxel, exactly the score the search's map holds there for that single rotation.
const target = noiseVolume([14, 15, 16], 11);
const template = blobTemplate(7);
const rotation = relionEulerToMatrix(30, 50, -70);
const positions: Zyx[] = [[7, 7, 8], [3, 10, 4], [0, 0, 15]];

async function mapFor(score: string, filter?: (shape: Zyx) => Float32Array): Promise<Float32Array> {
  const result = await matchTemplate(
    { target, template, rotations: rotation, score, filter: filter ? (shape) => filter(shape) : undefined },
    { backend: new ReferenceBackend() },
  );
  return result.scores.data;
}

const at = (map: Float32Array, [z, y, x]: Zyx): number => map[(z * 15 + y) * 16 + x] as number;

describe('createOrientationScorer', () => {
  for (const score of ['cc', 'flc-sphere', 'flc', 'corr', 'lcc']) {
    it(`${score}: equals the search's score map at chosen voxels`, async () => {
      const map = await mapFor(score);
      const scorer = createOrientationScorer({ target, template, rotations: rotation, score });
      const got = await scorer(positions.map((position) => ({ position, rotations: rotation })));
      positions.forEach((pos, i) => {
        expect(Math.abs((got[i]![0] as number) - at(map, pos))).toBeLessThan(1e-4 * Math.max(1, Math.abs(at(map, pos))));
      });
    });
  }

  (nativeAddonBuilt() ? it : it.skip)('with an even Fourier filter (a Gaussian low-pass), too', async () => {
    const lowpass = (shape: Zyx): Float32Array => halfSpectrumFilter(shape, (fz, fy, fx) => Math.exp(-(fz * fz + fy * fy + fx * fx) / (2 * 0.15 ** 2)));
    const map = await mapFor('flc-sphere', lowpass);
    const scorer = createOrientationScorer({ target, template, rotations: rotation, score: 'flc-sphere', filter: lowpass });
    const got = await scorer(positions.map((position) => ({ position, rotations: rotation })));
    positions.forEach((pos, i) => expect(Math.abs((got[i]![0] as number) - at(map, pos))).toBeLessThan(2e-4));
  });

  it('ranks the true rotation of a planted template first', async () => {
    const planted = new Float32Array(target.data.length);
    const rotated = blobTemplate(7);
    const R = relionEulerToMatrix(40, 60, 10);
    // Plant the rotated template at (7, 7, 8) in a quiet volume.
    const { rotateBox } = jest.requireActual('../src/rotate') as typeof import('../src/rotate');
    const t = rotateBox(rotated.data, rotated.shape, R, 'cubic');
    for (let z = 0; z < 7; z++) for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) {
      planted[((4 + z) * 15 + (4 + y)) * 16 + (5 + x)] = (t[(z * 7 + y) * 7 + x] as number) + 0.01 * (target.data[((4 + z) * 15 + (4 + y)) * 16 + (5 + x)] as number);
    }
    const vol = createVolume(planted, target.shape, target.voxelSize);
    const candidates = new Float64Array(9 * 3);
    candidates.set(relionEulerToMatrix(0, 0, 0), 0);
    candidates.set(R, 9);
    candidates.set(relionEulerToMatrix(40, 75, 10), 18);
    const [scores] = await createOrientationScorer({ target: vol, template: rotated, rotations: candidates, score: 'flc-sphere' })([{ position: [7, 7, 8], rotations: candidates }]);
    expect(scores![1]).toBeGreaterThan(0.99);
    expect(scores![1]).toBeGreaterThan(scores![0] as number);
    expect(scores![1]).toBeGreaterThan(scores![2] as number);
  });
});
