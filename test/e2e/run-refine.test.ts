// `tme run` end to end on a small synthetic tomogram with known particles: every particle is found at its voxel,
// and the default refinement brings the orientations closer to the truth than the global sampling (--no-refine).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, writeMrc } from '@tme/formats';
import { generateSyntheticTomogram, scorePicks } from '@tme/example';
import { parseOrientationsTsv } from '@tme/peaks';
import { pytmeEulerToMatrix } from '@tme/rotations';

jest.setTimeout(600_000);
const cli = path.resolve(__dirname, '..', '..', 'apps', 'cli', 'dist', 'main.js');
const haveCli = fs.existsSync(cli);

function blobs(n: number): Float32Array {
  const c = n >> 1;
  const out = new Float32Array(n ** 3);
  const parts = [[0, 0, 0, 2, 1], [0, 0, 3, 1.2, 0.9], [3, -2, 0, 1.1, 0.7], [-2, 2, -2, 1, 0.5]];
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    let v = 0;
    for (const [bz, by, bx, s, a] of parts as number[][]) v += a! * Math.exp(-((z - c - bz!) ** 2 + (y - c - by!) ** 2 + (x - c - bx!) ** 2) / (2 * s! * s!));
    out[(z * n + y) * n + x] = v;
  }
  return out;
}

(haveCli ? describe : describe.skip)('tme run refines orientations by default', () => {
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-run-refine-')); });
  afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('finds every particle and refines its orientation below the global step', () => {
    const template = createVolume(blobs(12), [12, 12, 12], 8);
    const made = generateSyntheticTomogram(template, { shape: [32, 48, 48], particles: 4, snr: 2, seed: 4, tiltRange: null, minSeparation: 1.3 });
    writeMrc(path.join(dir, 'tomo.mrc'), made.tomogram);
    writeMrc(path.join(dir, 'template.mrc'), template);
    let stdout = '';
    const run = (out: string, extra: string[]): ReturnType<typeof parseOrientationsTsv> => {
      const r = spawnSync(process.execPath, [cli, 'run', '--target', path.join(dir, 'tomo.mrc'), '--template', path.join(dir, 'template.mrc'),
        '--angular-step', '30', '--device', 'cpu', '--number', '4', '--formats', 'tsv', '-o', path.join(dir, out), ...extra],
      { encoding: 'utf8', env: { ...process.env, CI: '1' } });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      stdout = r.stdout;
      return parseOrientationsTsv(fs.readFileSync(path.join(dir, out, 'picks.tsv'), 'utf8'));
    };
    const toPicks = (rows: ReturnType<typeof parseOrientationsTsv>) => rows.map((r) => ({
      position: r.position, rotation: r.rotation ?? pytmeEulerToMatrix(0, 0, 0),
    }));
    const coarse = scorePicks(toPicks(run('coarse', ['--no-refine'])), made.truth, 1);
    expect(stdout).not.toMatch(/refined/);
    const fine = scorePicks(toPicks(run('refined', [])), made.truth, 1);
    expect(stdout).toMatch(/tme run: refined 4 orientations: median change \d+\.\d°/);
    expect(coarse.recall).toBe(1);
    expect(fine.recall).toBe(1);
    // The global set covers SO(3) within 30°; refinement searches ±30° at 15° then 7.5°.
    expect(coarse.medianAngularError).toBeLessThanOrEqual(30);
    expect(fine.medianAngularError).toBeLessThan(coarse.medianAngularError);
    expect(fine.medianAngularError).toBeLessThanOrEqual(10);
  });
});
