import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, parseStar, readMrc, writeMrc, type TmeError } from '@tme/formats';
import { wrapDegrees } from '@tme/rotations';
import { extractSubtomogram, missingWedgeVolume } from '@tme/export';
import { runExport } from '../src/commands/export';
import { exitCodeFor, formatError } from '../src/format-error';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'packages', 'export', '__tests__', 'fixtures');

/**
 * Runs the command's action with options as commander hands them over (camelCase keys, defaults filled in).
 * commander 15 is ESM-only and jest 30 on Node 20 cannot load it, so the parse step itself is not exercised here.
 */
async function tme(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const [command, picks, ...rest] = args;
  expect(command).toBe('export');
  const options: Record<string, string | boolean> = { faceBoxes: 'pad', normalise: true, centreConvention: 'relion' };
  const given = new Set<string>(); // what commander's getOptionValueSource reports as 'cli'
  for (let i = 0; i < rest.length; i += 1) {
    const flag = rest[i]!;
    if (flag.startsWith('--no-')) {
      const key = flag.slice(5).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      options[key] = false;
      given.add(key);
      continue;
    }
    const key = flag === '-o' ? 'output' : flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    given.add(key);
    const next = rest[i + 1];
    if (next === undefined || (next.startsWith('-') && !/^-\d/.test(next))) options[key] = true;
    else { options[key] = next; i += 1; }
  }
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    await runExport(picks!, options as unknown as Parameters<typeof runExport>[1], (key) => (given.has(key) ? 'cli' : undefined));
    return { code: 0, out, err: '' };
  } catch (e) {
    return { code: exitCodeFor(e), out, err: formatError(e, false) };
  } finally {
    spy.mockRestore();
  }
}

function loop(file: string, block: string) {
  const star = parseStar(fs.readFileSync(file, 'utf8'));
  return star.blocks.find((b) => b.name === block)!.loops[0]!;
}

