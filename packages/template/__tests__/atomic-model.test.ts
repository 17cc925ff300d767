import { simulateDensity, massCenter, subsetAtoms, type AtomicModel } from '../src/atomic-model';
import { readStructure } from '@tme/formats';
import { templateFromModel } from '../src/template-from-model';
import { PENG_1996, scatteringAtZero, elementKey } from '../src/scattering-factors';
import { erf } from '../src/erf';
import { bundledModelPath } from '../src/bundled-model';
import { isFastSize, nextFastEvenSize } from '../src/fast-size';
import { readPdbAtoms } from './helpers/pdb';

const model = readPdbAtoms(bundledModelPath());

function moments(data: Float32Array, shape: readonly number[]) {
  const [nz, ny, nx] = shape as [number, number, number];
  let s = 0;
  let mz = 0;
  let my = 0;
  let mx = 0;
  let i = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, i++) {
        const v = data[i] as number;
        s += v;
        mz += v * z;
        my += v * y;
        mx += v * x;
      }
  const c = [mz / s, my / s, mx / s] as const;
  let r2 = 0;
  i = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, i++) r2 += (data[i] as number) * ((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2);
  return { sum: s, center: c, rg2: r2 / s };
}

describe('erf', () => {
  it('matches Python math.erf to 1.2e-7', () => {
    expect(Math.abs(erf(0.3) - 0.3286267594591274)).toBeLessThan(1.2e-7);
    expect(Math.abs(erf(-1.7) - -0.9837904585907745)).toBeLessThan(1.2e-7);
    expect(Math.abs(erf(2.5) - 0.999593047982555)).toBeLessThan(1.2e-7);
  });
});

describe('fast sizes', () => {
  it('picks the next even size with factors 2, 3, 5, 7', () => {
    expect([nextFastEvenSize(61), nextFastEvenSize(64), nextFastEvenSize(65), nextFastEvenSize(121), nextFastEvenSize(1)]).toEqual([64, 64, 70, 126, 2]);
    expect(isFastSize(98)).toBe(true);
    expect(isFastSize(22)).toBe(false);
  });
});

describe('Peng 1996 table', () => {
  it('gives f(0) close to the known electron scattering amplitudes at s = 0 (Å)', () => {
    expect(scatteringAtZero(PENG_1996.H!)).toBeCloseTo(0.5288, 4);
    expect(scatteringAtZero(PENG_1996.C!)).toBeCloseTo(2.5088, 4);
    expect(scatteringAtZero(PENG_1996.O!)).toBeCloseTo(1.9834, 4);
    expect(elementKey(' Fe')).toBe('FE');
  });
});

