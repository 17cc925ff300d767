// Several devices in one run: each tile's rotations split across one worker per device, their maps merged exactly.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TmeError, type Zyx } from '@tme/formats';
import type {
  BackendMatchJob, BackendMatchResult, BackendRunOptions, DeviceId, DeviceInfo, DeviceSpec, MatchBackend, MemoryQuery,
} from '../src/backend';
import { CHECKPOINT_FILE } from '../src/checkpoint';
import { matchTemplate, type MatchOptions, type MatchResult } from '../src/match';
import { NativeBackend, nativeAddonBuilt } from '../src/native-backend';
import type { MatchJob } from '../src/prepare';
import { blobTemplate, noiseVolume, rotationSet } from './helpers';

jest.setTimeout(60_000);

/** Waits `ms`, or rejects as a cancelled call when `signal` aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(new TmeError('ERR_TME_CANCELLED', 'cancelled')); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Delegates to a backend and records every call: its device and range, and how many ran at once. */
class Recording implements MatchBackend {
  readonly calls: Array<{ device: DeviceId; start: number; end: number }> = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly inner: MatchBackend,
    /** Run before a call starts and before it returns its result (an abort, a delay). */
    private readonly hooks: { before?: (job: BackendMatchJob) => void; after?: (job: BackendMatchJob, signal?: AbortSignal) => Promise<void> } = {},
  ) {}
  get name(): string { return this.inner.name; }
  get capabilities(): MatchBackend['capabilities'] { return this.inner.capabilities; }
  listDevices(): DeviceInfo[] { return this.inner.listDevices(); }
  pickDevice(spec: DeviceSpec): DeviceId { return this.inner.pickDevice(spec); }
  nextFastShape(shape: Zyx): Zyx { return this.inner.nextFastShape(shape); }
  estimateMemory(query: MemoryQuery): number { return this.inner.estimateMemory(query); }
  releaseKeptSetup(device?: DeviceId): void { this.inner.releaseKeptSetup?.(device); }
  async runMatch(job: BackendMatchJob, options?: BackendRunOptions): Promise<BackendMatchResult> {
    this.calls.push({ device: job.device, start: job.rotationStart, end: job.rotationEnd });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      this.hooks.before?.(job);
      const result = await this.inner.runMatch(job, options);
      await this.hooks.after?.(job, options?.signal);
      return result;
    } finally {
      this.inFlight--;
    }
  }
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function expectSameResult(a: MatchResult, b: MatchResult): void {
  expect(sameBits(a.scores.data, b.scores.data)).toBe(true);
  expect(sameBits(a.indices, b.indices)).toBe(true);
  expect(sameBits(a.stats.perRotationMax, b.stats.perRotationMax)).toBe(true);
  expect(a.stats.perRotationMean && b.stats.perRotationMean && sameBits(a.stats.perRotationMean, b.stats.perRotationMean)).toBe(true);
  expect(a.stats.perRotationStd && b.stats.perRotationStd && sameBits(a.stats.perRotationStd, b.stats.perRotationStd)).toBe(true);
  expect([a.stats.mean, a.stats.std, a.stats.count]).toEqual([b.stats.mean, b.stats.std, b.stats.count]);
}

const built = nativeAddonBuilt();
const describeNative = built ? describe : describe.skip;
if (!built) test.skip('multi-device native tests skipped: native/build/Release/tme.node is not built', () => undefined);

// 48³ target, 16³ template, 30 rotations; a tile of 40 voxels in z splits it in two (cores of 24–25 voxels).
const rotations = rotationSet(Array.from({ length: 30 }, (_, i) => [(['x', 'y', 'z'] as const)[i % 3] as 'x' | 'y' | 'z', 7 + 12 * i]));
const input: MatchJob = {
  target: noiseVolume([48, 48, 48], 31), template: blobTemplate(16), rotations, score: 'flc', threads: 1, tile: [40, 63, 63],
};

