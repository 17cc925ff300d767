import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeJob, type MatchResult } from '@tme/engine';
import { createVolume, writeFileAtomic, writeMrc, type Zyx } from '@tme/formats';
import {
  callPeaks, formatOrientationsTsv, formatPicksDetailsTsv, peakCallReport, scoreHistogram, type PeakSet, type ScoreStatistics,
} from '@tme/peaks';
import { sampleRotations, seededRandom } from '@tme/rotations';

export interface TestJob {
  dir: string;
  tomogramFile: string;
  /** Where the peaks were put (z, y, x) and their heights; the call finds them. */
  peaks: Array<{ position: Zyx; height: number }>;
  set: PeakSet;
  rotations: Float64Array;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tme-report-${prefix}-`));
}

/**
 * A finished job as tme run leaves it, made without a search: a noise score map with Gaussian peaks at known
 * places (each voxel's best rotation drawn at random from a 60° set), a tomogram with blobs there, and the real
 * writers of job.json, picks.tsv, picks.details.tsv and picks.report.json.
 */
export function makeJob(dir: string, shape: Zyx = [24, 40, 48], seed = 7): TestJob {
  const random = seededRandom(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
  const [nz, ny, nx] = shape;
  const n = nz * ny * nx;
  const set = sampleRotations({ angularStep: 60, symmetry: 'C1', measure: false });
  const rotationCount = set.count;
  const scores = new Float32Array(n);
  const tomogram = new Float32Array(n);
  const indices = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    scores[i] = 0.02 * normal(); // the noise model written below: mean 0, σ 0.02
    tomogram[i] = normal();
    indices[i] = Math.floor(random() * rotationCount);
  }
  const peaks: TestJob['peaks'] = [
    { position: [12, 10, 12], height: 0.6 },
    { position: [8, 28, 34], height: 0.5 },
    { position: [17, 30, 14], height: 0.4 },
  ];
  for (const { position: [pz, py, px], height } of peaks) {
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
      const d2 = (z - pz) ** 2 + (y - py) ** 2 + (x - px) ** 2;
      const i = (z * ny + y) * nx + x;
      scores[i]! += height * Math.exp(-d2 / 2);
      tomogram[i]! += 4 * Math.exp(-d2 / 8);
    }
  }
  const voxelSize: Zyx = [10, 10, 10];
  const tomogramFile = path.join(dir, 'tomogram.mrc');
  writeMrc(tomogramFile, createVolume(tomogram, shape, voxelSize));
  const perRotationMean = new Float64Array(rotationCount).fill(0);
  const perRotationStd = new Float64Array(rotationCount).fill(0.02);
  const templateShape: Zyx = [12, 12, 12];
  const result: MatchResult = {
    scores: createVolume(scores, shape, voxelSize), indices, rotations: set.matrices,
    stats: {
      mean: 0, std: 0.02, count: n * rotationCount, voxelCount: n, rotationCount, perRotationMax: new Float32Array(rotationCount).fill(0.3),
      perRotationMean, perRotationStd, scope: 'core',
    },
    tilePlan: { splits: [1, 1, 1], fastShape: shape, tiles: [], bytesPerTile: 0, reason: 'single' },
    device: { index: 'cpu', name: 'CPU (test)', kind: 'cpu', memoryBytes: 1, backend: 'native' },
    devices: [],
    timings: { totalMs: 1234, prepareMs: 34, matchMs: 1200, checkpointMs: 0, rotationsPerSecond: 50 },
    parameters: {
      score: 'flc-sphere', backendScore: 'flc-sphere', padTarget: 'mean', interpolation: 'linear', rotationMode: 'real', device: 'cpu',
      threads: null, tile: 'auto', memoryFraction: 0.85, memoryLimitBytes: null, rotationRange: null, maskRadius: 60, templateMask: false,
      targetMask: false, filter: false, targetShape: shape, templateShape, supportShape: templateShape, voxelSize, rotationCount,
      background: 'none', randomPhaseSeed: null,
    },
    resumed: false,
  };
  writeJob(dir, result, {
    tmeVersion: '9.9.9',
    inputs: {
      target: tomogramFile, template: path.join(dir, 'template.mrc'), angularStep: 60, symmetry: 'C1', rotationCount,
      coveringBound: set.coveringBound, rotationMethod: set.method, command: 'tme run', warnings: ['tomogram.mrc: voxel size 0 in the header, taken as 1 Å'],
    },
  });
  const statistics: ScoreStatistics = { mean: 0, std: 0.02, rotations: rotationCount, voxels: n, perRotation: { mean: perRotationMean, std: perRotationStd } };
  const called = callPeaks({
    scores, rotationIndices: indices, shape, rotations: set.matrices, statistics, voxelSize, origin: [0, 0, 0], templateShape,
  }, { falseAlarms: 1 });
  writeFileAtomic(path.join(dir, 'picks.tsv'), formatOrientationsTsv(called.picks));
  writeFileAtomic(path.join(dir, 'picks.details.tsv'), formatPicksDetailsTsv(called.picks));
  const histogram = scoreHistogram(scores, { rotationIndices: indices, bins: 100, threshold: called.threshold.value });
  const report = peakCallReport(dir, 'scores.mrc', called, histogram, statistics, { warnings: ['a warning of the peak call'], timings: { peaksMs: 5, exportMs: 7 } });
  writeFileAtomic(path.join(dir, 'picks.report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return { dir, tomogramFile, peaks, set: called, rotations: set.matrices };
}
