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

  it('refuses bad ranges', () => {
    expect(() => missingWedgeVolume(16, [60, -60])).toThrow(/MIN < MAX/);
  });
});
