import { isTmeError } from '@tme/formats';
import { centredCoordinateAngst, positionFromCentredAngst, relion5ParticlesTables, relion5TomogramsTable, resolveRelion5Scale } from '../src/relion5-particles';
import type { TomogramGeometry } from '../src/pick';
import { columnOf } from '../src/star-table';
import { makePicks, maxAbsDiff } from './helpers/picks';
import { relionEulerAngles2Matrix } from './helpers/relion-euler';

const geometry: TomogramGeometry = { shape: [100, 300, 200], voxelSize: 10.8, name: 'TS_037' };

describe('RELION 5 centred coordinates', () => {
  const unbinned = { binning: 1, tiltSeriesPixelSize: 10.8 };

  it('relion convention: (x − size/2.0)·pixel, x first', () => {
    expect(centredCoordinateAngst([50, 150, 100], geometry.shape, unbinned)).toEqual([0, 0, 0]);
    expect(centredCoordinateAngst([0, 0, 0], geometry.shape, unbinned)).toEqual([-100 * 10.8, -150 * 10.8, -50 * 10.8]);
    const odd = centredCoordinateAngst([0, 0, 10], [1, 1, 21], unbinned);
    expect(odd[0]).toBeCloseTo(-0.5 * 10.8, 10); // size/2.0 = 10.5, not 10
  });

  it('minus-one convention: centre at size/2 − 1 (RELION’s Python picker, pytom)', () => {
    expect(centredCoordinateAngst([49, 149, 99], geometry.shape, unbinned, 'minus-one')).toEqual([0, 0, 0]);
  });

  it('binning: bin-1 pixels = voxel × B; the relion convention equals (x − n/2)·voxel', () => {
    const scale = resolveRelion5Scale(geometry, { binning: 4 });
    expect(scale.tiltSeriesPixelSize).toBeCloseTo(2.7, 12);
    const c = centredCoordinateAngst([10, 20, 30], geometry.shape, scale);
    expect(c[0]).toBeCloseTo((30 - 100) * 10.8, 9);
    const m = centredCoordinateAngst([10, 20, 30], geometry.shape, scale, 'minus-one');
    expect(m[0]).toBeCloseTo((30 * 4 - (800 / 2 - 1)) * 2.7, 9);
  });

  it('round-trips positions through both conventions and binnings', () => {
    for (const conv of ['relion', 'minus-one'] as const) {
      for (const b of [1, 2, 4.5]) {
        const scale = resolveRelion5Scale(geometry, { binning: b });
        const p = [12.25, 77.5, 190.125] as const;
        expect(maxAbsDiff(positionFromCentredAngst(centredCoordinateAngst(p, geometry.shape, scale, conv), geometry.shape, scale, conv), p)).toBeLessThan(1e-9);
      }
    }
  });

  it('takes the binning from the tilt-series pixel size and refuses a mismatch', () => {
    expect(resolveRelion5Scale(geometry, { tiltSeriesPixelSize: 1.35 }).binning).toBeCloseTo(8, 12);
    let err: unknown;
    try { resolveRelion5Scale(geometry, { tiltSeriesPixelSize: 1.35, binning: 4 }); } catch (e) { err = e; }
    expect(isTmeError(err, 'ERR_TME_MISMATCH')).toBe(true);
  });
});

describe('relion5ParticlesTables', () => {
  const picks = makePicks(12, geometry.shape, 3);
  const [optics, particles] = relion5ParticlesTables(picks, geometry, { binning: 2 });

  it('optics: group, name, tilt-series pixel size, voltage, Cs, amplitude contrast', () => {
    expect(optics.labels).toEqual(['rlnOpticsGroup', 'rlnOpticsGroupName', 'rlnTomoTiltSeriesPixelSize', 'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast']);
    expect(optics.rows).toEqual([['1', 'opticsGroup1', '5.400000', '300', '2.7', '0.07']]);
  });

  it('particles: labels in order, tomo name, centred Å, RELION angles of R', () => {
    expect(particles.labels).toEqual(['rlnTomoName', 'rlnCenteredCoordinateXAngst', 'rlnCenteredCoordinateYAngst',
      'rlnCenteredCoordinateZAngst', 'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi', 'rlnOpticsGroup', 'rlnAutopickFigureOfMerit', 'rlnClassNumber']);
    const x = columnOf(particles, 'rlnCenteredCoordinateXAngst').map(Number);
    const z = columnOf(particles, 'rlnCenteredCoordinateZAngst').map(Number);
    const a = ['rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi'].map((l) => columnOf(particles, l).map(Number));
    picks.forEach((p, i) => {
      expect(x[i]).toBeCloseTo((p.position[2] - 100) * 10.8, 3);
      expect(z[i]).toBeCloseTo((p.position[0] - 50) * 10.8, 3);
      expect(maxAbsDiff(relionEulerAngles2Matrix(a[0]![i]!, a[1]![i]!, a[2]![i]!), p.rotation)).toBeLessThan(1e-6);
    });
    expect(new Set(columnOf(particles, 'rlnTomoName'))).toEqual(new Set(['TS_037']));
  });

  it('tomograms stub: bin-1 sizes, pixel size, binning', () => {
    const t = relion5TomogramsTable(geometry, { binning: 2 });
    expect(t.name).toBe('global');
    expect(t.labels).toEqual(['rlnTomoName', 'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast',
      'rlnTomoTiltSeriesPixelSize', 'rlnTomoTomogramBinning', 'rlnTomoSizeX', 'rlnTomoSizeY', 'rlnTomoSizeZ']);
    expect(t.rows).toEqual([['TS_037', '300', '2.7', '0.07', '5.400000', '2', '400', '600', '200']]);
  });
});
