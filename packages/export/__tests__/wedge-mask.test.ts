import { isMeasured, missingWedgeVolume } from '../src/wedge-mask';

describe('missingWedgeVolume', () => {
  const box = 16;
  const c = box / 2;
  const w = missingWedgeVolume(box, [-60, 60]);
  const at = (kz: number, ky: number, kx: number): number => w[((kz + c) * box + (ky + c)) * box + (kx + c)] as number;

  it('is box³, centred on box//2 (RELION’s cubic 3D CTF layout)', () => {
    expect(w.length).toBe(box ** 3);
    expect(at(0, 0, 0)).toBe(1);
  });

  it('misses the wedge around kz in the (kz, kx) plane and keeps the tilt axis ky', () => {
    expect(at(5, 0, 0)).toBe(0); // along the beam: missing
    expect(at(0, 0, 5)).toBe(1); // kx: measured
    expect(at(0, 7, 0)).toBe(1); // ky (tilt axis): measured
    expect(at(3, 0, 3)).toBe(1); // 45°
    expect(at(6, 2, 3)).toBe(0); // atan(6/3) = 63.4° > 60
    expect(at(5, -4, 3)).toBe(1); // 59.04° < 60
  });

  it('is centrosymmetric, so RELION’s Fctf(k) = Ictf(−k) read is harmless', () => {
    for (let kz = -c + 1; kz < c; kz += 1) for (let ky = -c + 1; ky < c; ky += 1) for (let kx = -c + 1; kx < c; kx += 1) {
      expect(at(kz, ky, kx)).toBe(at(-kz, -ky, -kx));
    }
  });

  it('keeps the measured fraction of the (kx, kz) plane at (max − min)/180', () => {
    const big = 200;
    let kept = 0;
    let all = 0;
    for (let kz = -big; kz <= big; kz += 1) for (let kx = -big; kx <= big; kx += 1) {
      if (kx * kx + kz * kz > big * big || (kx === 0 && kz === 0)) continue;
      all += 1;
      if (isMeasured(kx, kz, [-40, 50])) kept += 1;
    }
    expect(kept / all).toBeCloseTo(90 / 180, 2);
  });

  it('an asymmetric range keeps one side: +50° kept, −50° missing for [-40, 60]', () => {
    const t = (deg: number): [number, number] => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
    expect(isMeasured(...t(50), [-40, 60])).toBe(true);
    expect(isMeasured(...t(-50), [-40, 60])).toBe(false);
  });

  it('a tilt axis x puts the wedge in the (ky, kz) plane: the y-axis volume with x and y swapped', () => {
    const y = missingWedgeVolume(16, [-50, 40]);
    const x = missingWedgeVolume(16, [-50, 40], 'x');
    for (let k = 0; k < 16; k += 1) for (let j = 0; j < 16; j += 1) for (let i = 0; i < 16; i += 1) {
      expect(x[(k * 16 + j) * 16 + i]).toBe(y[(k * 16 + i) * 16 + j]);
    }
    expect(x[(14 * 16 + 8) * 16 + 8]).toBe(0); // (kz 6, ky 0): the beam direction, missing
    expect(x[(8 * 16 + 14) * 16 + 8]).toBe(1); // (kz 0, ky 6): the 0° plane
  });

  it('refuses bad ranges', () => {
    expect(() => missingWedgeVolume(16, [60, -60])).toThrow(/MIN < MAX/);
  });
});
