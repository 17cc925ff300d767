import { TmeError } from '@tme/errors';
import { estimateMatchMemory, fftForward, runMatch, type NativeMatchJob } from '../index';
import { lavapipeIndex } from './helpers/devices';
import { axisAngle, randomVolume, sphereMask, type Shape } from './helpers/reference';

const vk = lavapipeIndex();
const onVulkan = vk === undefined ? it.skip : it;

function smallJob(overrides: Partial<NativeMatchJob> = {}): NativeMatchJob {
  const tile: Shape = [16, 16, 16];
  const box: Shape = [6, 6, 6];
  return {
    device: 'cpu', target: randomVolume(tile, 1), targetShape: tile, template: randomVolume(box, 2),
    templateShape: box, mask: sphereMask(box, 2.5), rotations: Float64Array.from(axisAngle([0, 0, 1], 0)),
    ...overrides,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TmeError);
    return (err as TmeError).code;
  }
  return 'resolved';
}

describe('errors cross as TmeError with a code', () => {
  it('a job that cannot fit host memory fails before any work with ERR_TME_DEVICE_MEMORY and the numbers', async () => {
    const job = smallJob({ targetShape: [4096, 4096, 4096], target: new Float32Array(0) });
    await expect(runMatch(job)).rejects.toMatchObject({ code: 'ERR_TME_DEVICE_MEMORY', message: expect.stringMatching(/needs [\d.]+ MiB of host memory( \([\d.]+ MiB of it held already\))? but [\d.]+ MiB/) });
    const estimate = estimateMatchMemory({ device: 'cpu', targetShape: [4096, 4096, 4096], templateShape: [6, 6, 6] });
    expect(estimate.fits).toBe(false);
    expect(estimate.hostBytes).toBeGreaterThan(estimate.limitBytes);
  });
  onVulkan('lavapipe refuses a tile whose spectrum exceeds its 128 MiB per-binding limit', async () => {
    const estimate = estimateMatchMemory({ device: vk!, targetShape: [336, 336, 336], templateShape: [32, 32, 32] });
    expect(estimate.largestBufferBytes).toBe(336 * 336 * 169 * 8);
    expect(estimate.fits).toBe(false);
    expect(estimate.reason).toContain('maxStorageBufferRange');
    const job = smallJob({ device: vk!, targetShape: [336, 336, 336], target: new Float32Array(0) });
    await expect(runMatch(job)).rejects.toMatchObject({ code: 'ERR_TME_DEVICE_MEMORY' });
    // ... and 256^3 fits (67.6 MB spectrum).
    expect(estimateMatchMemory({ device: vk!, targetShape: [256, 256, 256], templateShape: [32, 32, 32] }).fits).toBe(true);
  });
  it('bad shapes: ERR_TME_UNSUPPORTED_SIZE', async () => {
    expect(await codeOf(runMatch(smallJob({ targetShape: [16, 0, 16] })))).toBe('ERR_TME_UNSUPPORTED_SIZE');
    expect(await codeOf(runMatch(smallJob({ targetShape: [16, 16, 2.5] })))).toBe('ERR_TME_UNSUPPORTED_SIZE');
    expect(await codeOf(runMatch(smallJob({ templateShape: [20, 6, 6], template: new Float32Array(720), mask: new Float32Array(720) })))).toBe('ERR_TME_UNSUPPORTED_SIZE');
    expect(() => fftForward('cpu', new Float32Array(8), [2, 2, 0])).toThrow(expect.objectContaining({ code: 'ERR_TME_UNSUPPORTED_SIZE' }));
  });
  onVulkan('Vulkan refuses axes with a prime factor above 13 (VkFFT 1.2.26 Bluestein returns garbage)', async () => {
    expect(() => fftForward(vk!, new Float32Array(17 * 16 * 16), [17, 16, 16])).toThrow(expect.objectContaining({ code: 'ERR_TME_UNSUPPORTED_SIZE', message: expect.stringContaining('prime factor above 13') }));
    expect(await codeOf(runMatch(smallJob({ device: vk!, targetShape: [16, 16, 34], target: new Float32Array(16 * 16 * 34) })))).toBe('ERR_TME_UNSUPPORTED_SIZE');
  });
  it('bad options: ERR_TME_INVALID_OPTION', async () => {
    expect(await codeOf(runMatch(smallJob({ target: new Float32Array(10) })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ mask: new Float32Array(3) })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ filter: new Float32Array(16 * 16 * 16) })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ rotationEnd: 2 })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ rotations: new Float64Array(10) })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ initialScores: new Float32Array(4096) })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ score: 'lcc' as never })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ score: 'mcc', rotationMode: 'fourier' })))).toBe('ERR_TME_INVALID_OPTION');
    expect(await codeOf(runMatch(smallJob({ target: new Float64Array(4096) as unknown as Float32Array })))).toBe('ERR_TME_INVALID_OPTION');
    expect(() => fftForward('cpu', new Float32Array(7), [2, 2, 2])).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });
  it('an unknown device index: ERR_TME_NO_DEVICE', async () => {
    expect(await codeOf(runMatch(smallJob({ device: 42 })))).toBe('ERR_TME_NO_DEVICE');
  });
  it("keeps the caller's stack, not the native frames", async () => {
    try {
      await runMatch(smallJob({ target: new Float32Array(10) }));
      throw new Error('resolved');
    } catch (err) {
      expect((err as Error).stack).toContain('errors.test.ts');
      expect((err as TmeError).message).toBe('Expected 4096 values for target but received 10');
    }
  });
});