describeNative('several devices on the native backend', () => {
  const native = new NativeBackend();
  const lavapipe = native.listDevices().find((d) => d.index !== 'cpu' && d.kind === 'cpu')?.index;
  let single: MatchResult;

  beforeAll(async () => {
    single = await matchTemplate({ ...input, device: 'cpu' }, { backend: native, batchRotations: 4 });
  });

  it("['cpu', 'cpu']: two concurrent workers give the one-device maps and statistics bit for bit", async () => {
    const backend = new Recording(native);
    const two = await matchTemplate({ ...input, device: ['cpu', 'cpu'] }, { backend, batchRotations: 4 });
    expect(two.tilePlan.tiles).toHaveLength(2);
    expect(two.tilePlan.fastShape).toEqual(single.tilePlan.fastShape);
    expect(backend.maxInFlight).toBe(2);
    // Every rotation of every tile ran exactly once.
    expect(backend.calls.reduce((n, c) => n + c.end - c.start, 0)).toBe(2 * 30);
    expectSameResult(two, single);
    expect(two.devices.map((d) => d.index)).toEqual(['cpu', 'cpu']);
    expect(two.parameters.device).toEqual(['cpu', 'cpu']);
  });

  (lavapipe === undefined ? it.skip : it)('[lavapipe, lavapipe] equals one lavapipe bit for bit; [cpu, lavapipe] the CPU to 1e-4', async () => {
    const vk = lavapipe as number;
    // 12 of the rotations: lavapipe is slow.
    const small: MatchJob = { ...input, rotations: rotations.subarray(0, 9 * 12) };
    const one = await matchTemplate({ ...small, device: vk }, { backend: native, batchRotations: 3 });
    const two = await matchTemplate({ ...small, device: [vk, vk] }, { backend: native, batchRotations: 3 });
    expectSameResult(two, one);
    const backend = new Recording(native);
    const mixed = await matchTemplate({ ...small, device: ['cpu', vk] }, { backend, batchRotations: 2 });
    const single = await matchTemplate({ ...small, device: 'cpu' }, { backend: native, batchRotations: 4 });
    expect(new Set(backend.calls.map((c) => c.device))).toEqual(new Set(['cpu', vk]));
    let best = 0;
    let worst = 0;
    let differ = 0;
    for (let i = 0; i < single.indices.length; i++) {
      best = Math.max(best, Math.abs(single.scores.data[i] as number));
      worst = Math.max(worst, Math.abs((mixed.scores.data[i] as number) - (single.scores.data[i] as number)));
      if (mixed.indices[i] !== single.indices[i]) differ++;
    }
    expect(worst / best).toBeLessThan(1e-4);
    // Indices differ only at near-ties (two rotations within rounding of each other).
    expect(differ / single.indices.length).toBeLessThan(2e-3);
  });

  it('cancelling mid-run stops both workers; resuming its checkpoint (tile split, not a prefix) gives the same maps', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-multi-resume-'));
    try {
      const controller = new AbortController();
      // The batch [0, 2) returns late, so [2, 4) is merged (and checkpointed) while it still runs; the next call
      // cancels the run.
      const backend = new Recording(native, {
        before: (job) => { if (job.rotationStart === 4) controller.abort(); },
        after: (job, signal) => (job.rotationStart === 0 ? sleep(1000, signal) : Promise.resolve()),
      });
      await expect(matchTemplate({ ...input, device: ['cpu', 'cpu'] }, {
        backend, batchRotations: 2, signal: controller.signal, checkpoint: { dir, intervalSeconds: 0 },
      })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
      expect(backend.inFlight).toBe(0);
      const checkpoint = fs.readFileSync(path.join(dir, CHECKPOINT_FILE));
      expect(checkpoint.toString('ascii', 0, 8)).toBe('TMECKPT2');
      expect(checkpoint.toString('utf8', 12, 400)).toContain('"done":[[2,4]]');
      const resumed = await matchTemplate({ ...input, device: ['cpu', 'cpu'] }, {
        backend: native, batchRotations: 3, checkpoint: { dir, resume: true },
      });
      expect(resumed.resumed).toBe(true);
      expectSameResult(resumed, single);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gpu:all refuses a backend without a GPU (lavapipe is a CPU device) in one line", async () => {
    await expect(matchTemplate({ ...input, device: 'gpu:all' }, { backend: native }))
      .rejects.toMatchObject({ code: 'ERR_TME_NO_DEVICE', message: expect.stringMatching(/^no GPU is listed \(the native backend lists [^\n]*cpu: CPU \(FFTW3f\) \(cpu\)\)$/) });
  });
});

/**
 * Two GPUs that score every voxel by a table (score of rotation r: `table[r]`), device 0 slowly (each call waits
 * `slowMs`, cancellable), device 1 at once; device 1 fails on its call at `failAt`, when given.
 */
class TableBackend implements MatchBackend {
  readonly name = 'table';
  readonly finished: Array<{ device: DeviceId; start: number; end: number }> = [];
  cancelledCalls = 0;
  constructor(private readonly table: number[], private readonly slowMs: number, private readonly failAt?: number) {}
  listDevices(): DeviceInfo[] {
    return [0, 1].map((index) => ({ index, name: `table ${index}`, kind: 'gpu' as const, memoryBytes: 2 ** 30 }));
  }
  pickDevice(spec: DeviceSpec): DeviceId {
    if (spec === 0 || spec === 1) return spec;
    throw new TmeError('ERR_TME_NO_DEVICE', `no device matches ${JSON.stringify(spec)}`);
  }
  nextFastShape(shape: Zyx): Zyx { return shape; }
  estimateMemory(): number { return 1; }
  async runMatch(job: BackendMatchJob, options: BackendRunOptions = {}): Promise<BackendMatchResult> {
    const { rotationStart: start, rotationEnd: end } = job;
    if (job.device === 1 && start === this.failAt) throw new TmeError('ERR_TME_DEVICE', 'device 1 was lost');
    if (job.device === 0) {
      try {
        await sleep(this.slowMs, options.signal);
      } catch (err) {
        this.cancelledCalls++;
        throw err;
      }
    } else {
      await Promise.resolve();
    }
    const n = job.targetShape[0] * job.targetShape[1] * job.targetShape[2];
    const scores = job.initialScores ? Float32Array.from(job.initialScores) : new Float32Array(n).fill(-Infinity);
    const indices = job.initialIndices ? Int32Array.from(job.initialIndices) : new Int32Array(n).fill(-1);
    const perRotationMax = new Float32Array(end - start);
    for (let r = start; r < end; r++) {
      const s = this.table[r] as number;
      perRotationMax[r - start] = s;
      // As the native loop: a strictly higher score replaces (a worker sees its rotations in increasing order).
      for (let i = 0; i < n; i++) if (s > (scores[i] as number)) { scores[i] = s; indices[i] = r; }
    }
    this.finished.push({ device: job.device, start, end });
    options.onProgress?.({ done: end - start, total: end - start });
    return { scores, indices, stats: { sum: 0, sumSq: 0, count: 0, perRotationMax }, timings: {}, device: `table ${String(job.device)}` };
  }
}

describe('several devices: the merge and its failures (a table backend)', () => {
  const table = Array.from({ length: 30 }, (_, r) => 0.5 - 0.001 * r);
  table[2] = 1;
  table[20] = 1; // ties rotation 2 exactly, in device 1's share
  const job: MatchJob = {
    target: noiseVolume([6, 6, 6], 5, 1), template: blobTemplate(3, 1),
    rotations: rotationSet(Array.from({ length: 30 }, () => ['z', 0] as ['z', number])), score: 'cc',
  };
  const options: MatchOptions = { batchRotations: 4 };

  it('an exact tie across the split keeps the lower rotation index, though its device finished last', async () => {
    const backend = new TableBackend(table, 150);
    const split = await matchTemplate({ ...job, device: [0, 1] }, { ...options, backend });
    const byRotation = (r: number) => backend.finished.findIndex((c) => c.start <= r && r < c.end);
    expect(backend.finished[byRotation(2)]?.device).toBe(0);
    expect(backend.finished[byRotation(20)]?.device).toBe(1);
    expect(byRotation(20)).toBeLessThan(byRotation(2));
    expect(Array.from(new Set(split.indices))).toEqual([2]);
    expect(Array.from(new Set(split.scores.data))).toEqual([1]);
    const one = await matchTemplate({ ...job, device: 1 }, { ...options, backend: new TableBackend(table, 0) });
    expect(sameBits(split.indices, one.indices)).toBe(true);
    expect(sameBits(split.stats.perRotationMax, one.stats.perRotationMax)).toBe(true);
  });

  it("'gpu:all' runs one worker per listed GPU; progress counts both devices' rotations together", async () => {
    const backend = new TableBackend(table, 20);
    const seen: Array<{ done: number; total: number; device: string }> = [];
    const all = await matchTemplate({ ...job, device: 'gpu:all' }, {
      ...options, backend, onProgress: (p) => seen.push({ done: p.done, total: p.total, device: p.device }),
    });
    expect(all.devices.map((d) => d.index)).toEqual([0, 1]);
    expect(new Set(backend.finished.map((c) => c.device))).toEqual(new Set([0, 1]));
    expect(all.parameters.device).toBe('gpu:all');
    // One report per call (8 calls of ≤ 4 rotations), rising to all 30 rotations of both devices.
    expect(seen.map((p) => p.done)).toEqual(backend.finished.map((_c, k) => backend.finished.slice(0, k + 1).reduce((n, c) => n + c.end - c.start, 0)));
    expect(seen.at(-1)).toEqual({ done: 30, total: 30, device: 'table 0 + table 1' });
  });

  it("one device's error fails the run with that error and cancels the other", async () => {
    const backend = new TableBackend(table, 300, 8);
    await expect(matchTemplate({ ...job, device: [0, 1] }, { ...options, backend }))
      .rejects.toMatchObject({ code: 'ERR_TME_DEVICE', message: 'device 1 was lost' });
    expect(backend.cancelledCalls).toBe(1);
  });
});
