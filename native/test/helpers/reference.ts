/**
 * Direct (non-FFT) references for the native scores, in float64, written from the contract's definitions:
 * score(x) = Σ_p f(x + p − c)·t̂_R(p) / norm, circular on the tile, c = box // 2, t_R(p) = t(c + A⁻¹(p − c)).
 */
export type Shape = readonly [number, number, number];

export function voxels(s: Shape): number {
  return s[0] * s[1] * s[2];
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomVolume(shape: Shape, seed: number): Float32Array {
  const r = random(seed);
  return Float32Array.from({ length: voxels(shape) }, () => r() * 2 - 1);
}

/** Rotation about axis (x, y, z) by `deg`, xyz frame, row-major. */
export function axisAngle(axis: [number, number, number], deg: number): number[] {
  const [x, y, z] = axis;
  const n = Math.hypot(x, y, z);
  const [u, v, w] = [x / n, y / n, z / n];
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  const t = 1 - c;
  return [
    t * u * u + c, t * u * v - s * w, t * u * w + s * v,
    t * u * v + s * w, t * v * v + c, t * v * w - s * u,
    t * u * w - s * v, t * v * w + s * u, t * w * w + c,
  ];
}

function at(v: ArrayLike<number>, s: Shape, z: number, y: number, x: number): number {
  if (z < 0 || y < 0 || x < 0 || z >= s[0] || y >= s[1] || x >= s[2]) return 0;
  return v[(z * s[1] + y) * s[2] + x] as number;
}

/** t_R on the box: trilinear, zero outside, rotation R (xyz frame) converted to array order. */
export function rotateBox(t: ArrayLike<number>, s: Shape, R: ArrayLike<number>): Float64Array {
  const r = (i: number, j: number): number => R[i * 3 + j] as number;
  // A = P R P (array order); A⁻¹ = Aᵀ: inv[i][j] = A[j][i] = R[2−j][2−i].
  const inv = (i: number, j: number): number => r(2 - j, 2 - i);
  const c = [Math.floor(s[0] / 2), Math.floor(s[1] / 2), Math.floor(s[2] / 2)];
  const out = new Float64Array(voxels(s));
  let o = 0;
  for (let z = 0; z < s[0]; z++)
    for (let y = 0; y < s[1]; y++)
      for (let x = 0; x < s[2]; x++) {
        const d = [z - c[0]!, y - c[1]!, x - c[2]!];
        const q = [0, 1, 2].map((i) => c[i]! + inv(i, 0) * d[0]! + inv(i, 1) * d[1]! + inv(i, 2) * d[2]!);
        const f = q.map(Math.floor);
        const w = q.map((v, i) => v - f[i]!);
        let acc = 0;
        for (let a = 0; a < 2; a++)
          for (let b = 0; b < 2; b++)
            for (let e = 0; e < 2; e++) {
              const wt = (a ? w[0]! : 1 - w[0]!) * (b ? w[1]! : 1 - w[1]!) * (e ? w[2]! : 1 - w[2]!);
              acc += wt * at(t, s, f[0]! + a, f[1]! + b, f[2]! + e);
            }
        out[o++] = acc;
      }
  return out;
}

/** Σ_p a(x + p − c)·g(p) for every x of the tile (circular). */
export function correlate(a: ArrayLike<number>, tile: Shape, g: ArrayLike<number>, box: Shape): Float64Array {
  const out = new Float64Array(voxels(tile));
  const c = [Math.floor(box[0] / 2), Math.floor(box[1] / 2), Math.floor(box[2] / 2)];
  const mod = (v: number, n: number): number => ((v % n) + n) % n;
  for (let z = 0; z < tile[0]; z++)
    for (let y = 0; y < tile[1]; y++)
      for (let x = 0; x < tile[2]; x++) {
        let acc = 0;
        let p = 0;
        for (let pz = 0; pz < box[0]; pz++)
          for (let py = 0; py < box[1]; py++)
            for (let px = 0; px < box[2]; px++, p++) {
              const gv = g[p] as number;
              if (gv === 0) continue;
              const iz = mod(z + pz - c[0]!, tile[0]);
              const iy = mod(y + py - c[1]!, tile[1]);
              const ix = mod(x + px - c[2]!, tile[2]);
              acc += (a[(iz * tile[1] + iy) * tile[2] + ix] as number) * gv;
            }
        out[(z * tile[1] + y) * tile[2] + x] = acc;
      }
  return out;
}

export type RefScore = 'cc' | 'flc-sphere' | 'flc' | 'mcc';

/** A template filter on its own grid (native README): values in the half-spectrum layout of `shape`. */
export interface RefFilter {
  shape: Shape;
  values: Float32Array;
}

/**
 * A box filtered on the filter grid by a plain O(N²) DFT in float64: the box placed with its centre at index 0,
 * transformed, multiplied by the filter (read from its half spectrum by Hermitian symmetry), transformed back, and
 * the box's positions read out.
 */
export function filterBoxDirect(t: ArrayLike<number>, box: Shape, filter: RefFilter): Float64Array {
  const g = filter.shape;
  const n = voxels(g);
  const hx = Math.floor(g[2] / 2) + 1;
  const c = [Math.floor(box[0] / 2), Math.floor(box[1] / 2), Math.floor(box[2] / 2)];
  const mod = (v: number, m: number): number => ((v % m) + m) % m;
  const grid = new Float64Array(n);
  let p = 0;
  for (let z = 0; z < box[0]; z++)
    for (let y = 0; y < box[1]; y++)
      for (let x = 0; x < box[2]; x++, p++) grid[(mod(z - c[0]!, g[0]) * g[1] + mod(y - c[1]!, g[1])) * g[2] + mod(x - c[2]!, g[2])] = t[p] as number;
  const h = (kz: number, ky: number, kx: number): number => {
    if (kx < hx) return filter.values[(kz * g[1] + ky) * hx + kx]!;
    return filter.values[(mod(-kz, g[0]) * g[1] + mod(-ky, g[1])) * hx + (g[2] - kx)]!;
  };
  const out = new Float64Array(voxels(box));
  // Output only at the box's positions: Σ_k H(k) Σ_q grid(q) e^{2πi k (x − q)} / N.
  const nonzero: number[] = [];
  for (let i = 0; i < n; i++) if (grid[i] !== 0) nonzero.push(i);
  const spectrumRe = new Float64Array(n);
  const spectrumIm = new Float64Array(n);
  for (let kz = 0; kz < g[0]; kz++)
    for (let ky = 0; ky < g[1]; ky++)
      for (let kx = 0; kx < g[2]; kx++) {
        let re = 0;
        let im = 0;
        for (const i of nonzero) {
          const qz = Math.floor(i / (g[1] * g[2]));
          const qy = Math.floor(i / g[2]) % g[1];
          const qx = i % g[2];
          const phase = -2 * Math.PI * ((kz * qz) / g[0] + (ky * qy) / g[1] + (kx * qx) / g[2]);
          re += grid[i]! * Math.cos(phase);
          im += grid[i]! * Math.sin(phase);
        }
        const w = h(kz, ky, kx);
        const k = (kz * g[1] + ky) * g[2] + kx;
        spectrumRe[k] = re * w;
        spectrumIm[k] = im * w;
      }
  p = 0;
  for (let z = 0; z < box[0]; z++)
    for (let y = 0; y < box[1]; y++)
      for (let x = 0; x < box[2]; x++, p++) {
        const qz = mod(z - c[0]!, g[0]);
        const qy = mod(y - c[1]!, g[1]);
        const qx = mod(x - c[2]!, g[2]);
        let acc = 0;
        for (let kz = 0; kz < g[0]; kz++)
          for (let ky = 0; ky < g[1]; ky++)
            for (let kx = 0; kx < g[2]; kx++) {
              const k = (kz * g[1] + ky) * g[2] + kx;
              const phase = 2 * Math.PI * ((kz * qz) / g[0] + (ky * qy) / g[1] + (kx * qx) / g[2]);
              acc += spectrumRe[k]! * Math.cos(phase) - spectrumIm[k]! * Math.sin(phase);
            }
        out[p] = acc / n;
      }
  return out;
}

/** The target's variance: local variances at most 1e-4 × it are flat (score 0), as the native kFlatVariance. */
function flatVariance(f: Float32Array): number {
  let m = 0;
  for (const v of f) m += v;
  m /= f.length;
  let q = 0;
  for (const v of f) q += (v - m) ** 2;
  return 1e-4 * (q / f.length);
}

/** The score map of one rotation, exactly as documented in native/README.md. */
export function referenceScore(
  score: RefScore,
  f: Float32Array,
  tile: Shape,
  t: Float32Array,
  m: Float32Array,
  box: Shape,
  R: ArrayLike<number>,
  targetMask?: Float32Array,
  filter?: RefFilter,
): Float64Array {
  const rotated = rotateBox(t, box, R);
  const tR = filter ? filterBoxDirect(rotated, box, filter) : rotated;
  const n = voxels(tile);
  const flat = flatVariance(f);
  if (score === 'cc') return correlate(f, tile, tR, box);
  const mR = score === 'flc-sphere' ? Float64Array.from(m) : rotateBox(m, box, R);
  const f2 = f.map((v) => v * v);
  if (score === 'mcc') {
    const mf = targetMask ?? new Float32Array(n).fill(1);
    const fm = f.map((v, i) => v * mf[i]!);
    const f2m = f2.map((v, i) => v * mf[i]!);
    const t1 = tR.map((v, i) => v * mR[i]!);
    const t2 = tR.map((v, i) => v * v * mR[i]!);
    const O = correlate(mf, tile, mR, box);
    const Sf = correlate(fm, tile, mR, box);
    const Sff = correlate(f2m, tile, mR, box);
    const St = correlate(mf, tile, t1, box);
    const Stt = correlate(mf, tile, t2, box);
    const Sft = correlate(fm, tile, t1, box);
    let maxO = -Infinity;
    for (const v of O) maxO = Math.max(maxO, v);
    return O.map((o, i) => {
      if (!(o >= 0.3 * maxO) || !(o > 0)) return 0;
      const varF = Sff[i]! - (Sf[i]! * Sf[i]!) / o;
      const varT = Stt[i]! - (St[i]! * St[i]!) / o;
      if (!(varF > flat * o) || !(varT > 1e-5 * Stt[i]!)) return 0;
      const s = (Sft[i]! - (Sf[i]! * St[i]!) / o) / Math.sqrt(varF * varT);
      return Math.min(1, Math.max(-1, s));
    });
  }
  // flc-sphere and flc: template normalised under the (rotated for flc) mask, times the mask.
  let sm = 0;
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < tR.length; i++) {
    sm += mR[i]!;
    s1 += mR[i]! * tR[i]!;
    s2 += mR[i]! * tR[i]! * tR[i]!;
  }
  const mu = s1 / sm;
  const sigma = Math.sqrt(s2 / sm - mu * mu);
  const tn = tR.map((v, i) => ((v - mu) / sigma) * mR[i]!);
  const cc = correlate(f, tile, tn, box);
  const e1 = correlate(f, tile, mR, box);
  const e2 = correlate(f2, tile, mR, box);
  return cc.map((v, i) => {
    const a = e1[i]! / sm;
    const b = e2[i]! / sm;
    const variance = b - a * a;
    if (!(variance > flat)) return 0;
    return Math.min(1, Math.max(-1, v / (sm * Math.sqrt(variance))));
  });
}