describe('simulateDensity on PDB 1TII (bundled, protein atoms only)', () => {
  const v = 2;
  const sim = simulateDensity(model, { voxelSize: v });
  const m = moments(sim.volume.data, sim.volume.shape);

  it('uses a fast even cubic box holding the molecule plus margin', () => {
    expect(model.x.length).toBe(5469);
    const n = sim.volume.shape[0];
    expect(sim.volume.shape).toEqual([n, n, n]);
    expect(n % 2).toBe(0);
    expect(isFastSize(n)).toBe(true);
    expect(sim.atomCount).toBe(5469);
  });

  it('integrates to Σ over atoms of Σ a_i (occupancy-weighted) within 1%', () => {
    let expected = 0;
    for (let j = 0; j < model.x.length; j++) expected += scatteringAtZero(PENG_1996[elementKey(model.element[j]!)]!) * model.occupancy![j]!;
    const total = m.sum * v ** 3;
    expect(Math.abs(total / expected - 1)).toBeLessThan(0.01);
    expect(Math.abs(total / expected - 1)).toBeLessThan(1e-4); // measured: exact voxel integration
  });

  it('puts the centre of mass within 0.5 voxel of box//2 and of the mass-weighted atom centre', () => {
    const c = Math.floor(sim.volume.shape[0] / 2);
    for (const a of [0, 1, 2]) expect(Math.abs((m.center[a] as number) - c)).toBeLessThan(0.5);
    const mc = massCenter(model);
    for (const a of [0, 1, 2]) {
      const angstrom = sim.volume.origin[a]! + m.center[a]! * v;
      expect(Math.abs(angstrom - mc[a]!)).toBeLessThan(0.5 * v);
    }
  });

  it('has the radius of gyration of the atoms (analytic: atoms + Gaussian widths + voxel averaging, 0.5%)', () => {
    // Expected second moment: Σ a (|p − c|² + 3σ²) / Σ a, plus v²/4 from voxel averaging, c the f(0)-weighted centre.
    let sa = 0;
    let c0 = 0;
    let c1 = 0;
    let c2 = 0;
    for (let j = 0; j < model.x.length; j++) {
      const f = PENG_1996[elementKey(model.element[j]!)]!;
      const a = scatteringAtZero(f) * model.occupancy![j]!;
      sa += a;
      c0 += a * model.z[j]!;
      c1 += a * model.y[j]!;
      c2 += a * model.x[j]!;
    }
    const c = [c0 / sa, c1 / sa, c2 / sa];
    let s2 = 0;
    let atomsOnly = 0;
    for (let j = 0; j < model.x.length; j++) {
      const f = PENG_1996[elementKey(model.element[j]!)]!;
      const occ = model.occupancy![j]!;
      const d2 = (model.z[j]! - c[0]!) ** 2 + (model.y[j]! - c[1]!) ** 2 + (model.x[j]! - c[2]!) ** 2;
      atomsOnly += scatteringAtZero(f) * occ * d2;
      for (let i = 0; i < 5; i++) s2 += f.a[i]! * occ * (d2 + (3 * (f.b[i]! + model.bFactor![j]!)) / (8 * Math.PI ** 2));
    }
    const expected = s2 / sa + v * v / 4;
    const measured = m.rg2 * v * v;
    expect(Math.abs(Math.sqrt(measured) / Math.sqrt(expected) - 1)).toBeLessThan(0.005);
    // And within 3% of the bare atoms' Rg: the blur adds little to a 77 kDa molecule.
    expect(Math.abs(Math.sqrt(measured) / Math.sqrt(atomsOnly / sa) - 1)).toBeLessThan(0.03);
  });

  it('low-pass as a B-factor: the same integral, a wider profile', () => {
    const lp = simulateDensity(model, { voxelSize: 4, lowpassAngstrom: 20, useBFactors: false });
    const ml = moments(lp.volume.data, lp.volume.shape);
    const plain = simulateDensity(model, { voxelSize: 4, useBFactors: false });
    const mp = moments(plain.volume.data, plain.volume.shape);
    expect(ml.sum / mp.sum).toBeCloseTo(1, 4);
    // Extra variance per axis: B/(8π²) with B = 4 ln2·20² → 3·B/(8π²) = 42.1 Å² added to Rg², plus up to v²/4 = 4 Å²
    // of voxel averaging that the sharp atoms (σ < 1 voxel) mostly escape and the blurred ones do not.
    const added = (3 * 4 * Math.LN2 * 400) / (8 * Math.PI ** 2);
    const delta = (ml.rg2 - mp.rg2) * 16;
    expect(delta).toBeGreaterThan(added - 0.2);
    expect(delta).toBeLessThan(added + 4 + 0.2);
  });

  it('rejects unknown elements unless told how to treat them', () => {
    const odd = { x: new Float64Array([0]), y: new Float64Array([0]), z: new Float64Array([0]), element: ['XX'] };
    expect(() => simulateDensity(odd, { voxelSize: 1 })).toThrow(/No electron scattering factor for element "XX"/);
    const asC = simulateDensity(odd, { voxelSize: 1, unknownElements: 'carbon' });
    expect(asC.volume.data.reduce((a, b) => a + b, 0)).toBeCloseTo(scatteringAtZero(PENG_1996.C!), 3);
  });
});

describe('with @tme/formats readStructure', () => {
  it('takes its Structure as an AtomicModel; dropping waters leaves the 5,469 protein atoms of the test reader', async () => {
    const s = await readStructure(bundledModelPath());
    const all: AtomicModel = s;
    expect(all.x.length).toBe(5684);
    const protein = subsetAtoms(s, (i) => s.residueName[i] !== 'HOH');
    expect(protein.x.length).toBe(5469);
    expect(Array.from(protein.x.slice(0, 50))).toEqual(Array.from(model.x.slice(0, 50)));
    const a = simulateDensity(protein, { voxelSize: 6 });
    const b = simulateDensity(model, { voxelSize: 6 });
    expect(Array.from(a.volume.data)).toEqual(Array.from(b.volume.data));
  });
});

describe('templateFromModel', () => {
  it('gives a standardised template and a sphere mask that covers every atom', () => {
    const { template, mask, extentAngstrom } = templateFromModel(model, { voxelSize: 6, lowpassAngstrom: 15, invertContrast: true });
    expect(extentAngstrom).toBeGreaterThan(30);
    expect(mask.radiusAngstrom).toBeGreaterThanOrEqual(extentAngstrom + 6);
    expect(mask.radiusAngstrom).toBeLessThanOrEqual(extentAngstrom + 6 + 12 + 6 * Math.sqrt(3));
    let s = 0;
    let s2 = 0;
    let w = 0;
    for (let i = 0; i < template.data.length; i++) {
      const m = mask.mask.data[i]!;
      s += m * template.data[i]!;
      s2 += m * template.data[i]! ** 2;
      w += m;
    }
    expect(s / w).toBeCloseTo(0, 5);
    expect(s2 / w).toBeCloseTo(1, 4);
    // Inverted: the centre of the molecule is dark.
    const c = template.shape[0] / 2;
    expect(template.data[(c * template.shape[1] + c) * template.shape[2] + c]!).toBeLessThan(0);
  });
});
