import {
  angleBetween, apply, coneRotations, identity, matrixToQuaternion, multiply, priorCone, relionEulerToMatrix,
  rotationAt, rotationFromZ, rotationZ, RotationIndex, seededRandom,
} from '../src';

const zAxis = (r: Float64Array): [number, number, number] => apply(r, [0, 0, 1]);
const angleOf = (a: readonly number[], b: readonly number[]): number => {
  const n = Math.hypot(a[0]!, a[1]!, a[2]!) * Math.hypot(b[0]!, b[1]!, b[2]!);
  return Math.acos(Math.min(1, (a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!) / n)) * 180 / Math.PI;
};

describe('coneRotations', () => {
  const center = relionEulerToMatrix(40, 70, -120);
  const set = coneRotations({ center, coneAngle: 10, angularStep: 5, inplaneAngle: 10, inplaneStep: 5 });

  it('counts: 1 + 7 + 13 directions (rings at 5° and 10°) × 5 in-plane angles; index 0 is the centre', () => {
    expect(set.directions).toBe(21);
    expect(set.inplaneCount).toBe(5);
    expect(set.count).toBe(105);
    expect(angleBetween(rotationAt(set, 0), center)).toBe(0);
  });

  it('every member keeps the template z-axis within the cone and stays near the centre', () => {
    const cz = zAxis(center);
    for (let i = 0; i < set.count; i++) {
      const r = rotationAt(set, i);
      expect(angleOf(zAxis(r), cz)).toBeLessThanOrEqual(10 + 1e-9);
      expect(angleBetween(r, center)).toBeLessThanOrEqual(20 + 1e-9);
    }
  });

  it('covers the local region: random orientations inside it are within the step of a member', () => {
    const index = new RotationIndex(set.matrices, 5);
    const random = seededRandom(8);
    let worst = 0;
    for (let k = 0; k < 3000; k++) {
      // a direction within 10° of z (uniform on the cap) and an in-plane angle within ±10°
      const cosT = 1 - random() * (1 - Math.cos((10 * Math.PI) / 180));
      const phi = 2 * Math.PI * random(), sinT = Math.sqrt(1 - cosT * cosT);
      const local = multiply(rotationFromZ([sinT * Math.cos(phi), sinT * Math.sin(phi), cosT]), rotationZ(-10 + 20 * random()));
      worst = Math.max(worst, index.nearest(matrixToQuaternion(multiply(center, local))).angle);
    }
    expect(worst).toBeLessThanOrEqual(5);
  });

  it('full in-plane circle when inplaneAngle ≥ 180; a zero cone is in-plane only', () => {
    expect(coneRotations({ center: identity(), coneAngle: 0, angularStep: 10, inplaneAngle: 180 }).count).toBe(36);
    expect(coneRotations({ center: identity(), coneAngle: 0, angularStep: 10, inplaneAngle: 0 }).count).toBe(1);
  });

  it('rejects bad options with ERR_TME_INVALID_OPTION', () => {
    const bad = (o: object): void => expect(() => coneRotations({ center: identity(), coneAngle: 10, angularStep: 5, ...o }))
      .toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
    bad({ coneAngle: -1 });
    bad({ angularStep: 0 });
    bad({ center: new Float64Array(9) });
    bad({ inplaneStep: Number.NaN });
  });
});

describe('priorCone', () => {
  it('keeps the template z-axis within the cone of the axis, with the in-plane angle free', () => {
    const axis: [number, number, number] = [1, 2, 2];
    const set = priorCone({ axis, coneAngle: 20, angularStep: 10 });
    expect(set.inplaneCount).toBe(36);
    for (let i = 0; i < set.count; i++) expect(angleOf(zAxis(rotationAt(set, i)), axis)).toBeLessThanOrEqual(20 + 1e-9);
    expect(angleOf(zAxis(rotationAt(set, 0)), axis)).toBeLessThan(1e-9);
  });

  it('bothDirections doubles the set with the opposite axis; C4 quarters the in-plane circle; D2 is unsupported', () => {
    const one = priorCone({ axis: [0, 0, 1], coneAngle: 15, angularStep: 5 });
    const both = priorCone({ axis: [0, 0, 1], coneAngle: 15, angularStep: 5, bothDirections: true });
    expect(both.count).toBe(2 * one.count);
    expect(zAxis(rotationAt(both, one.count))[2]).toBeCloseTo(-1, 12);
    expect(priorCone({ axis: [0, 0, 1], coneAngle: 15, angularStep: 5, symmetry: 'C4' }).inplaneCount).toBe(one.inplaneCount / 4);
    expect(() => priorCone({ axis: [0, 0, 1], coneAngle: 15, angularStep: 5, symmetry: 'D2' }))
      .toThrow(expect.objectContaining({ code: 'ERR_TME_UNSUPPORTED' }));
    expect(() => priorCone({ axis: [0, 0, 0], coneAngle: 15, angularStep: 5 }))
      .toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });
});
