import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatRotationTable } from '@tme/engine';
import { createVolume, writeMrc, type Zyx } from '@tme/formats';
import { falseAlarmThreshold, parseOrientationsTsv } from '@tme/peaks';
import { relionEulerToMatrix } from '@tme/rotations';
import { parseDistance, runPeaks, type PeaksCliOptions } from '../src/commands/peaks';
import { exitCodeFor, formatError } from '../src/format-error';

/** Runs the command's action with options as commander hands them over (commander 15 is ESM-only under jest). */
async function tme(job: string, options: PeaksCliOptions): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    await runPeaks(job, options);
    return { code: 0, out, err: '' };
  } catch (e) {
    return { code: exitCodeFor(e), out, err: formatError(e, false) };
  } finally {
    spy.mockRestore();
  }
}

const SHAPE: Zyx = [20, 24, 28];
const ROTATIONS = 12;
const PLANTED: Array<[Zyx, number]> = [[[6, 8, 9], 3], [[12, 15, 18], 7], [[14, 7, 20], 11]];

/** A job folder as tme match writes it: noise best-score map (max of R N(0,1)), three planted peaks. */
function writeJobDir(dir: string): { mean: number; std: number } {
  const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
  let a = 12345;
  const u = (): number => { a = (a * 1103515245 + 12345) % 2147483648; return (a + 0.5) / 2147483648; };
  const { sqrt, log, cos, PI } = Math;
  const scores = new Float32Array(n);
  const indices = new Float32Array(n);
  let sum = 0, sumSq = 0;
  for (let i = 0; i < n; i++) {
    let best = -Infinity, arg = 0;
    for (let r = 0; r < ROTATIONS; r++) {
      const s = sqrt(-2 * log(u())) * cos(2 * PI * u());
      sum += s; sumSq += s * s;
      if (s > best) { best = s; arg = r; }
    }
    scores[i] = best; indices[i] = arg;
  }
  for (const [[z, y, x], r] of PLANTED) { const i = (z * SHAPE[1] + y) * SHAPE[2] + x; scores[i] = 9; indices[i] = r; }
  writeMrc(path.join(dir, 'scores.mrc'), createVolume(scores, SHAPE, 10));
  writeMrc(path.join(dir, 'rotations.mrc'), createVolume(indices, SHAPE, 10));
  const table = new Float64Array(9 * ROTATIONS);
  for (let r = 0; r < ROTATIONS; r++) table.set(relionEulerToMatrix(30 * r, 40, -10 * r), 9 * r);
  fs.writeFileSync(path.join(dir, 'angles.tsv'), formatRotationTable(table));
  const count = n * ROTATIONS;
  const mean = sum / count;
  const std = sqrt(sumSq / count - mean * mean);
  fs.writeFileSync(path.join(dir, 'job.json'), JSON.stringify({
    format: 'tme-job/1', parameters: { templateShape: [8, 8, 8], voxelSize: [10, 10, 10], rotationCount: ROTATIONS },
    statistics: { mean, std, count, voxelCount: n, rotationCount: ROTATIONS, perRotationMax: [], scope: 'core' },
  }));
  return { mean, std };
}

