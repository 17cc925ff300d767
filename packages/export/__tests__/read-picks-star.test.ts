import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatStar, parseStar } from '@tme/formats';
import { matrixToRelionEuler, pytmeEulerToMatrix, wrapDegrees } from '@tme/rotations';
import { readStarPicks } from '../src/read-picks-star';
import { relionParticlesTables } from '../src/relion-particles';
import { relion5ParticlesTables } from '../src/relion5-particles';
import { starFileOf } from '../src/star-table';
import type { TomogramGeometry } from '../src/pick';
import { makePicks, maxAbsDiff } from './helpers/picks';

const fixture = (name: string): string => path.join(__dirname, 'fixtures', name);

/** pyTME's TSV parsed plainly here (x y z euler_x euler_y euler_z score detail), the reference for its STARs. */
function pytmeTsv(): number[][] {
  return fs.readFileSync(fixture('peer128_flcs_a15.orientations.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number));
}

describe('readStarPicks on pyTME outputs', () => {
  const tsv = pytmeTsv();
  const shape = [128, 128, 128] as const;

  it('relion4: voxel coordinates and pyTME zyz angles (detected by _pytmeScore)', () => {
    const file = fixture('peer128_flcs_a15.relion4.star');
    const r = readStarPicks(parseStar(fs.readFileSync(file, 'utf8'), file));
    expect(r.convention).toBe('pytme-relion4');
    expect(r.tomoName).toBe('peer128');
    expect(r.picks).toHaveLength(11);
    r.picks.forEach((p, i) => {
      const t = tsv[i]!;
      expect(p.position).toEqual([t[2], t[1], t[0]]);
      expect(maxAbsDiff(p.rotation, pytmeEulerToMatrix(t[3]!, t[4]!, t[5]!))).toBeLessThan(1e-12);
      expect(p.score).toBeCloseTo(t[6]!, 6);
      expect(p.detail).toBe(0);
    });
  });

  it('relion5 (# version 50001): centred Å back to indices with shape//2', () => {
    const file = fixture('peer128_flcs_a15.relion5.star');
    const r = readStarPicks(parseStar(fs.readFileSync(file, 'utf8'), file), { shape, voxelSize: 10 });
    expect(r.convention).toBe('pytme-relion5');
    expect(r.picks).toHaveLength(19);
    r.picks.forEach((p, i) => {
      const t = tsv[i]!;
      expect(maxAbsDiff(p.position, [t[2]!, t[1]!, t[0]!])).toBeLessThan(1e-9);
      expect(maxAbsDiff(p.rotation, pytmeEulerToMatrix(t[3]!, t[4]!, t[5]!))).toBeLessThan(1e-12);
    });
  });

  it('relion5 without the tomogram geometry is a clear error', () => {
    const file = fixture('peer128_flcs_a15.relion5.star');
    expect(() => readStarPicks(parseStar(fs.readFileSync(file, 'utf8'), file), {}, file)).toThrow(/need the tomogram shape/);
  });

  it('the RELION angles tme writes for them are (180 − ex, ey, 180 − ez) mod 360 (pytme-relion-angles.md)', () => {
    const file = fixture('peer128_flcs_a15.relion4.star');
    const r = readStarPicks(parseStar(fs.readFileSync(file, 'utf8'), file));
    let checked = 0;
    r.picks.forEach((p, i) => {
      const t = tsv[i]!;
      if (t[4]! < 1e-3 || t[4]! > 179.999) return; // gimbal lock: only rot + psi is defined
      const [rot, tilt, psi] = matrixToRelionEuler(p.rotation);
      expect(Math.abs(wrapDegrees(rot - (180 - t[3]!)))).toBeLessThan(1e-4);
      expect(tilt).toBeCloseTo(t[4]!, 4);
      expect(Math.abs(wrapDegrees(psi - (180 - t[5]!)))).toBeLessThan(1e-4);
      checked += 1;
    });
    expect(checked).toBeGreaterThan(8);
  });
});

describe('readStarPicks on tme’s own STAR files (write → text → read)', () => {
  const geometry: TomogramGeometry = { shape: [60, 90, 120], voxelSize: 8, name: 't1' };
  const picks = makePicks(15, geometry.shape, 11);

  it('relion 3.1: coordinate/binning − origin/pixel gives the pick back, RELION angles give R', () => {
    const entries = picks.map((pick) => ({ pick, imageName: 'x.mrc' }));
    const text = formatStar(starFileOf(relionParticlesTables(entries, geometry, { box: 32, binning: 2 }), '30001'));
    const r = readStarPicks(parseStar(text), { binning: 2 });
    expect(r.convention).toBe('relion');
    expect(r.tomoName).toBe('t1');
    r.picks.forEach((p, i) => {
      expect(maxAbsDiff(p.position, picks[i]!.position)).toBeLessThan(1e-5);
      expect(maxAbsDiff(p.rotation, picks[i]!.rotation)).toBeLessThan(1e-6);
      expect(p.detail).toBe(picks[i]!.detail);
      expect(p.score).toBeCloseTo(picks[i]!.score, 6);
    });
  });

  it.each(['relion', 'minus-one'] as const)('relion5 (%s centre, binning from rlnTomoTiltSeriesPixelSize)', (centreConvention) => {
    const text = formatStar(starFileOf(relion5ParticlesTables(picks, geometry, { tiltSeriesPixelSize: 2, centreConvention }), '50001'));
    const r = readStarPicks(parseStar(text), { shape: geometry.shape, voxelSize: 8, centreConvention });
    expect(r.convention).toBe('relion5');
    r.picks.forEach((p, i) => {
      expect(maxAbsDiff(p.position, picks[i]!.position)).toBeLessThan(1e-3 / 8);
      expect(maxAbsDiff(p.rotation, picks[i]!.rotation)).toBeLessThan(1e-6);
    });
  });

  it('a STAR without coordinates is a format error', () => {
    expect(() => readStarPicks(parseStar('data_particles\nloop_\n_rlnAngleRot\n1\n'), {}, 'a.star')).toThrow(/no particles table/);
  });
});
