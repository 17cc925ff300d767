import { columnOf } from '../src/star-table';
import { relionOriginAngstOf, relionParticlesTables } from '../src/relion-particles';
import type { TomogramGeometry } from '../src/pick';
import { makePicks, maxAbsDiff } from './helpers/picks';
import { relionEulerAngles2Matrix } from './helpers/relion-euler';

const geometry: TomogramGeometry = { shape: [64, 96, 128], voxelSize: 10, name: 'tomo1' };

describe('relionParticlesTables', () => {
  const picks = makePicks(20, geometry.shape);
  const entries = picks.map((pick, i) => ({
    pick, imageName: `Subtomograms/tomo1_${String(i + 1).padStart(6, '0')}.mrc`, outsideFraction: i === 1 ? 0.3125 : 0,
  }));
  const [optics, particles] = relionParticlesTables(entries, geometry, { box: 40, ctfImage: 'Subtomograms/tomo1_wedge.mrc', voltage: 200 });

  it('writes the optics labels RELION 3.1 needs, in order, with the values', () => {
    expect(optics.name).toBe('optics');
    expect(optics.labels).toEqual(['rlnOpticsGroup', 'rlnOpticsGroupName', 'rlnImagePixelSize', 'rlnImageSize',
      'rlnImageDimensionality', 'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast']);
    expect(optics.rows).toEqual([['1', 'opticsGroup1', '10.000000', '40', '3', '200', '2.7', '0.07']]);
  });

  it('writes the particle labels, in order', () => {
    expect(particles.name).toBe('particles');
    expect(particles.labels).toEqual(['rlnImageName', 'rlnCtfImage', 'rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi',
      'rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst', 'rlnOpticsGroup', 'rlnCoordinateX', 'rlnCoordinateY',
      'rlnCoordinateZ', 'rlnMicrographName', 'rlnTomoName', 'rlnAutopickFigureOfMerit', 'rlnClassNumber', 'rlnRandomSubset', 'tmeBoxOutsideFraction']);
    expect(particles.rows).toHaveLength(20);
    for (const r of particles.rows) expect(r).toHaveLength(particles.labels.length);
    expect(columnOf(particles, 'rlnImageName')[2]).toBe('Subtomograms/tomo1_000003.mrc');
    expect(new Set(columnOf(particles, 'rlnCtfImage'))).toEqual(new Set(['Subtomograms/tomo1_wedge.mrc']));
    // A box that crossed a face is marked with the fraction of it that was filled.
    expect(columnOf(particles, 'tmeBoxOutsideFraction').slice(0, 3)).toEqual(['0.0000', '0.3125', '0.0000']);
    // Gold-standard halves alternate, so relion_refine --split_random_halves never meets an empty half.
    expect(columnOf(particles, 'rlnRandomSubset').slice(0, 5)).toEqual(['1', '2', '1', '2', '1']);
    expect(columnOf(particles, 'rlnRandomSubset').filter((h) => h === '2')).toHaveLength(10);
  });

  it('angles: RELION’s Euler_angles2matrix(rot, tilt, psi) equals R to 1e-6', () => {
    const rot = columnOf(particles, 'rlnAngleRot').map(Number);
    const tilt = columnOf(particles, 'rlnAngleTilt').map(Number);
    const psi = columnOf(particles, 'rlnAnglePsi').map(Number);
    picks.forEach((p, i) => {
      expect(maxAbsDiff(relionEulerAngles2Matrix(rot[i]!, tilt[i]!, psi[i]!), p.rotation)).toBeLessThan(1e-6);
    });
  });

  it('origins are −(position − integer centre)·pixel in x, y, z; coordinates are the integer centre, x, y, z', () => {
    const ox = columnOf(particles, 'rlnOriginXAngst').map(Number);
    const oz = columnOf(particles, 'rlnOriginZAngst').map(Number);
    const cx = columnOf(particles, 'rlnCoordinateX').map(Number);
    const cz = columnOf(particles, 'rlnCoordinateZ').map(Number);
    picks.forEach((p, i) => {
      expect(ox[i]).toBeCloseTo(-(p.position[2] - Math.round(p.position[2])) * 10, 5);
      expect(oz[i]).toBeCloseTo(-(p.position[0] - Math.round(p.position[0])) * 10, 5);
      expect(Math.abs(ox[i]!)).toBeLessThanOrEqual(5);
      expect(cx[i]).toBe(Math.round(p.position[2]));
      expect(cz[i]).toBe(Math.round(p.position[0]));
      // RELION's reading gives the pick back: coordinate − origin/pixel
      expect(cx[i]! - ox[i]! / 10).toBeCloseTo(p.position[2], 5);
      expect(cz[i]! - oz[i]! / 10).toBeCloseTo(p.position[0], 5);
    });
  });

  it('a pick at +0.3 voxel in x gets origin −3 Å at 10 Å/voxel', () => {
    const pick = { position: [5, 5, 5.3] as const, rotation: new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]), score: 1 };
    const [x, y, z] = relionOriginAngstOf(pick, 10);
    expect(x).toBeCloseTo(-3, 10);
    expect(y === 0 && z === 0).toBe(true);
  });

  it('leaves out rlnCtfImage without a wedge, rlnClassNumber without details, and scales coordinates by binning', () => {
    const plain = picks.map((p) => ({ pick: { ...p, detail: undefined }, imageName: 'a.mrc' }));
    const [, t] = relionParticlesTables(plain, geometry, { box: 40, binning: 4 });
    expect(t.labels).not.toContain('rlnCtfImage');
    expect(t.labels).not.toContain('rlnClassNumber');
    expect(Number(columnOf(t, 'rlnCoordinateY')[0])).toBe(Math.round(picks[0]!.position[1]) * 4);
  });
});
