// Priors per position: the field of nearest priors, the grouping of a tile's rotations, and the search under priors
// against searches without them (per voxel the best over exactly its prior's cone).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Zyx } from '@tme/formats';
import { sampleRotations } from '@tme/rotations';
import { listDevices } from '../src/devices';
import { estimateJob } from '../src/estimate';
import { matchTemplate } from '../src/match';
import { nativeAddonBuilt } from '../src/native-backend';
import { checkPriors, priorConeAt, priorField, rotatedAxis, rotationGroups, withinCone, type PositionPriors } from '../src/priors';
import { blobTemplate, noiseVolume } from './helpers';

const built = nativeAddonBuilt();
const describeNative = built ? describe : describe.skip;

function priorsOf(list: Array<{ at: Zyx; dir: Zyx }>, coneAngle: number, radius: number, axis: PositionPriors['axis'] = 'z') {
  return checkPriors({
    positions: Float64Array.from(list.flatMap((p) => p.at)), directions: Float64Array.from(list.flatMap((p) => p.dir)), coneAngle, radius, axis,
  });
}

test('the field gives each voxel its nearest prior within the radius (in Å, per-axis voxel sizes), else −1', () => {
  const shape: Zyx = [8, 10, 12];
  const voxelSize: Zyx = [2, 1, 1];
  const priors = priorsOf([{ at: [2, 3, 3], dir: [1, 0, 0] }, { at: [5, 3, 8], dir: [0, 1, 0] }], 20, 4);
  const field = priorField(priors, shape, voxelSize);
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < shape[1]; y++) {
      for (let x = 0; x < shape[2]; x++) {
        const d = [[2, 3, 3], [5, 3, 8]].map((c) => Math.hypot((z - c[0]!) * 2, y - c[1]!, x - c[2]!));
        const expected = Math.min(...d) > 4 ? -1 : d[0]! <= d[1]! ? 0 : 1;
        expect(field[(z * shape[1] + y) * shape[2] + x]).toBe(expected);
        expect(priorConeAt(priors, [z, y, x], voxelSize)?.index ?? -1).toBe(expected);
      }
    }
  }
});

test('the rotated axis is the matrix column of the chosen template axis, in (z, y, x)', () => {
  const set = sampleRotations({ angularStep: 30, symmetry: 'C1', measure: false });
  for (let r = 0; r < set.count; r += 17) {
    const m = set.matrices.subarray(9 * r, 9 * r + 9);
    expect(rotatedAxis(set.matrices, r, 'z')).toEqual([m[8], m[5], m[2]]);
    expect(rotatedAxis(set.matrices, r, 'x')).toEqual([m[6], m[3], m[0]]);
  }
});

test('a tile\'s groups hold every rotation some present prior allows, each once, with exactly the priors that allow it', () => {
  const set = sampleRotations({ angularStep: 20, symmetry: 'C1', measure: false });
  const priors = priorsOf([
    { at: [0, 0, 0], dir: [1, 0, 0] }, { at: [0, 0, 5], dir: [0.9, 0.3, 0] }, { at: [0, 5, 0], dir: [0, 0, 1] },
  ], 30, 3, 'y');
  const groups = rotationGroups(priors, [0, 1, 2], set.matrices, 0, set.count);
  const seen = new Int32Array(set.count);
  for (const g of groups) {
    for (const r of g.rotations) {
      seen[r] = (seen[r] as number) + 1;
      for (let i = 0; i < 3; i++) expect(g.member[i] === 1).toBe(withinCone(priors, i, set.matrices, r));
    }
  }
  let allowed = 0;
  for (let r = 0; r < set.count; r++) {
    const any = [0, 1, 2].some((i) => withinCone(priors, i, set.matrices, r));
    expect(seen[r]).toBe(any ? 1 : 0);
    if (any) allowed++;
  }
  // Three 30° cones (two of them overlapping) hold a small part of all rotations.
  expect(allowed).toBeGreaterThan(0);
  expect(allowed).toBeLessThan(0.25 * set.count);
  // Only the priors present take part: with prior 2 alone its cone's rotations form one group.
  const alone = rotationGroups(priors, [2], set.matrices, 0, set.count);
  expect(alone).toHaveLength(1);
});

