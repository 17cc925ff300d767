/**
 * Several templates in one pass through the real binary: `tme run --template A --template B` on a synthetic tomogram
 * with A's particles in one half and B's in the other. Its maps equal two `tme match` runs merged by max (scores to
 * 1e-5, the same winning template and rotation), each template's picks land on its own particles, the template-index
 * map and job.json say which template won, and `tme peaks --template-index` picks one template's particles.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume, readMrc, type Volume } from '@tme/formats';
import { generateMixedTomogram } from '@tme/example';
import { blobTemplate, runTme, tempDir, writeVolume } from './helpers';

jest.setTimeout(600_000);

let dir: string;
beforeAll(() => { dir = tempDir('several-templates'); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** A template unlike blobTemplate: a bent rod with a knob, on a larger box. */
function rodTemplate(n: number, voxel = 10): Volume {
  const data = new Float32Array(n * n * n);
  const c = Math.floor(n / 2);
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const along = z - c;
    const bend = 0.08 * along * along;
    const rod = Math.abs(along) <= n / 3 ? Math.exp(-((y - c) ** 2 + (x - c - bend) ** 2) / 2) : 0;
    const knob = 0.8 * Math.exp(-((z - c - 2) ** 2 + (y - c - 3) ** 2 + (x - c) ** 2) / 2);
    data[(z * n + y) * n + x] = rod + knob;
  }
  return createVolume(data, [n, n, n], [voxel, voxel, voxel], [0, 0, 0]);
}

/** Picks of a pyTME orientations TSV: x, y, z and detail. */
function readPicks(file: string): Array<{ x: number; y: number; z: number; detail: number }> {
  return fs.readFileSync(file, 'utf8').trim().split('\n').slice(1).map((line) => {
    const c = line.split('\t').map(Number);
    return { x: c[0] as number, y: c[1] as number, z: c[2] as number, detail: c[7] as number };
  });
}

