import { createVolume, invalidOption, TmeError, type Volume, type Zyx } from '@tme/formats';
import { erf } from './erf';
import { nextFastEvenSize } from './fast-size';
import { ATOMIC_MASS, elementKey, PENG_1996, type ScatteringFactor } from './scattering-factors';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** Atoms as structure-of-arrays (what @tme/formats' readStructure returns). Coordinates in Å. */
export interface AtomicModel {
  x: Float64Array;
  y: Float64Array;
  z: Float64Array;
  /** Element symbols ("C", "FE", "Fe"...). */
  element: readonly string[];
  /** Isotropic B-factors (Å²). */
  bFactor?: Float32Array | Float64Array;
  /** Occupancies (0..1). */
  occupancy?: Float32Array | Float64Array;
}

export interface SimulateOptions {
  /** Voxel size of the map (Å): the target's. Required. */
  voxelSize: number;
  /** Box edge (voxels), one value for a cube or (z, y, x). Default: fast even cube ≥ extent + 2·margin. */
  boxSize?: number | Zyx;
  /** Empty space around the molecule (Å) for the default box. Default 10. */
  marginAngstrom?: number;
  /** Use each atom's B-factor. Default true (atoms without one get 0). */
  useBFactors?: boolean;
  /** B-factor (Å²) added to every atom. Default 0. */
  extraBFactor?: number;
  /**
   * Gaussian low-pass to this resolution (Å), gain 0.5 at 1/resolution: applied exactly as an extra
   * B = 4·ln 2·resolution² on every atom (a Gaussian in Fourier space is a B-factor). Default: none.
   */
  lowpassAngstrom?: number;
  /** Atoms with an element missing from the table: 'error' (default), 'skip', or 'carbon' (treat as C). */
  unknownElements?: 'error' | 'skip' | 'carbon';
  /** The largest box edge (voxels) the caller can use, e.g. the target's largest edge: a model whose default box
   *  would be larger is refused before anything is allocated (one stray atom far away). Default 1024. */
  maxEdge?: number;
  /** The model's file, for error messages. */
  file?: string;
}

export interface SimulatedDensity {
  /** Voxel-averaged Coulomb potential (Å⁻², Peng units), origin set so voxel coordinates map back to the model's Å. */
  volume: Volume;
  /** Mass-weighted centre of the atoms (Å, z, y, x), placed on voxel box//2. */
  centerAngstrom: Zyx;
  /** Atoms simulated (after skipping unknown elements). */
  atomCount: number;
}

function factorFor(element: string, policy: 'error' | 'skip' | 'carbon'): ScatteringFactor | null {
  const f = PENG_1996[elementKey(element)];
  if (f) return f;
  if (policy === 'carbon') return PENG_1996.C as ScatteringFactor;
  if (policy === 'skip') return null;
  throw new TmeError('ERR_TME_UNSUPPORTED', `No electron scattering factor for element "${element}" (known: ${Object.keys(PENG_1996).join(', ')}); set unknownElements to 'skip' or 'carbon'`);
}

/** Mass-weighted centre (Å, z, y, x) of the atoms whose element is known (others weigh as carbon). */
export function massCenter(model: AtomicModel): Zyx {
  let m = 0;
  let cx = 0;
  let cy = 0;
  let cz = 0;
  for (let j = 0; j < model.x.length; j++) {
    const w = (ATOMIC_MASS[elementKey(model.element[j] ?? 'C')] ?? 12.011) * (model.occupancy?.[j] ?? 1);
    m += w;
    cx += w * (model.x[j] as number);
    cy += w * (model.y[j] as number);
    cz += w * (model.z[j] as number);
  }
  return [cz / m, cy / m, cx / m];
}

/**
 * Electron-scattering potential of an atomic model on a grid: each atom is Σ_i a_i·(4π/(b_i+B))^{3/2}·
 * exp(−4π²r²/(b_i+B)) (Peng 1996 5-Gaussian fits), integrated exactly over each voxel (erf products) so the
 * total is Σ f(0) at any voxel size. The molecule's mass-weighted centre sits on voxel box//2.
 */
export function simulateDensity(model: AtomicModel, options: SimulateOptions): SimulatedDensity {
  const v = options.voxelSize;
  if (!(Number.isFinite(v) && v > 0)) throw invalidOption('voxelSize', 'a voxel size > 0 Å', v);
  const n = model.x.length;
  if (n === 0 || model.y.length !== n || model.z.length !== n || model.element.length !== n) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `Expected an atomic model with matching x, y, z, element arrays of length ≥ 1 but received ${n} atoms`);
  }
  const margin = options.marginAngstrom ?? 10;
  if (!(margin >= 0)) throw invalidOption('marginAngstrom', 'a margin ≥ 0 Å', margin);
  const extraB = options.extraBFactor ?? 0;
  if (!Number.isFinite(extraB)) throw invalidOption('extraBFactor', 'a finite B-factor in Å²', extraB);
  const lp = options.lowpassAngstrom;
  if (lp !== undefined && !(lp > 0)) throw invalidOption('lowpassAngstrom', 'a resolution > 0 Å', lp);
  const lowpassB = lp === undefined ? 0 : 4 * Math.LN2 * lp * lp;
  const policy = options.unknownElements ?? 'error';
  const useB = options.useBFactors ?? true;

  const center = massCenter(model);
  let shape: Zyx;
  if (options.boxSize === undefined) {
    let extent = 0;
    for (let j = 0; j < n; j++) {
      extent = Math.max(extent, Math.abs((model.z[j] as number) - center[0]), Math.abs((model.y[j] as number) - center[1]), Math.abs((model.x[j] as number) - center[2]));
    }
    const wanted = (2 * (extent + margin)) / v + 1;
    const maxEdge = options.maxEdge ?? 1024;
    if (!(wanted <= maxEdge)) {
      throw new TmeError(
        'ERR_TME_MISMATCH',
        `atoms up to ${extent.toPrecision(4)} Å from the model's centre need a ${Math.ceil(wanted)}-voxel box at ${v} Å; ` +
          `at most ${maxEdge} fits (a stray atom? check the model's coordinates)`,
        options.file === undefined ? undefined : { file: options.file },
      );
    }
    const edge = nextFastEvenSize(wanted);
    shape = [edge, edge, edge];
  } else {
    const b = options.boxSize;
    shape = typeof b === 'number' ? [b, b, b] : [b[0], b[1], b[2]];
    const maxEdge = options.maxEdge ?? 1024;
    if (!shape.every((s) => Number.isInteger(s) && s > 0 && s <= maxEdge)) throw invalidOption('boxSize', `integer voxels from 1 to ${maxEdge}`, String(b), options.file);
  }
  const [nz, ny, nx] = shape;
  const c: Zyx = [Math.floor(nz / 2), Math.floor(ny / 2), Math.floor(nx / 2)];
  const data = new Float64Array(nz * ny * nx);
  const inv = 1 / (v * v * v);
  let atomCount = 0;
  const wz = new Float64Array(4096);
  const wy = new Float64Array(4096);
  const wx = new Float64Array(4096);

  // Voxel-integrated 1D Gaussian weights on [lo, hi] for a centre at grid coordinate u (voxels), σ in voxels.
  const weights = (out: Float64Array, u: number, sigma: number, lo: number, hi: number) => {
    const s = Math.SQRT2 * sigma;
    let prev = erf((lo - 0.5 - u) / s);
    for (let g = lo; g <= hi; g++) {
      const next = erf((g + 0.5 - u) / s);
      out[g - lo] = 0.5 * (next - prev);
      prev = next;
    }
  };

  for (let j = 0; j < n; j++) {
    const f = factorFor(model.element[j] ?? '', policy);
    if (!f) continue;
    atomCount++;
    const occ = model.occupancy?.[j] ?? 1;
    const bAtom = (useB ? model.bFactor?.[j] ?? 0 : 0) + extraB + lowpassB;
    const uz = ((model.z[j] as number) - center[0]) / v + c[0];
    const uy = ((model.y[j] as number) - center[1]) / v + c[1];
    const ux = ((model.x[j] as number) - center[2]) / v + c[2];
    for (let i = 0; i < 5; i++) {
      const bTot = (f.b[i] as number) + bAtom;
      if (!(bTot > 0)) throw new TmeError('ERR_TME_INVALID_OPTION', `Atom ${j}: total B-factor ${bTot} Å² is not positive`);
      const sigma = Math.sqrt(bTot / (8 * Math.PI * Math.PI)) / v; // voxels
      const r = 4.5 * sigma + 1;
      const z0 = Math.max(0, Math.floor(uz - r));
      const z1 = Math.min(nz - 1, Math.ceil(uz + r));
      const y0 = Math.max(0, Math.floor(uy - r));
      const y1 = Math.min(ny - 1, Math.ceil(uy + r));
      const x0 = Math.max(0, Math.floor(ux - r));
      const x1 = Math.min(nx - 1, Math.ceil(ux + r));
      if (z1 < z0 || y1 < y0 || x1 < x0 || z1 - z0 >= 4096 || y1 - y0 >= 4096 || x1 - x0 >= 4096) continue;
      weights(wz, uz, sigma, z0, z1);
      weights(wy, uy, sigma, y0, y1);
      weights(wx, ux, sigma, x0, x1);
      const amp = (f.a[i] as number) * occ * inv;
      for (let z = z0; z <= z1; z++) {
        const az = amp * (wz[z - z0] as number);
        for (let y = y0; y <= y1; y++) {
          const azy = az * (wy[y - y0] as number);
          const row = (z * ny + y) * nx;
          for (let x = x0; x <= x1; x++) data[row + x] = (data[row + x] as number) + azy * (wx[x - x0] as number);
        }
      }
    }
  }
  const origin: Zyx = [center[0] - c[0] * v, center[1] - c[1] * v, center[2] - c[2] * v];
  return { volume: createVolume(Float32Array.from(data), shape, v, origin), centerAngstrom: center, atomCount };
}

/** The atoms for which `keep(i)` is true, e.g. `subsetAtoms(s, (i) => s.residueName[i] !== 'HOH')` to drop waters. */
export function subsetAtoms(model: AtomicModel, keep: (index: number) => boolean): AtomicModel {
  const idx: number[] = [];
  for (let i = 0; i < model.x.length; i++) if (keep(i)) idx.push(i);
  const pick = (a: ArrayLike<number>) => Float64Array.from(idx, (i) => a[i] as number);
  const out: AtomicModel = { x: pick(model.x), y: pick(model.y), z: pick(model.z), element: idx.map((i) => model.element[i] as string) };
  if (model.bFactor) out.bFactor = Float32Array.from(idx, (i) => model.bFactor?.[i] as number);
  if (model.occupancy) out.occupancy = Float32Array.from(idx, (i) => model.occupancy?.[i] as number);
  return out;
}
