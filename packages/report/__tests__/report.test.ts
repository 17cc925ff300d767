import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { isTmeError, readMrc, writeMrc } from '@tme/formats';
import { expectedFalsePositives, formatFloat32, type ScoreStatistics } from '@tme/peaks';
import { angleBetween, axisAngleToMatrix, matrixToPytmeEuler, multiply, relionEulerToMatrix } from '@tme/rotations';
import { createReport, plasma, readReportSource, renderReportHtml, type ReportData } from '../src';
import { makeJob, tempDir, type TestJob } from './helpers/job-folder';

let dir: string;
let job: TestJob;

beforeAll(() => {
  dir = tempDir('job');
  job = makeJob(dir);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The JSON the page carries, read back out of the HTML. */
function pageData(html: string): ReportData {
  const m = /<script type="application\/json" id="tme-report-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no data script in the page');
  return JSON.parse(m[1] as string) as ReportData;
}

describe('createReport on a job folder', () => {
  it('carries every pick of picks.tsv at its position with its RELION angles and score', () => {
    const { html, data } = createReport(dir);
    const rows = fs.readFileSync(path.join(dir, 'picks.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number));
    const fromPage = pageData(html);
    expect(fromPage.picks).toEqual(data.picks);
    expect(data.picks).toHaveLength(rows.length);
    expect(data.picks.length).toBeGreaterThanOrEqual(3);
    data.picks.forEach((p, k) => {
      const [x, y, z, , , , score] = rows[k] as number[];
      expect([p.x, p.y, p.z]).toEqual([x, y, z]);
      expect(formatFloat32(p.score)).toBe(formatFloat32(score as number));
      const pick = job.set.picks[k]!;
      // The page's angles are the details table's RELION angles, and mean the pick's rotation.
      expect(angleBetween(relionEulerToMatrix(p.rot, p.tilt, p.psi), pick.rotation)).toBeLessThan(1e-3);
    });
    // The three planted peaks are the three best picks, in height order.
    job.peaks.forEach((peak, k) => expect([data.picks[k]!.z, data.picks[k]!.y, data.picks[k]!.x]).toEqual(peak.position));
  });

  it('puts the threshold where the noise model expects one false positive, as the call did', () => {
    const { data } = createReport(dir);
    const h = data.histogram;
    expect(h.source).toBe('call');
    expect(h.threshold).toBeCloseTo(job.set.threshold.value, 10);
    expect(h.thresholdKind).toBe('false-alarm');
    expect(h.expectedFalsePositives).toBeCloseTo(1, 6);
    expect(h.counts.reduce((s, c) => s + c, 0)).toBe(24 * 40 * 48);
    // The curve is the model's count at each edge: decreasing, and 1 at the threshold (between its neighbours).
    const curve = h.falsePositiveCurve as Array<[number, number]>;
    expect(curve).toHaveLength(h.edges.length);
    for (let k = 1; k < curve.length; k++) expect(curve[k]![1]).toBeLessThanOrEqual(curve[k - 1]![1]);
    const k = curve.findIndex(([e]) => e > (h.threshold as number));
    expect(curve[k - 1]![1]).toBeGreaterThanOrEqual(1);
    expect(curve[k]![1]).toBeLessThanOrEqual(1);
    const stats: ScoreStatistics = { mean: 0, std: 0.02, rotations: data.angles.rotations, voxels: h.regionVoxels as number };
    expect(curve[k]![1]).toBeCloseTo(expectedFalsePositives(stats, curve[k]![0], h.regionVoxels as number), 6);
  });

  it('shows the job, its warnings (once each) and the sampling', () => {
    const { data } = createReport(dir);
    const rows = new Map(data.job);
    expect(rows.get('tme version')).toBe('9.9.9 (engine 0.1.0)');
    expect(rows.get('device')).toBe('CPU (test) (cpu)');
    expect(rows.get('search')).toMatch(/^1\.23 s \(prepare 0\.03 s, match 1\.20 s; 50 rotations\/s\)$/);
    expect(rows.get('after the search')).toBe('peaks 0.01 s, exports 0.01 s');
    expect(data.warnings).toEqual(['tomogram.mrc: voxel size 0 in the header, taken as 1 Å', 'a warning of the peak call']);
    expect(data.angles.rotations).toBe(job.rotations.length / 9);
    expect(data.angles.coveringSource).toBe('bound');
    expect(data.angles.covering).toBeLessThanOrEqual(60);
    // Directions are unit vectors' (lon, lat): every sampled one within the map.
    for (const [lon, lat] of data.angles.sampling) {
      expect(Math.abs(lon)).toBeLessThanOrEqual(180);
      expect(Math.abs(lat)).toBeLessThanOrEqual(90);
    }
  });

  it('is one file: no external script, style, image or link; the libraries inlined', () => {
    const { html } = createReport(dir);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link(?![^>]*href="data:)[^>]*>/i);
    expect(html).not.toMatch(/<img[^>]+src="(?!data:)/i);
    expect(html).not.toMatch(/url\(\s*['"]?https?:/i);
    expect(html).toMatch(/<script data-library="d3@7\.\d+\.\d+">/);
    expect(html).toMatch(/<script data-library="@observablehq\/plot@0\.6\.\d+">/);
    // No text of the data can end its script element early.
    const data = createReport(dir).data;
    const tricky = renderReportHtml({ ...data, title: '</script><script>alert(1)</script>' });
    expect(pageData(tricky).title).toBe('</script><script>alert(1)</script>');
  });

  it('says when the tomogram is gone and still shows the score map', () => {
    const moved = `${job.tomogramFile}.moved`;
    fs.renameSync(job.tomogramFile, moved);
    try {
      const { data } = createReport(dir);
      expect('missing' in data.tomogram && data.tomogram.missing).toMatch(/tomogram\.mrc is gone/);
      expect(data.scores.shape).toEqual([24, 40, 48]);
    } finally {
      fs.renameSync(moved, job.tomogramFile);
    }
    const { data } = createReport(dir);
    expect('preview' in data.tomogram).toBe(true);
  });

  it('scores the picks against a truth file: the matched pick, its distance and its angular error', () => {
    // Truth: the first two planted particles (one voxel off, rotations turned by 10° and 30°) and one far from any pick.
    const turn = (k: number, degrees: number): Float64Array => multiply(axisAngleToMatrix([0, 0, 1], degrees), job.set.picks[k]!.rotation);
    const rows = [
      [job.peaks[0]!.position, turn(0, 10), 1], [job.peaks[1]!.position, turn(1, 30), 0], [[3, 3, 44], turn(0, 0), 0],
    ] as const;
    const lines = ['x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail'];
    for (const [[z, y, x], r, dx] of rows) lines.push([x + dx, y, z, ...matrixToPytmeEuler(r), 1, 0].join('\t'));
    const truthFile = path.join(dir, 'truth.tsv');
    fs.writeFileSync(truthFile, `${lines.join('\n')}\n`);
    const { data } = createReport(dir, { truth: truthFile });
    const t = data.truth!;
    expect([t.truthCount, t.pickCount, t.matched]).toEqual([3, data.picks.length, 2]);
    expect(t.recall).toBeCloseTo(2 / 3, 10);
    expect(t.precision).toBeCloseTo(2 / data.picks.length, 10);
    expect(t.medianAngularError).toBeCloseTo(20, 1);
    expect(data.picks[0]!.truth).toEqual({ index: 0, distance: 1, angularError: 10 });
    expect(data.picks[1]!.truth).toEqual({ index: 1, distance: 0, angularError: 30 });
    expect(data.picks.slice(2).every((p) => p.truth === null)).toBe(true);
    expect(t.particles.map((p) => p.found)).toEqual([true, true, false]);
    // A tighter match distance loses the pick one voxel off.
    expect(createReport(dir, { truth: truthFile, truthDistance: 0.5 }).data.truth!.matched).toBe(1);
  });

  it('reads an orientations TSV without details (pyTME\'s own), and without a call report shows the map\'s own histogram', () => {
    const other = path.join(dir, 'other');
    fs.mkdirSync(other, { recursive: true });
    const tsv = path.join(other, 'pytme.tsv');
    fs.copyFileSync(path.join(dir, 'picks.tsv'), tsv);
    const { data } = createReport(dir, { picks: tsv });
    expect(data.picksFile).toBe(tsv);
    expect(data.histogram.source).toBe('scores');
    expect(data.histogram.threshold).toBeNull();
    expect(data.picks.map((p) => [p.x, p.y, p.z])).toEqual(createReport(dir).data.picks.map((p) => [p.x, p.y, p.z]));
    data.picks.forEach((p, k) => expect(angleBetween(relionEulerToMatrix(p.rot, p.tilt, p.psi), job.set.picks[k]!.rotation)).toBeLessThan(1e-3));
    expect(data.picks.every((p) => p.localSnr === null)).toBe(true);
  });

  it('shows and histograms the --background map the peaks were called on, with the call\'s noise model', () => {
    const other = tempDir('background');
    try {
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.mrc') || f.endsWith('.tsv') || f.endsWith('.json')) fs.copyFileSync(path.join(dir, f), path.join(other, f));
      // A normalised map: the scores doubled (its own scale), named in job.json and in the call's report.
      const scores = readMrc(path.join(other, 'scores.mrc'));
      const doubled = Float32Array.from(scores.data, (v) => 2 * v);
      writeMrc(path.join(other, 'scores-normalised.mrc'), { ...scores, data: doubled });
      const jobFile = path.join(other, 'job.json');
      const record = JSON.parse(fs.readFileSync(jobFile, 'utf8')) as Record<string, unknown>;
      record['background'] = { kind: 'rotation-stats', peakMap: 'scores-normalised.mrc', files: { normalised: 'scores-normalised.mrc' } };
      fs.writeFileSync(jobFile, JSON.stringify(record));
      const callFile = path.join(other, 'picks.report.json');
      const call = JSON.parse(fs.readFileSync(callFile, 'utf8')) as Record<string, unknown>;
      fs.writeFileSync(callFile, JSON.stringify({ ...call, job: other, scores: 'scores-normalised.mrc' }));
      const { data } = createReport(other);
      expect(data.scoresFile).toBe('scores-normalised.mrc');
      let max = -Infinity;
      for (const v of doubled) max = Math.max(max, v);
      expect(data.scores.window[1]).toBeCloseTo(max, 5);
      expect(new Map(data.job).get('background')).toBe('rotation-stats: peaks on scores-normalised.mrc');
      // Without the call's report, the page still follows the job: its background map is what tme peaks calls on.
      fs.rmSync(callFile);
      expect(createReport(other).data.scoresFile).toBe('scores-normalised.mrc');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('reads the maps and the tomogram a run of sections at a time: the same page and PNG at one section a read', () => {
    const other = tempDir('sections');
    try {
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.mrc') || f.endsWith('.tsv') || f.endsWith('.json')) fs.copyFileSync(path.join(dir, f), path.join(other, f));
      const section = 4 * 40 * 48;
      for (const withCall of [true, false]) {
        // Without the call's report the histogram is the score map's own, read with its rotation indices.
        if (!withCall) fs.rmSync(path.join(other, 'picks.report.json'));
        // The PNG (slow to encode) once: its slab is read in one go either way.
        const whole = createReport(other, withCall ? { png: {} } : {});
        expect(whole.data.histogram.source).toBe(withCall ? 'call' : 'scores');
        for (const maxReadBytes of [section, 3 * section, 2 * section + 1]) {
          const read = createReport(other, { ...(withCall && maxReadBytes === section ? { png: {} } : {}), maxReadBytes });
          expect(read.html).toBe(whole.html);
          if (read.png) expect(read.png.png.equals(whole.png!.png)).toBe(true);
        }
      }
      expect(() => createReport(other, { maxReadBytes: 0 })).toThrow(/maxReadBytes/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('refuses a folder that is not a finished job, and a missing picks file, naming the file', () => {
    const empty = tempDir('empty');
    try {
      expect(() => readReportSource(empty)).toThrow(expect.objectContaining({ code: 'ERR_TME_IO' }));
      let caught: unknown;
      try {
        readReportSource(dir, { picks: path.join(dir, 'nope.tsv') });
      } catch (err) {
        caught = err;
      }
      expect(isTmeError(caught, 'ERR_TME_IO')).toBe(true);
      expect((caught as Error & { file?: string }).file).toBe(path.join(dir, 'nope.tsv'));
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('the PNG of the slab views', () => {
  it('draws the tomogram and score slabs side by side with the picks the slab cuts, coloured by score', () => {
    const { png, data } = createReport(dir, { png: {} });
    const image = PNG.sync.read(png!.png);
    const [, ny, nx] = data.shape;
    const k = Math.ceil(384 / nx);
    expect([image.width, image.height]).toEqual([2 * nx * k + 8, ny * k]);
    // The busiest slab: no slice's sphere cuts (|z − pick z| < marker radius) hold more picks than the one drawn.
    const R = data.markerRadius;
    const cut = (z: number): number[] => data.picks.filter((p) => Math.abs(p.z - z) < R).map((p) => p.rank);
    expect(png!.drawn).toEqual(cut(png!.z));
    expect(png!.drawn.length).toBe(Math.max(...Array.from({ length: data.shape[0] }, (_, z) => cut(z).length)));
    expect(png!.drawn.length).toBe(2);
    expect(png!.drawn).toContain(0);
    // The best pick's ring, right of its centre, in the score view: plasma's top colour.
    const best = data.picks[0]!;
    const r = Math.sqrt(R ** 2 - (best.z - png!.z) ** 2) * k;
    const px = Math.round(nx * k + 8 + (best.x + 0.5) * k + r - 0.5);
    const py = Math.floor((best.y + 0.5) * k);
    const o = 4 * (py * image.width + px);
    expect([image.data[o], image.data[o + 1], image.data[o + 2]]).toEqual(plasma(1));
    // The score view is bright at the peak's centre and dark in the background.
    const at = (x: number, y: number): number => image.data[4 * (y * image.width + nx * k + 8 + x)]!;
    expect(at(Math.floor((best.x + 0.5) * k), py)).toBeGreaterThan(200);
    expect(at(2, 2)).toBeLessThan(120);
  });

  it('takes a given slab and refuses one outside the volume', () => {
    const { png } = createReport(dir, { png: { z: 8, thickness: 3 } });
    expect([png!.zFrom, png!.zTo]).toEqual([7, 9]);
    expect(png!.drawn).toEqual([1]);
    expect(() => createReport(dir, { png: { z: 24 } })).toThrow(/Expected integer in \[0, 23\] for z/);
  });
});