describe('cancellation', () => {
  // Rotations long against the event loop's latency (at 64³ the pruned CPU path takes ~1 ms each, and a progress
  // message reached JS 7 rotations late on a loaded CI machine).
  const tile: Shape = [128, 128, 128];
  const box: Shape = [16, 16, 16];
  const rotations = Float64Array.from(Array.from({ length: 400 }, (_, i) => axisAngle([1, 1, i + 1], i)).flat());
  const base = { target: randomVolume(tile, 5), targetShape: tile, template: randomVolume(box, 6), templateShape: box, mask: sphereMask(box, 6), rotations };

  it.each<[string]>([['cpu'], ['vulkan']])('aborting mid-job on %s rejects with ERR_TME_CANCELLED within a rotation', async (path) => {
    if (path === 'vulkan' && vk === undefined) return;
    const device = path === 'cpu' ? 'cpu' : vk!;
    const controller = new AbortController();
    let seen = 0;
    let atAbort = -1;
    let abortedAt = 0;
    const started = Date.now();
    const promise = runMatch({ ...base, device, threads: 2 }, {
      signal: controller.signal,
      onProgress: ({ done }) => {
        seen = done;
        if (done >= 2 && atAbort < 0) {
          atAbort = done;
          abortedAt = Date.now();
          controller.abort();
        }
      },
    });
    await expect(promise).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED', message: expect.stringMatching(/cancelled after \d+ of 400 rotations/) });
    const latencyMs = Date.now() - abortedAt;
    const finished = Number(/after (\d+)/.exec(((await promise.catch((e: Error) => e)) as Error).message)![1]);
    expect(atAbort).toBeGreaterThanOrEqual(2);
    // Progress reaches JS late (coalesced), so allow what was in flight when it was sent plus the rotation each
    // of the two workers is in when the flag is set: nothing more.
    expect(finished - atAbort).toBeLessThanOrEqual(4);
    expect(latencyMs).toBeLessThan(2000);
    expect(seen).toBeLessThan(400);
    expect(Date.now() - started).toBeLessThan(30000);
  });
  it('an already-aborted signal rejects at once', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(runMatch({ ...base, device: 'cpu' }, { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
  });
  it('a throwing progress callback cancels the job and becomes its error', async () => {
    const boom = new Error('boom');
    await expect(runMatch({ ...base, device: 'cpu' }, { onProgress: () => { throw boom; } })).rejects.toBe(boom);
  });
});
