import { estimateJob } from '../src/estimate';
import { ReferenceBackend } from '../src/reference-backend';
import { defaultMemoryEstimate } from '../src/memory-model';
import { blobTemplate, noiseVolume, rotationSet } from './helpers';

// Small volumes, but the machine is shared: generous time per test.
jest.setTimeout(60_000);

const job = { target: noiseVolume([20, 16, 18], 2), template: blobTemplate(5), rotations: rotationSet([['z', 0], ['z', 40], ['x', 80]]) };

describe('estimateJob', () => {
  it('plans per device and times a calibration run', async () => {
    const estimate = await estimateJob(job, { backend: new ReferenceBackend(), calibrationRotations: 2 });
    expect(estimate.picked).toBe('cpu');
    expect(estimate.rotationCount).toBe(3);
    const [d] = estimate.devices;
    expect(d?.fits).toBe(true);
    // One tile padded by half the 5³ support (2) on every axis: 22, 18, 20 at fast sizes.
    expect(d?.tilePlan?.fastShape).toEqual([24, 18, 20]);
    expect(d?.bytesPerTile).toBe(defaultMemoryEstimate({ tileShape: [24, 18, 20], templateShape: [5, 5, 5], score: 'flc-sphere', rotationMode: 'real', filter: false, device: 'cpu' }));
    expect(d?.secondsPerRotation).toBeGreaterThan(0);
    // The reference backend reports no loop time: the whole call counts as rotations, no set-up.
    expect(d?.setupSeconds).toBe(0);
    expect(d?.seconds).toBeCloseTo((d?.secondsPerRotation ?? 0) * 3, 10);
  });

  it('splits the calibration call into the loop per rotation and the tile\'s set-up', async () => {
    // A backend whose calls report their loop: 40 ms a rotation, the rest of the call (≥ 200 ms) is set-up.
    class TimedBackend extends ReferenceBackend {
      override async runMatch(...args: Parameters<ReferenceBackend['runMatch']>): ReturnType<ReferenceBackend['runMatch']> {
        const [job] = args;
        await new Promise((r) => setTimeout(r, 200 + 40 * (job.rotationEnd - job.rotationStart)));
        const result = await super.runMatch(...args);
        return { ...result, timings: { ...result.timings, loopMs: 40 * (job.rotationEnd - job.rotationStart) } };
      }
    }
    const estimate = await estimateJob(job, { backend: new TimedBackend(), calibrationRotations: 2 });
    const [d] = estimate.devices;
    expect(d?.secondsPerRotation).toBeCloseTo(0.04, 10);
    expect(d?.setupSeconds).toBeGreaterThanOrEqual(0.2);
    expect(d?.setupSeconds).toBeLessThan(5);
    expect(d?.seconds).toBeCloseTo(0.04 * 3 + (d?.setupSeconds ?? 0) * (d?.tilePlan?.tiles.length ?? 0), 10);
  });

  it('reports a device the job cannot fit instead of throwing', async () => {
    const estimate = await estimateJob(job, { backend: new ReferenceBackend({ memoryBytes: 2000 }) });
    expect(estimate.devices[0]?.fits).toBe(false);
    expect(estimate.devices[0]?.error).toMatch(/holds \d+ MiB \(its best-score and rotation maps\) before any tile, but \d+ MiB of host memory is free/);
  });

  it('counts float32 and complex64 arrays per score (flc-sphere at 64³: 5 R + 2 C)', () => {
    const r = 4 * 64 ** 3;
    const c = 8 * 64 * 64 * 33;
    expect(defaultMemoryEstimate({ tileShape: [64, 64, 64], templateShape: [9, 9, 9], score: 'flc-sphere', rotationMode: 'real', filter: false, device: 'cpu' })).toBe(5 * r + 2 * c);
    expect(defaultMemoryEstimate({ tileShape: [64, 64, 64], templateShape: [9, 9, 9], score: 'mcc', rotationMode: 'fourier', filter: true, device: 'cpu' }))
      .toBe(8 * r + 4 * c + 2 * (4 + 8) * 729 + 64 * 729);
  });
});
