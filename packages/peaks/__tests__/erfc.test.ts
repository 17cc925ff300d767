import { erf, erfc, erfcinv } from '../src';

// Reference values from scipy.special (Debian python3-scipy), printed with repr().
const ERFCINV: Array<[number, number]> = [
  [1e-300, 26.209469960516124],
  [1e-100, 15.065574702592647],
  [1e-30, 8.148616223169864],
  [1e-12, 5.042029745639059],
  [1e-9, 4.320005384913446],
  [1e-6, 3.458910737279501],
  [0.001, 2.3267537655135246],
  [0.01, 1.8213863677184499],
  [0.1, 1.1630871536766743],
  [0.5, 0.4769362762044699],
  [1.5, -0.4769362762044699],
  [1.9, -1.1630871536766738],
  [1.999999, -3.4589107372909482],
];
const ERFC: Array<[number, number]> = [
  [0.1, 0.8875370839817152],
  [0.5, 0.4795001221869535],
  [1, 0.15729920705028516],
  [2, 0.004677734981047266],
  [3, 2.2090496998585445e-5],
  [5, 1.5374597944280347e-12],
  [10, 2.0884875837625446e-45],
  [26, 5.663192408856145e-296],
];

describe('erfc', () => {
  it.each(ERFC)('erfc(%p) matches scipy to 1e-13 relative', (x, want) => {
    expect(Math.abs(erfc(x) - want) / want).toBeLessThan(1e-13);
    expect(Math.abs(erfc(-x) - (2 - want))).toBeLessThan(1e-15);
  });

  it('erf + erfc = 1 and erf is odd', () => {
    for (const x of [0, 0.3, 1.7, 2.5, 4]) {
      expect(erf(x) + erfc(x)).toBeCloseTo(1, 15);
      expect(erf(-x)).toBe(-erf(x));
    }
  });
});

describe('erfcinv', () => {
  it.each(ERFCINV)('erfcinv(%p) matches scipy to 1e-9 relative (in fact ~1e-14)', (y, want) => {
    const got = erfcinv(y);
    expect(Math.abs(got - want) / Math.abs(want)).toBeLessThan(1e-13);
  });

  it('inverts erfc across 300 decades', () => {
    for (let e = -300; e <= 0; e += 0.37) {
      const y = 10 ** e;
      const x = erfcinv(y);
      expect(Math.abs(erfc(x) - y) / y).toBeLessThan(1e-12);
    }
  });

  it('handles the ends and the outside', () => {
    expect(erfcinv(1)).toBe(0);
    expect(erfcinv(0)).toBe(Infinity);
    expect(erfcinv(2)).toBe(-Infinity);
    expect(erfcinv(-0.1)).toBeNaN();
    expect(erfcinv(2.1)).toBeNaN();
    expect(erfcinv(NaN)).toBeNaN();
  });
});