test('bad priors are refused naming the option', () => {
  expect(() => checkPriors({ positions: new Float64Array([1, 2, 3]), directions: new Float64Array([0, 0, 0]), coneAngle: 10, radius: 5 })).toThrow(/direction/);
  expect(() => checkPriors({ positions: new Float64Array([1, 2, 3]), directions: new Float64Array([0, 0, 1]), coneAngle: 0, radius: 5 })).toThrow(/coneAngle/);
  expect(() => checkPriors({ positions: new Float64Array([1, 2, 3]), directions: new Float64Array([0, 0, 1]), coneAngle: 10, radius: NaN })).toThrow(/radius/);
});

describeNative('the search under priors (native CPU path)', () => {
  const template = blobTemplate(8);
  const target = noiseVolume([20, 24, 24], 11);
  const set = sampleRotations({ angularStep: 30, symmetry: 'C1', measure: false });
  const priors = priorsOf([{ at: [6, 8, 8], dir: [1, 0.2, 0] }, { at: [12, 16, 14], dir: [0, 0.3, 1] }], 35, 9, 'z');
  const raw: PositionPriors = { positions: priors.positions, directions: priors.directions, coneAngle: priors.coneAngle, radius: priors.radius, axis: priors.axis };
  const job = { target, template, rotations: set.matrices, device: 'cpu' as const, threads: 1 };

  test('each voxel near a prior has the best score over its cone alone; voxels near none are not searched', async () => {
    const field = priorField(priors, target.shape, target.voxelSize);
    const under = await matchTemplate({ ...job, priors: raw }, { batchRotations: 7 });
    const counts = under.priors!;
    expect(counts.rotationsWithout).toBe(set.count);
    expect(counts.rotationsMatched).toBeLessThan(0.5 * set.count);
    for (let q = 0; q < 2; q++) {
      // The unrestricted search over prior q's cone alone, its indices mapped back to the whole set.
      const cone: number[] = [];
      for (let r = 0; r < set.count; r++) if (withinCone(priors, q, set.matrices, r)) cone.push(r);
      const sub = new Float64Array(9 * cone.length);
      cone.forEach((r, i) => sub.set(set.matrices.subarray(9 * r, 9 * r + 9), 9 * i));
      const alone = await matchTemplate({ ...job, rotations: sub });
      let owned = 0;
      for (let v = 0; v < field.length; v++) {
        if (field[v] !== q) continue;
        owned++;
        expect(Math.abs((under.scores.data[v] as number) - (alone.scores.data[v] as number))).toBeLessThan(1e-5);
        expect(under.indices[v]).toBe(cone[alone.indices[v] as number]);
      }
      expect(owned).toBeGreaterThan(100);
    }
    for (let v = 0; v < field.length; v++) {
      if (field[v] === -1) {
        expect(under.scores.data[v]).toBe(0);
        expect(under.indices[v]).toBe(-1);
      } else {
        // Every voxel's rotation turns the template's z axis into its prior's cone.
        expect(withinCone(priors, field[v] as number, set.matrices, under.indices[v] as number)).toBe(true);
      }
    }
  }, 60_000);

  test('tiles and batches do not change the maps under priors', async () => {
    const whole = await matchTemplate({ ...job, priors: raw });
    const tiled = await matchTemplate({ ...job, priors: raw, tile: [14, 16, 16] }, { batchRotations: 3 });
    expect(tiled.tilePlan.tiles.length).toBeGreaterThan(1);
    let worst = 0;
    for (let v = 0; v < whole.scores.data.length; v++) worst = Math.max(worst, Math.abs((whole.scores.data[v] as number) - (tiled.scores.data[v] as number)));
    expect(worst).toBeLessThan(1e-5);
    expect(Array.from(tiled.indices)).toEqual(Array.from(whole.indices));
  }, 60_000);

  test('tme estimate counts the rotations a search under priors runs, tile by tile', async () => {
    const tile: [number, number, number] = [14, 16, 16];
    const run = await matchTemplate({ ...job, priors: raw, tile });
    const estimate = await estimateJob({ ...job, priors: raw, tile });
    const cpu = estimate.devices.find((d) => d.device.index === 'cpu')!;
    expect(cpu.tilePlan!.tiles.length).toBe(run.tilePlan.tiles.length);
    expect(cpu.rotationsToRun).toBe(run.priors!.rotationsMatched);
    expect(cpu.rotationsToRun).toBeLessThan(run.priors!.rotationsWithout);
    // Without priors every tile runs every rotation of the shard.
    const shard = await estimateJob({ ...job, tile, rotationRange: [5, 40] });
    const plain = shard.devices.find((d) => d.device.index === 'cpu')!;
    expect(plain.rotationsToRun).toBe(35 * plain.tilePlan!.tiles.length);
  }, 60_000);

  test('a search under priors cancelled and resumed from its checkpoint gives the same maps', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-priors-resume-'));
    try {
      const opts = { ...job, priors: raw, tile: [14, 16, 16] as Zyx };
      const whole = await matchTemplate(opts, { batchRotations: 4 });
      const controller = new AbortController();
      await expect(matchTemplate(opts, {
        batchRotations: 4, signal: controller.signal, checkpoint: { dir, intervalSeconds: 0 },
        onProgress: (p) => { if (p.done >= whole.priors!.rotationsMatched / 2) controller.abort(); },
      })).rejects.toMatchObject({ code: 'ERR_TME_CANCELLED' });
      const resumed = await matchTemplate(opts, { batchRotations: 3, checkpoint: { dir, resume: true, intervalSeconds: 0 } });
      expect(resumed.resumed).toBe(true);
      expect(Buffer.from(resumed.scores.data.buffer).equals(Buffer.from(whole.scores.data.buffer))).toBe(true);
      expect(Buffer.from(resumed.indices.buffer).equals(Buffer.from(whole.indices.buffer))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('a wider cone is the whole set: the maps equal the search without priors where the radius reaches', async () => {
    const plain = await matchTemplate(job);
    const wide = await matchTemplate({ ...job, priors: { ...raw, coneAngle: 180 } });
    const field = priorField(priors, target.shape, target.voxelSize);
    for (let v = 0; v < field.length; v++) {
      if (field[v] === -1) continue;
      expect(Math.abs((wide.scores.data[v] as number) - (plain.scores.data[v] as number))).toBeLessThan(1e-5);
      expect(wide.indices[v]).toBe(plain.indices[v]);
    }
  }, 60_000);

  // lavapipe where the machine has it (CI does): the Vulkan path takes the same rotation subsets as the CPU path.
  const lavapipe = built && listDevices().devices.some((d) => d.kind === 'cpu' && d.index !== 'cpu');
  (lavapipe ? test : test.skip)('the Vulkan path (lavapipe) gives the CPU path\'s maps under priors', async () => {
    const cpu = await matchTemplate({ ...job, priors: raw }, { batchRotations: 5 });
    const vk = await matchTemplate({ ...job, device: 'vulkan-cpu', priors: raw }, { batchRotations: 5 });
    let worst = 0;
    let scale = 0;
    for (let v = 0; v < cpu.scores.data.length; v++) {
      worst = Math.max(worst, Math.abs((cpu.scores.data[v] as number) - (vk.scores.data[v] as number)));
      scale = Math.max(scale, Math.abs(cpu.scores.data[v] as number));
    }
    expect(worst / scale).toBeLessThan(1e-4);
    let same = 0;
    for (let v = 0; v < cpu.indices.length; v++) if (cpu.indices[v] === vk.indices[v]) same++;
    expect(same).toBeGreaterThan(0.99 * cpu.indices.length);
    expect(vk.priors).toEqual(cpu.priors);
  }, 60_000);

  test('priors with a background option are refused', async () => {
    await expect(matchTemplate({ ...job, priors: raw, background: 'rotation-stats' })).rejects.toThrow(/background/);
  });
});
