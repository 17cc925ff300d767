/**
 * Elastic electron scattering factors, 5-Gaussian fits f(s) = Σ a_i·exp(−b_i·s²), s = sin θ/λ = k/2, valid for
 * 0 ≤ s ≤ 2 Å⁻¹: Peng, Ren, Dudarev & Whelan (1996), "Robust parameterization of elastic and absorptive electron
 * atomic scattering factors", Acta Cryst. A52, 257–276, Table 1 (neutral atoms). a_i in Å, b_i in Å².
 */
export interface ScatteringFactor {
  a: readonly [number, number, number, number, number];
  b: readonly [number, number, number, number, number];
}

export const PENG_1996: Readonly<Record<string, ScatteringFactor>> = {
  H: { a: [0.0349, 0.1201, 0.197, 0.0573, 0.1195], b: [0.5347, 3.5867, 12.3471, 18.9525, 38.6269] },
  C: { a: [0.0893, 0.2563, 0.757, 1.0487, 0.3575], b: [0.2465, 1.71, 6.4094, 18.6113, 50.2523] },
  N: { a: [0.1022, 0.3219, 0.7982, 0.8197, 0.1715], b: [0.2451, 1.7481, 6.1925, 17.3894, 48.1431] },
  O: { a: [0.0974, 0.2921, 0.691, 0.699, 0.2039], b: [0.2067, 1.3815, 4.6943, 12.7105, 32.4726] },
  NA: { a: [0.2142, 0.6853, 0.7692, 1.6589, 1.4482], b: [0.3334, 2.3446, 10.083, 48.3037, 138.27] },
  MG: { a: [0.2314, 0.6866, 0.9677, 2.1882, 1.1339], b: [0.3278, 2.272, 10.9241, 39.2898, 101.9748] },
  P: { a: [0.2548, 0.6106, 1.4541, 2.3204, 0.8477], b: [0.2908, 1.874, 8.5176, 24.3434, 63.2996] },
  S: { a: [0.2497, 0.5628, 1.3899, 2.1865, 0.7715], b: [0.2681, 1.6711, 7.0267, 19.5377, 50.3888] },
  CL: { a: [0.2443, 0.5397, 1.3919, 2.0197, 0.6621], b: [0.2468, 1.5242, 6.1537, 16.6687, 42.3086] },
  K: { a: [0.4115, -1.4031, 2.2784, 2.6742, 2.2162], b: [0.3703, 3.3874, 13.1029, 68.9592, 194.4329] },
  CA: { a: [0.4054, 1.388, 2.1602, 3.7532, 2.2063], b: [0.3499, 3.0991, 11.9608, 53.9353, 142.3892] },
  MN: { a: [0.3796, 1.2094, 1.7815, 2.542, 1.5937], b: [0.2699, 2.0455, 7.4726, 31.0604, 91.5622] },
  FE: { a: [0.3946, 1.2725, 1.7031, 2.314, 1.4795], b: [0.2717, 2.0443, 7.6007, 29.9714, 86.2265] },
  ZN: { a: [0.4288, 1.2646, 1.4472, 1.8294, 1.0934], b: [0.2593, 1.7998, 6.75, 25.586, 73.5284] },
  SE: { a: [0.4477, 1.1678, 1.5843, 2.8087, 1.1956], b: [0.2405, 1.5442, 6.3231, 19.461, 52.0233] },
};

/** Mass (Da) per element, for mass-weighted centres. */
export const ATOMIC_MASS: Readonly<Record<string, number>> = {
  H: 1.008, C: 12.011, N: 14.007, O: 15.999, NA: 22.99, MG: 24.305, P: 30.974, S: 32.06, CL: 35.45, K: 39.098,
  CA: 40.078, MN: 54.938, FE: 55.845, ZN: 65.38, SE: 78.971,
};

/** Canonical key of an element symbol ("Fe", "FE", " fe" → "FE"). */
export function elementKey(element: string): string {
  return element.trim().toUpperCase();
}

/** f(0) = Σ a_i (Å): the integrated potential of one atom in these units. */
export function scatteringAtZero(f: ScatteringFactor): number {
  return f.a.reduce((s, v) => s + v, 0);
}