describe('tme export', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-export-cli-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('pyTME relion4 STAR → relion5: centred Å and RELION angles (180 − ex, ey, 180 − ez)', async () => {
    const out = path.join(dir, 'r5');
    const r = await tme('export', path.join(FIXTURES, 'peer128_flcs_a15.relion4.star'), '--format', 'relion5',
      '--tomo-size', '128,128,128', '--voxel-size', '10', '-o', out, '--tomograms-star');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/11 picks/);
    const p = loop(path.join(out, 'particles.star'), 'particles');
    const col = (l: string): string[] => p.rows.map((row) => row[p.labels.indexOf(l)]!);
    expect(col('rlnTomoName')[0]).toBe('peer128');
    expect(Number(col('rlnCenteredCoordinateXAngst')[0])).toBeCloseTo((87 - 64) * 10, 3);
    expect(Number(col('rlnCenteredCoordinateZAngst')[0])).toBeCloseTo((117 - 64) * 10, 3);
    // first row of pyTME: euler (−23.7166, 19.419806, 156.2834)
    expect(Math.abs(wrapDegrees(Number(col('rlnAngleRot')[0]) - (180 + 23.7166)))).toBeLessThan(1e-3);
    expect(Number(col('rlnAngleTilt')[0])).toBeCloseTo(19.419806, 4);
    expect(Math.abs(wrapDegrees(Number(col('rlnAnglePsi')[0]) - (180 - 156.2834)))).toBeLessThan(1e-3);
    const t = loop(path.join(out, 'tomograms.star'), 'global');
    expect(t.rows[0]![t.labels.indexOf('rlnTomoSizeX')]).toBe('128');
  });

  it('pyTME TSV and pyTME relion4 STAR give the same RELION 5 file', async () => {
    const a = path.join(dir, 'fromTsv');
    const b = path.join(dir, 'fromStar');
    const common = ['--format', 'relion5', '--tomo-size', '128,128,128', '--voxel-size', '10', '--tomo-name', 'peer128'];
    expect((await tme('export', path.join(FIXTURES, 'peer128_flcs_a15.orientations.tsv'), ...common, '-o', a)).code).toBe(0);
    expect((await tme('export', path.join(FIXTURES, 'peer128_flcs_a15.relion4.star'), ...common, '-o', b)).code).toBe(0);
    const ta = loop(path.join(a, 'particles.star'), 'particles');
    const tb = loop(path.join(b, 'particles.star'), 'particles');
    expect(ta.labels).toEqual(tb.labels);
    expect(ta.rows.slice(0, tb.rows.length)).toEqual(tb.rows); // the STAR has the first 11 of the TSV's 20 rows
  });

  it('--format tsv writes pyTME’s orientations TSV: a pyTME STAR comes back as the pyTME TSV', async () => {
    const out = path.join(dir, 'tsv');
    expect((await tme('export', path.join(FIXTURES, 'peer128_flcs_a15.relion4.star'), '--format', 'tsv', '-o', out)).code).toBe(0);
    const mine = fs.readFileSync(path.join(out, 'orientations.tsv'), 'utf8').trim().split('\n');
    const theirs = fs.readFileSync(path.join(FIXTURES, 'peer128_flcs_a15.orientations.tsv'), 'utf8').trim().split('\n');
    expect(mine[0]).toBe('x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail');
    for (let i = 1; i < mine.length; i += 1) {
      const m = mine[i]!.split('\t').map(Number);
      const t = theirs[i]!.split('\t').map(Number);
      expect(m.slice(0, 3)).toEqual(t.slice(0, 3));
      expect(m[6]).toBeCloseTo(t[6]!, 6);
      expect(m[7]).toBe(t[7]);
      if (t[4]! > 1e-3 && t[4]! < 179.999) { // away from gimbal lock the angles are unique
        for (const k of [3, 4, 5]) expect(Math.abs(wrapDegrees(m[k]! - t[k]!))).toBeLessThan(1e-3);
      }
    }
  });

  it('refuses a flag its format does not read, naming the formats that do (a flag is never accepted and ignored)', async () => {
    const tsv = path.join(FIXTURES, 'peer128_flcs_a15.orientations.tsv');
    const imod = await tme('export', tsv, '--format', 'imod', '--tomo-size', '128,128,128', '--voxel-size', '10', '--cs', '2.7', '-o', path.join(dir, 'a'));
    expect(imod.code).toBe(2);
    expect(imod.err.trim()).toBe('tme: --cs is not used by --format imod (it is for --format relion, --format relion5)');
    const dynamo = await tme('export', tsv, '--format', 'dynamo', '--face-boxes', 'pad', '-o', path.join(dir, 'b'));
    expect(dynamo.err.trim()).toBe('tme: --face-boxes is not used by --format dynamo (it is for --format relion)');
    // A STAR input reads the centre convention for its own coordinates, whatever the output.
    const star = await tme('export', path.join(FIXTURES, 'peer128_flcs_a15.relion4.star'), '--format', 'tsv', '--centre-convention', 'relion', '-o', path.join(dir, 'c'));
    expect(star.code).toBe(0);
    const tsvIn = await tme('export', tsv, '--format', 'tsv', '--centre-convention', 'relion', '-o', path.join(dir, 'd'));
    expect(tsvIn.err.trim()).toBe('tme: --centre-convention is not used by --format tsv (it is for --format relion5, a .star input)');
    expect(fs.existsSync(path.join(dir, 'a')) || fs.existsSync(path.join(dir, 'b')) || fs.existsSync(path.join(dir, 'd'))).toBe(false);
    const cs = await tme('export', tsv, '--format', 'relion5', '--tomo-size', '128,128,128', '--voxel-size', '10', '--cs', '', '-o', path.join(dir, 'e'));
    expect(cs.err.trim()).toBe('tme: Expected number ≥ 0 (mm) for --cs but received "" of type string');
  });

  it('pyTME relion5 STAR needs the tomogram geometry and says so', async () => {
    const r = await tme('export', path.join(FIXTURES, 'peer128_flcs_a15.relion5.star'), '--format', 'imod', '-o', path.join(dir, 'x'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^tme: .*relion5\.star: pyTME RELION-5 coordinates need the tomogram shape/);
  });

  describe('with a target tomogram', () => {
    let target: string;
    let star: string;
    beforeEach(() => {
      target = path.join(dir, 'tomo.mrc');
      const data = new Float32Array(48 * 56 * 64);
      for (let i = 0; i < data.length; i += 1) data[i] = Math.sin(i * 0.37) + (i % 7);
      writeMrc(target, createVolume(data, [48, 56, 64], 12));
      // pyTME relion4 layout: x y z voxels, pyTME angles, class, micrograph, score; the third pick is at the edge.
      star = path.join(dir, 'picks.star');
      fs.writeFileSync(star, ['# version 40001', '', 'data_particles', '', 'loop_', '_rlnCoordinateX', '_rlnCoordinateY',
        '_rlnCoordinateZ', '_rlnAngleRot', '_rlnAngleTilt', '_rlnAnglePsi', '_rlnClassNumber', '_rlnMicrographName', '_pytmeScore',
        '30\t28\t24\t10\t20\t30\t0\ttomo.mrc\t0.5', '20\t30\t20\t-40\t60\t100\t0\ttomo.mrc\t0.4', '2\t28\t24\t0\t0\t0\t0\ttomo.mrc\t0.3', ''].join('\n'));
    });

    it('relion: subtomograms (box from --diameter), wedge volume, STAR; edges padded and counted', async () => {
      const out = path.join(dir, 'rel');
      const r = await tme('export', star, '--format', 'relion', '--target', target, '--diameter', '240', '--tilt-range', '-60,60', '-o', out);
      expect(r.code).toBe(0);
      expect(r.out).toContain('3 picks (1 box crosses a face: outside filled with the mean of its voxels inside the tomogram (0 after normalisation), marked in tmeBoxOutsideFraction; 0 skipped)');
      const sub = readMrc(path.join(out, 'Subtomograms', 'tomo_000001.mrc'));
      expect(sub.shape).toEqual([30, 30, 30]); // 240 Å / 12 Å = 20 voxels → even fast ≥ 30
      expect(sub.voxelSize[2]).toBeCloseTo(12, 4);
      expect(readMrc(path.join(out, 'Subtomograms', 'tomo_wedge.mrc')).shape).toEqual([30, 30, 30]);
      const optics = loop(path.join(out, 'particles.star'), 'optics');
      expect(optics.rows[0]).toEqual(['1', 'opticsGroup1', '12.000000', '30', '3', '300', '2.7', '0.07']);
      const p = loop(path.join(out, 'particles.star'), 'particles');
      expect(p.rows.map((row) => row[0])).toEqual(['Subtomograms/tomo_000001.mrc', 'Subtomograms/tomo_000002.mrc', 'Subtomograms/tomo_000003.mrc']);
      expect(p.rows[0]![p.labels.indexOf('rlnCtfImage')]).toBe('Subtomograms/tomo_wedge.mrc');
      expect(p.rows[0]![p.labels.indexOf('rlnMicrographName')]).toBe(path.resolve(target)); // the real tomogram
      // The third box (x = 2, box 30: x −13…16) has 13 of its 30 columns outside: marked, and the outside is 0.
      expect(p.rows.map((row) => row[p.labels.indexOf('tmeBoxOutsideFraction')])).toEqual(['0.0000', '0.0000', '0.4333']);
      const edgeBox = readMrc(path.join(out, 'Subtomograms', 'tomo_000003.mrc')).data;
      expect(edgeBox[(15 * 30 + 15) * 30 + 0]).toBe(0);
      expect(edgeBox[(15 * 30 + 15) * 30 + 12]).toBe(0);
      expect(edgeBox[(15 * 30 + 15) * 30 + 13]).not.toBe(0);
    });

    it('a TSV in a job folder takes target, box, voxel size, tilt range, microscope, name and contrast from job.json; flags win', async () => {
      const jobDir = path.join(dir, 'job');
      fs.mkdirSync(jobDir);
      fs.writeFileSync(path.join(jobDir, 'job.json'), JSON.stringify({
        format: 'tme-job/1', parameters: { templateShape: [16, 16, 16], voxelSize: [12, 12, 12], targetShape: [48, 56, 64] },
        inputs: {
          target, tiltRange: [-50, 55], tomoName: 'lamella', filters: { invertContrast: true, voltage: '200', tiltAxis: 'x' },
          microscope: { voltage: 200, sphericalAberration: 2.7, amplitudeContrast: 0.1, source: { voltage: 'flag', sphericalAberration: 'default', amplitudeContrast: 'file' } },
        },
      }));
      const tsv = path.join(jobDir, 'picks.tsv');
      fs.writeFileSync(tsv, 'x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail\n30\t28\t24\t10\t20\t30\t0.5\t0\n');
      const out = path.join(dir, 'fromJob');
      const r = await tme('export', tsv, '--format', 'relion', '-o', out);
      expect(r.err).toBe('');
      const optics = loop(path.join(out, 'particles.star'), 'optics');
      // box: defaultBoxSize(16) as tme run chooses it; voltage and amplitude contrast from the job
      expect(optics.rows[0]).toEqual(['1', 'opticsGroup1', '12.000000', '24', '3', '200', '2.7', '0.1']);
      const p = loop(path.join(out, 'particles.star'), 'particles');
      expect(p.rows[0]![p.labels.indexOf('rlnTomoName')]).toBe('lamella');
      expect(p.rows[0]![p.labels.indexOf('rlnMicrographName')]).toBe(target);
      expect(p.rows[0]![p.labels.indexOf('rlnCtfImage')]).toBe('Subtomograms/lamella_wedge.mrc');
      const tomo = readMrc(target);
      const inverted = extractSubtomogram(tomo, [24, 28, 30], { box: 24, invert: true });
      if (inverted.status === 'skipped') throw new Error('unexpected');
      expect(Array.from(readMrc(path.join(out, 'Subtomograms', 'lamella_000001.mrc')).data)).toEqual(Array.from(inverted.data));
      expect(Array.from(readMrc(path.join(out, 'Subtomograms', 'lamella_wedge.mrc')).data)).toEqual(Array.from(missingWedgeVolume(24, [-50, 55], 'x')));

      const flagged = path.join(dir, 'flagsWin');
      const f = await tme('export', tsv, '--format', 'relion', '--box', '20', '--voltage', '300', '--amplitude-contrast', '0.07',
        '--tilt-range', '-60,60', '--tomo-name', 'ts7', '--no-invert', '-o', flagged);
      expect(f.err).toBe('');
      expect(loop(path.join(flagged, 'particles.star'), 'optics').rows[0]).toEqual(['1', 'opticsGroup1', '12.000000', '20', '3', '300', '2.7', '0.07']);
      const plain = extractSubtomogram(tomo, [24, 28, 30], { box: 20 });
      if (plain.status === 'skipped') throw new Error('unexpected');
      expect(Array.from(readMrc(path.join(flagged, 'Subtomograms', 'ts7_000001.mrc')).data)).toEqual(Array.from(plain.data));
      expect(Array.from(readMrc(path.join(flagged, 'Subtomograms', 'ts7_wedge.mrc')).data)).toEqual(Array.from(missingWedgeVolume(20, [-60, 60], 'x')));

      fs.renameSync(target, path.join(dir, 'moved.mrc'));
      const gone = await tme('export', tsv, '--format', 'relion', '-o', path.join(dir, 'gone'));
      expect(gone.code).toBe(1);
      expect(gone.err).toBe(`tme: ${target}: no such file (the target ${path.join(jobDir, 'job.json')} records; give --target)`);
    });

    it('relion: --face-boxes skip drops the edge pick; an odd --box is refused with exit code 2', async () => {
      const out = path.join(dir, 'skip');
      const r = await tme('export', star, '--format', 'relion', '--target', target, '--box', '20', '--face-boxes', 'skip', '-o', out);
      expect(r.out).toMatch(/2 picks \(0 boxes cross a face; 1 skipped\)/);
      const odd = await tme('export', star, '--format', 'relion', '--target', target, '--box', '21', '-o', path.join(dir, 'odd'));
      expect(odd.code).toBe(2);
      expect(odd.err).toMatch(/EVEN integer.*for box but received 21/);
    });

    it('relion without --target, or without a box, is a usage error', async () => {
      const a = await tme('export', star, '--format', 'relion', '--box', '20', '-o', path.join(dir, 'a'));
      expect(a.code).toBe(2);
      expect(a.err).toMatch(/--target/);
      const b = await tme('export', star, '--format', 'relion', '--target', target, '-o', path.join(dir, 'b'));
      expect(b.err).toMatch(/--box N/);
    });

    it('imod and dynamo write their files; existing outputs need --force', async () => {
      const out = path.join(dir, 'm');
      expect((await tme('export', star, '--format', 'imod', '--target', target, '--diameter', '120', '-o', out)).code).toBe(0);
      const mod = fs.readFileSync(path.join(out, 'picks.mod'));
      expect(mod.length).toBe(8 + 232 + 4 + 176 + 4 + 16 + 12 * 3 + 4);
      expect(mod.readInt32BE(240 + 4 + 156)).toBe(5); // pdrawsize = 120 Å / 2 / 12 Å
      expect(fs.readFileSync(path.join(out, 'picks.txt'), 'utf8').split('\n')[0]).toBe('1 1 30.500 28.500 24.000');
      const again = await tme('export', star, '--format', 'imod', '--target', target, '-o', out);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/picks\.mod: exists/);
      expect((await tme('export', star, '--format', 'dynamo', '--tilt-range', '-50,50', '-o', out)).code).toBe(0);
      const row = fs.readFileSync(path.join(out, 'picks.tbl'), 'utf8').split('\n')[0]!.split(' ');
      expect(row).toHaveLength(35);
      expect(row.slice(23, 26)).toEqual(['31', '29', '25']);
    });

    it('stopgap and warp: 1-based motive list; normalised Warp coordinates named after --tomo-name; warp needs the size', async () => {
      const out = path.join(dir, 'sw');
      const a = await tme('export', star, '--format', 'stopgap', '-o', out);
      expect(a.code).toBe(0);
      expect(a.out).toMatch(/3 picks → .*stopgap\.star/);
      const lines = fs.readFileSync(path.join(out, 'stopgap.star'), 'utf8').split('\n');
      const first = lines[lines.indexOf('_class') + 2]!.split(' ');
      expect(first.slice(0, 8)).toEqual(['1', '1', '1', '1', 'A', '31', '29', '25']);
      const b = await tme('export', star, '--format', 'warp', '--target', target, '--tomo-name', 'TS_1', '-o', out);
      expect(b.code).toBe(0);
      const w = loop(path.join(out, 'warp.star'), '');
      expect(w.rows[0]!.slice(0, 3).map(Number)).toEqual([30 / 64, 0.5, 0.5]);
      expect(w.rows[0]![6]).toBe('TS_1.tomostar');
      const c = await tme('export', star, '--format', 'warp', '-o', path.join(dir, 'w2'));
      expect(c.code).toBe(2);
      expect(c.err).toMatch(/--format warp needs the tomogram size: give --target/);
    });

    it('unknown formats are refused', async () => {
      const r = await tme('export', star, '--format', 'emclarity', '-o', dir);
      expect(r.code).toBe(2);
      expect((r.err as string)).toMatch(/one of relion, relion5, imod, dynamo, stopgap, warp, tsv/);
    });
  });
});

export type { TmeError };