/** Best score and lowest-index argmax over rotations, the documented tie rule. */
export function referenceMatch(
  score: RefScore,
  f: Float32Array,
  tile: Shape,
  t: Float32Array,
  m: Float32Array,
  box: Shape,
  rotations: number[][],
  targetMask?: Float32Array,
  filter?: RefFilter,
): { scores: Float64Array; indices: Int32Array; maps: Float64Array[] } {
  const n = voxels(tile);
  const scores = new Float64Array(n).fill(-Infinity);
  const indices = new Int32Array(n).fill(-1);
  const maps: Float64Array[] = [];
  rotations.forEach((R, r) => {
    const map = referenceScore(score, f, tile, t, m, box, R, targetMask, filter);
    maps.push(map);
    for (let i = 0; i < n; i++) {
      if (map[i]! > scores[i]!) {
        scores[i] = map[i]!;
        indices[i] = r;
      }
    }
  });
  return { scores, indices, maps };
}

/** A spherical mask of radius r (voxels) about box // 2, soft edge of one voxel. */
export function sphereMask(box: Shape, radius: number): Float32Array {
  const out = new Float32Array(voxels(box));
  const c = box.map((v) => Math.floor(v / 2));
  let i = 0;
  for (let z = 0; z < box[0]; z++)
    for (let y = 0; y < box[1]; y++)
      for (let x = 0; x < box[2]; x++, i++) {
        const d = Math.hypot(z - c[0]!, y - c[1]!, x - c[2]!);
        out[i] = d <= radius ? 1 : d <= radius + 1 ? radius + 1 - d : 0;
      }
  return out;
}