test('two templates in one pass: the maps of two runs merged by max, and each template picks its own particles', async () => {
  const a = blobTemplate(12);
  const b = rodTemplate(14);
  const made = generateMixedTomogram([a, b], { shape: [36, 40, 84], particles: 3, snr: 0.5, tiltRange: null, seed: 7 });
  const files = {
    target: writeVolume(path.join(dir, 'tomogram.mrc'), made.tomogram),
    a: writeVolume(path.join(dir, 'a.mrc'), a),
    b: writeVolume(path.join(dir, 'b.mrc'), b),
  };
  const common = ['--target', files.target, '--angular-step', '20', '--device', 'cpu'];
  const both = path.join(dir, 'both');
  const run = await runTme(['run', ...common, '--template', files.a, '--template', files.b, '--mask-radius', '50', '--mask-radius', '60',
    '-o', both, '--formats', 'tsv,relion', '--quiet']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  const separate = await Promise.all([[files.a, '50', 'only-a'], [files.b, '60', 'only-b']].map(async ([t, r, name]) => {
    const out = path.join(dir, name as string);
    const res = await runTme(['match', ...common, '--template', t as string, '--mask-radius', r as string, '-o', out, '--quiet']);
    expect(res.code).toBe(0);
    return { scores: readMrc(path.join(out, 'scores.mrc')).data, rotations: readMrc(path.join(out, 'rotations.mrc')).data };
  }));
  const [ra, rb] = separate as [{ scores: Float32Array; rotations: Float32Array }, { scores: Float32Array; rotations: Float32Array }];
  const scores = readMrc(path.join(both, 'scores.mrc')).data;
  const rotations = readMrc(path.join(both, 'rotations.mrc')).data;
  const templates = readMrc(path.join(both, 'templates.mrc')).data;
  const job = JSON.parse(fs.readFileSync(path.join(both, 'job.json'), 'utf8')) as {
    parameters: { templates: Array<{ rotationStart: number; rotationCount: number }> }; inputs: { templates: Array<{ template: string }> };
    search: { moreTemplates: Array<{ template: string; maskRadius: number }> }; templateIndexMap: string;
  };
  const nA = job.parameters.templates[0]?.rotationCount as number;
  expect(job.parameters.templates.map((t) => t.rotationStart)).toEqual([0, nA]);
  expect(job.inputs.templates.map((t) => path.basename(t.template))).toEqual(['a.mrc', 'b.mrc']);
  expect(job.search.moreTemplates).toEqual([{ template: files.b, maskRadius: 60, symmetry: 'C1' }]);
  expect(job.templateIndexMap).toBe('templates.mrc');

  let worst = 0;
  let same = 0;
  for (let i = 0; i < scores.length; i++) {
    const sa = ra.scores[i] as number;
    const sb = rb.scores[i] as number;
    worst = Math.max(worst, Math.abs((scores[i] as number) - Math.max(sa, sb)));
    const winner = sb > sa ? 1 : 0;
    const rotation = winner === 1 ? (rb.rotations[i] as number) + nA : (ra.rotations[i] as number);
    if (templates[i] === winner && rotations[i] === rotation) same++;
    else expect(Math.abs(sa - sb)).toBeLessThan(1e-5);
  }
  expect(worst).toBeLessThan(1e-5);
  expect(same / scores.length).toBeGreaterThan(0.999);

  // Each true particle is picked (within 2 voxels) with its own template as detail.
  const picks = readPicks(path.join(both, 'picks.tsv'));
  made.truth.forEach((particles, k) => {
    for (const t of particles) {
      const near = picks.filter((p) => Math.hypot(p.x - t.position[2], p.y - t.position[1], p.z - t.position[0]) <= 2);
      expect(near.map((p) => p.detail)).toEqual([k]);
    }
  });
  // RELION's particles carry the template as rlnClassNumber (detail + 1), in the picks' order, and the subtomogram box
  // fits the larger template (an even fast size ≥ 1.5 × 14).
  const star = fs.readFileSync(path.join(both, 'relion', 'particles.star'), 'utf8').split('data_particles')[1] as string;
  const column = Number(/_rlnClassNumber #(\d+)/.exec(star)?.[1]) - 1;
  const rows = star.split('\n').filter((l) => l.startsWith('Subtomograms/')).map((l) => l.trim().split(/\s+/));
  expect(rows.map((r) => Number(r[column]))).toEqual(picks.map((p) => p.detail + 1));
  expect(Number(/_rlnImageSize[^\n]*\n(?:_[^\n]*\n)*\S+\s+\S+\s+\S+\s+(\d+)/.exec(fs.readFileSync(path.join(both, 'relion', 'particles.star'), 'utf8'))?.[1])).toBeGreaterThanOrEqual(21);

  // RELION itself separates the templates' particles by that column.
  if (spawnSync('which', ['relion_star_handler']).status === 0) {
    const r = spawnSync('relion_star_handler', ['--i', 'particles.star', '--o', 'class2.star', '--select', 'rlnClassNumber', '--minval', '2', '--maxval', '2'],
      { cwd: path.join(both, 'relion'), encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    const selected = fs.readFileSync(path.join(both, 'relion', 'class2.star'), 'utf8').split('\n').filter((l) => l.startsWith('Subtomograms/'));
    expect(selected).toHaveLength(picks.filter((p) => p.detail === 1).length);
  }

  // Per template: only B's voxels are called, and B's particles are all found.
  const onlyB = path.join(dir, 'b-picks.tsv');
  const peaks = await runTme(['peaks', both, '-o', onlyB, '--template-index', '1']);
  expect(peaks.code).toBe(0);
  const bPicks = readPicks(onlyB);
  expect(bPicks.every((p) => p.detail === 1)).toBe(true);
  for (const t of made.truth[1] ?? []) {
    expect(bPicks.some((p) => Math.hypot(p.x - t.position[2], p.y - t.position[1], p.z - t.position[0]) <= 2)).toBe(true);
  }
});

test('per-template flags must match --template by position, in one line naming the flag', async () => {
  const a = writeVolume(path.join(dir, 'ta.mrc'), blobTemplate(12));
  const target = writeVolume(path.join(dir, 't.mrc'), createVolume(new Float32Array(24 * 24 * 24).map((_, i) => Math.sin(i)), [24, 24, 24], [10, 10, 10], [0, 0, 0]));
  const base = ['match', '--target', target, '--template', a, '--template', a, '--angular-step', '30', '-o', path.join(dir, 'x')];
  const masks = await runTme([...base, '--template-mask', a]);
  expect(masks.code).not.toBe(0);
  expect(masks.stderr.trim().split('\n')).toHaveLength(1);
  expect(masks.stderr).toMatch(/Expected one per --template \(2\) for --template-mask but received/);
  const symmetry = await runTme([...base, '--symmetry', 'C1', '--symmetry', 'C2', '--symmetry', 'C3']);
  expect(symmetry.stderr).toMatch(/for --symmetry but received "?3 values/);
  const shard = await runTme([...base, '--shard', '0/2']);
  expect(shard.stderr).toMatch(/no shard with several templates .* for --shard/);
  const background = await runTme([...base, '--background', 'rotation-stats']);
  expect(background.stderr).toMatch(/for --background/);
  const slurm = await runTme(['slurm', '--shards', '2', ...base.slice(1)]);
  expect(slurm.code).not.toBe(0);
  expect(slurm.stderr).toMatch(/^tme: Expected one template .* for --template but received "2 templates"/);
});