describe('tme peaks', () => {
  let dir: string;
  let job: string;
  let stats: { mean: number; std: number };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-peaks-cli-'));
    job = path.join(dir, 'job');
    fs.mkdirSync(job);
    stats = writeJobDir(job);
  });
  afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('defaults to 1 false alarm, says why, and writes the 8-column TSV, details and report', async () => {
    const out = path.join(dir, 'picks.tsv');
    const r = await tme(job, { output: out, minDistance: '3' });
    expect(r.err).toBe('');
    // default edge 0: the whole map is the calling region
    const region = 20 * 24 * 28;
    const want = falseAlarmThreshold({ ...stats, rotations: ROTATIONS, voxels: region }, 1, region);
    expect(r.out).toMatch(/\(false-alarm\): default: no threshold given and search statistics exist/);
    expect(r.out).toMatch(/expected false positives at this threshold: 1 over 13440 voxels/);
    expect(r.out).not.toMatch(/dropped/); // no --edge typed: nothing to report
    expect(r.out).toContain(`threshold ${Number(want.toPrecision(6))}`);
    const text = fs.readFileSync(out, 'utf8');
    expect(text.split('\n')[0]).toBe('x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail');
    const rows = parseOrientationsTsv(text);
    expect(rows.slice(0, 3).map((p) => p.position).sort()).toEqual(PLANTED.map((p) => p[0]).sort());
    for (const row of rows) {
      expect(row.score).toBeGreaterThanOrEqual(want);
      expect(text.split('\n')[1]!.split('\t')).toHaveLength(8);
    }
    const details = fs.readFileSync(path.join(dir, 'picks.details.tsv'), 'utf8').split('\n');
    expect(details).toHaveLength(rows.length + 2);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'picks.report.json'), 'utf8'));
    expect(report.threshold.kind).toBe('false-alarm');
    expect(report.threshold.regionVoxels).toBe(region);
    expect(report.histogram.counts.reduce((s: number, c: number) => s + c, 0)).toBe(20 * 24 * 28);
  });

  it('uses the per-rotation statistics job.json records: each rotation\'s own tail', async () => {
    // Rotation 0 is three times as wide as the others: a pooled σ would put the cut-off too low.
    const wide = path.join(dir, 'wide');
    fs.mkdirSync(wide);
    writeJobDir(wide);
    const record = JSON.parse(fs.readFileSync(path.join(wide, 'job.json'), 'utf8'));
    const perRotationMean = new Array(ROTATIONS).fill(0);
    const perRotationStd = Array.from({ length: ROTATIONS }, (_, r) => (r === 0 ? 3 : 1));
    record.statistics = { ...record.statistics, mean: 0, std: Math.sqrt((9 + 11) / 12), perRotationMean, perRotationStd };
    fs.writeFileSync(path.join(wide, 'job.json'), JSON.stringify(record));
    const out = path.join(dir, 'wide.tsv');
    const r = await tme(wide, { output: out, minDistance: '3' });
    expect(r.err).toBe('');
    const region = 20 * 24 * 28;
    const want = falseAlarmThreshold({ mean: 0, std: 1, rotations: ROTATIONS, voxels: region, perRotation: { mean: perRotationMean, std: perRotationStd } }, 1, region);
    const pooled = falseAlarmThreshold({ mean: 0, std: Math.sqrt(20 / 12), rotations: ROTATIONS, voxels: region }, 1, region);
    expect(want).toBeGreaterThan(pooled + 1);
    expect(r.out).toContain(`threshold ${Number(want.toPrecision(6))} (false-alarm)`);
    expect(r.out).toMatch(/Σ over 12 rotations of each one's Gaussian tail/);
  });

  it('with --edge, says how many candidates above the threshold the margin dropped', async () => {
    const out = path.join(dir, 'edge.tsv');
    // Edge 7 on (20, 24, 28): z 7..12 called, so the planted peaks at z 6 and z 14 fall in the margin.
    const r = await tme(job, { output: out, edge: '7', minScore: '8.5', minDistance: '3' });
    expect(r.err).toBe('');
    expect(r.out).toContain('tme peaks: edge 7 voxels dropped 2 candidates above the threshold\n');
    expect(r.out).toMatch(/over 840 voxels/); // (20 − 14)·(24 − 14)·(28 − 14)
    expect(parseOrientationsTsv(fs.readFileSync(out, 'utf8')).map((p) => p.position)).toEqual([[12, 15, 18]]);
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'edge.report.json'), 'utf8'));
    expect(report.edgeDropped).toBe(2);
  });

  it('takes distances in Å, thresholds by z-score, and refuses to overwrite without --force', async () => {
    const out = path.join(dir, 'z.tsv');
    const r = await tme(job, { output: out, minDistance: '30A', zScore: '4', edge: '0' });
    expect(r.err).toBe('');
    expect(r.out).toMatch(/min distance 3 voxels/);
    expect(r.out).toMatch(/\(z-score\)/);
    const again = await tme(job, { output: out, zScore: '4' });
    expect(again.code).toBe(1);
    expect(again.err).toBe(`tme: ${out}: exists (use --force to replace it)`);
    expect((await tme(job, { output: out, zScore: '4', force: true })).code).toBe(0);
  });

  it('restricts picks and the search space to a mask', async () => {
    const mask = new Float32Array(SHAPE[0] * SHAPE[1] * SHAPE[2]);
    for (let z = 0; z < 10; z++) mask.fill(1, z * SHAPE[1] * SHAPE[2], (z + 1) * SHAPE[1] * SHAPE[2]);
    const maskFile = path.join(dir, 'mask.mrc');
    writeMrc(maskFile, createVolume(mask, SHAPE, 10));
    const out = path.join(dir, 'masked.tsv');
    const r = await tme(job, { output: out, mask: maskFile, edge: '0', minDistance: '3' });
    expect(r.err).toBe('');
    expect(r.out).toMatch(/over 6720 voxels/);
    const rows = parseOrientationsTsv(fs.readFileSync(out, 'utf8'));
    expect(rows.map((p) => p.position)).toContainEqual([6, 8, 9]);
    for (const p of rows) expect(p.position[0]).toBeLessThan(10);
    const bad = path.join(dir, 'bad-mask.mrc');
    writeMrc(bad, createVolume(new Float32Array(8), [2, 2, 2], 10));
    expect((await tme(job, { output: path.join(dir, 'b.tsv'), mask: bad })).err).toMatch(/bad-mask.mrc: mask shape \(z, y, x\) = \(2, 2, 2\) differs/);
  });

  it('reports usage errors with exit 2, and --refine on a job without its inputs as a format error', async () => {
    const both = await tme(job, { output: path.join(dir, 'x.tsv'), minScore: '1', falseAlarms: '2' });
    expect(both.code).toBe(2);
    expect(both.err).toBe('tme: Expected at most one for --min-score/--false-alarms/--z-score but received "--min-score and --false-alarms" of type string');
    expect((await tme(job, { output: path.join(dir, 'x.tsv'), number: '0' })).code).toBe(2);
    expect((await tme(job, { output: path.join(dir, 'x.tsv'), minDistance: '3 nm' })).code).toBe(2);
    const refine = await tme(job, { output: path.join(dir, 'x.tsv'), refine: true });
    expect(refine.code).toBe(1);
    expect(refine.err).toMatch(/job.json does not name its target and template/);
    expect(fs.existsSync(path.join(dir, 'x.tsv'))).toBe(false);
    expect((await tme(path.join(dir, 'nope'), { output: path.join(dir, 'y.tsv') })).err).toMatch(/no such job folder/);
  });

  it('parses distances', async () => {
    expect(parseDistance('12')).toEqual({ voxels: 12 });
    expect(parseDistance('150A')).toEqual({ angstrom: 150 });
    expect(parseDistance('150 Å')).toEqual({ angstrom: 150 });
    expect(parseDistance('7.5Å')).toEqual({ angstrom: 7.5 });
    expect(() => parseDistance('-3')).toThrow(/--min-distance/);
  });
});
