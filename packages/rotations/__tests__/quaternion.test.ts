import { matrixToQuaternion, quaternionToMatrix, multiplyQuaternions, multiply, pytmeEulerToMatrix, type Quaternion } from '../src';
import { runScipy, seeded } from './helpers/scipy';

const rand = seeded(5);
const angles = Array.from({ length: 200 }, () => [rand() * 360 - 180, rand() * 180, rand() * 360 - 180]);
angles.push([0, 0, 0], [180, 0, 0], [0, 180, 0], [90, 180, -90], [180, 180, 180]);
// scipy quaternions are scalar LAST: reorder to [w, x, y, z] in python.
const ref = runScipy<number[][]>(`
q = Rotation.from_euler('zyz', np.array(data), degrees=True).as_quat()
out = q[:, [3, 0, 1, 2]].tolist()`, angles);

describe('quaternions [w, x, y, z]', () => {
  it('matrixToQuaternion equals scipy as_quat (reordered, up to sign) with w ≥ 0', () => {
    angles.forEach((a, i) => {
      const q = matrixToQuaternion(pytmeEulerToMatrix(a[0]!, a[1]!, a[2]!));
      const want = ref[i]!;
      const s = Math.sign(q.reduce((acc, x, k) => acc + x * want[k]!, 0));
      q.forEach((x, k) => expect(Math.abs(x - s * want[k]!)).toBeLessThan(1e-12));
      expect(q[0]).toBeGreaterThanOrEqual(0);
    });
  });
  it('quaternionToMatrix inverts it and the Hamilton product composes like matrices', () => {
    for (let i = 0; i + 1 < angles.length; i++) {
      const a = pytmeEulerToMatrix(angles[i]![0]!, angles[i]![1]!, angles[i]![2]!);
      const b = pytmeEulerToMatrix(angles[i + 1]![0]!, angles[i + 1]![1]!, angles[i + 1]![2]!);
      const back = quaternionToMatrix(matrixToQuaternion(a));
      back.forEach((x, k) => expect(Math.abs(x - a[k]!)).toBeLessThan(1e-12));
      const ab = quaternionToMatrix(multiplyQuaternions(matrixToQuaternion(a), matrixToQuaternion(b)) as Quaternion);
      const want = multiply(a, b);
      ab.forEach((x, k) => expect(Math.abs(x - want[k]!)).toBeLessThan(1e-12));
    }
  });
});
