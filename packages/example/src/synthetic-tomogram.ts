import { createVolume, invalidOption, type Volume, type Zyx } from '@tme/formats';
import { rotateBox } from '@tme/engine';
import { continuousWedgeFilter, electronWavelength, irfftn, rfftn, tiltWeightingFilter, DEFAULT_MICROSCOPE, type DefocusHandedness, type Tilt } from '@tme/template';
import { quaternionToMatrix, randomQuaternion, seededRandom } from '@tme/rotations';
import type { OrientedPosition } from './score-picks';

export interface SyntheticTomogramOptions {
  /** Tomogram shape (z, y, x) in voxels. Default (64, 128, 128). */
  shape?: Zyx;
  /** Number of particles placed. Default 12. */
  particles?: number;
  /** Seed of every random draw (positions, rotations, noise). Default 20261125. */
  seed?: number;
  /**
   * Signal-to-noise ratio: variance of the particles' signal (over the voxels they occupy, after the wedge) divided
   * by the variance of the added white noise. Default 0.1. 0 or Infinity: no noise.
   */
  snr?: number;
  /** Sampled tilt range (degrees) whose missing wedge is imposed; null for none. Default [-60, 60]. */
  tiltRange?: readonly [number, number] | null;
  /** Each particle's rotation (active, xyz frame), drawn with the generator's random numbers: e.g. a filament's,
   *  whose axes share a direction. Default uniform over all rotations. */
  orient?: (random: () => number) => Float64Array;
  /** Minimum distance between particle centres, in template boxes. Default 0.8. */
  minSeparation?: number;
  /** Features that are not the template but score high for many rotations (background normalisation's test case);
   *  default none. Drawn from their own random sequence, so the particles, rotations and noise stay as without. */
  decoys?: DecoyOptions;
  /** Image each particle through a tilt series with the CTF at its own defocus in each tilt, instead of imposing
   *  `tiltRange`'s wedge on the whole volume (then `tiltRange` must be left out or null). Default none. */
  tiltSeries?: TiltSeriesImaging;
}

/**
 * A tilt series that sees the defocus gradient (tilt axis y, IMOD's angles: a view at θ projects onto
 * x' = x·cos θ + z·sin θ). A particle at (x, z) Å from the tomogram's centre is seen in the tilt at θ with defocus
 * Δf + h·(x·sin θ − z·cos θ), Δf the tilt's defocus. Each particle's copy is multiplied in 3D Fourier space by the
 * sum of its tilts' central slabs, each slab weighted by that tilt's exposure filter and by the CTF at the particle's
 * defocus in that tilt (`tiltWeightingFilter` with `slabWidth: 'spacing'`, given per-tilt defocus values computed
 * here): by the central-slice theorem this is the reconstruction of its CTF-modulated projections. The copy is
 * filtered in a box padded by the CTF's delocalisation (λ·Δf·k at Nyquist) and added, cut at the tomogram's faces.
 */
export interface TiltSeriesImaging {
  /** The tilts: angle (degrees), accumulated dose (e⁻/Å²) and the CTF (defocus at the tomogram's centre, Å). */
  tilts: readonly Tilt[];
  /** h, the sign of the gradient: 1 IMOD/Dynamo's, −1 the other, 0 every particle at its tilt's Δf. Default 1. */
  defocusHandedness?: DefocusHandedness;
  /** |CTF| (a phase-flipped tomogram) instead of the signed CTF. Default false. */
  flipPhase?: boolean;
}

/**
 * A membrane-like sheet and gold-like beads. The sheet is a curved bilayer: two dense leaflets (Gaussian profile,
 * σ 1 voxel) `membraneSpacing` voxels apart across a paraboloid z = z0 + curvature·((x − xc)² + (y − yc)²) that spans
 * the whole tomogram in x and y; the beads are small spheres of very dense material. Contrasts are in units of the
 * largest |value| of the template, so the decoys scale with the particles.
 */
export interface DecoyOptions {
  /** Put the membrane in. Default true. */
  membrane?: boolean;
  /** Peak density of each leaflet, × the template's largest |value|. Default 0.6. */
  membraneContrast?: number;
  /** Distance between the leaflets' centres, voxels. Default 4. */
  membraneSpacing?: number;
  /** The paraboloid's curvature, 1/voxel. Default 0.004. */
  curvature?: number;
  /** How many of the particles sit next to the membrane (their centre half a box + 1 voxel off its mid-plane).
   *  Default a third. */
  nearMembrane?: number;
  /** Gold-like beads. Default 6. */
  beads?: number;
  /** Bead radius, voxels. Default 2.5. */
  beadRadius?: number;
  /** Bead density, × the template's largest |value|. Default 4. */
  beadContrast?: number;
}

/** Where the decoys went (truth for scoring: a pick within a bead's radius + a box/2 is a pick of the bead). */
export interface DecoyTruth {
  beads: Zyx[];
  /** The membrane's mid-plane height at (y, x); undefined without a membrane. */
  membraneZ?: (y: number, x: number) => number;
}

export interface SyntheticTomogram {
  tomogram: Volume;
  /** Where each particle's template centre (box//2) sits and how it is rotated (active, xyz frame). */
  truth: OrientedPosition[];
  /** The noise standard deviation that was added. */
  noiseStd: number;
  /** Where the decoys went, when options.decoys was given. */
  decoys?: DecoyTruth;
}

/**
 * A tomogram made the way a microscope would show copies of the template: each copy rotated (active, about the
 * template's box//2) and added at its position, the whole volume restricted to the sampled tilt range (the
 * missing wedge, beam along z, tilt axis y), then white Gaussian noise. Deterministic for a given seed.
 */
export function generateSyntheticTomogram(template: Volume, options: SyntheticTomogramOptions = {}): SyntheticTomogram {
  const shape: Zyx = options.shape ?? [64, 128, 128];
  const count = options.particles ?? 12;
  const snr = options.snr ?? 0.1;
  const series = options.tiltSeries;
  if (series && options.tiltRange) throw invalidOption('tiltRange', 'none with tiltSeries (the series is the wedge)', options.tiltRange);
  if (series && options.decoys) throw invalidOption('decoys', 'none with tiltSeries', 'decoys');
  const tiltRange = options.tiltRange === undefined && !series ? ([-60, 60] as const) : options.tiltRange ?? null;
  if (!shape.every((n) => Number.isInteger(n) && n > 0)) throw invalidOption('shape', 'three positive integers', shape);
  if (!(Number.isInteger(count) && count >= 0)) throw invalidOption('particles', 'an integer ≥ 0', count);
  if (!(snr >= 0)) throw invalidOption('snr', 'a number ≥ 0', snr);
  const t = template.shape;
  if (t.some((n, i) => n > (shape[i] as number))) {
    throw invalidOption('shape', `a tomogram at least as large as the template (${t.join('×')})`, shape);
  }
  const random = seededRandom(options.seed ?? 20261125);
  // Box–Muller: the noise is white Gaussian.
  const normal = (): number => {
    let u = 0;
    while (u === 0) u = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  const [nz, ny, nx] = shape;
  const half: Zyx = [t[0] >> 1, t[1] >> 1, t[2] >> 1];
  const minDistance = (options.minSeparation ?? 0.8) * Math.max(...t);
  const d = options.decoys;
  const decoyRandom = seededRandom((options.seed ?? 20261125) + 7919);
  const membrane = d && d.membrane !== false;
  const curvature = d?.curvature ?? 0.004;
  const z0 = nz / 2 + (decoyRandom() - 0.5) * nz * 0.2;
  const membraneZ = (y: number, x: number): number => z0 + curvature * ((x - nx / 2) ** 2 + (y - ny / 2) ** 2);
  const fits = (p: Zyx): boolean => p.every((v, i) => v >= (half[i] as number) && v - (half[i] as number) + (t[i] as number) <= (shape[i] as number));

  // Positions keep the whole template box inside the tomogram, so every particle is fully visible.
  const truth: OrientedPosition[] = [];
  // Particles next to the membrane first (decoy sequence): half a box + 1 voxel off its mid-plane, either side.
  const near = membrane ? Math.min(count, d?.nearMembrane ?? Math.floor(count / 3)) : 0;
  for (let attempt = 0; truth.length < near && attempt < 10000 * near; attempt++) {
    const y = half[1] + Math.floor(decoyRandom() * (ny - t[1] + 1));
    const x = half[2] + Math.floor(decoyRandom() * (nx - t[2] + 1));
    const side = decoyRandom() < 0.5 ? -1 : 1;
    const p: Zyx = [Math.round(membraneZ(y, x) + side * (half[0] + 1 + (d?.membraneSpacing ?? 4) / 2)), y, x];
    if (fits(p) && truth.every((q) => Math.hypot(q.position[0] - p[0], q.position[1] - p[1], q.position[2] - p[2]) >= minDistance)) {
      truth.push({ position: p, rotation: quaternionToMatrix(randomQuaternion(decoyRandom)) });
    }
  }
  for (let attempt = 0; truth.length < count && attempt < 10000 * Math.max(1, count); attempt++) {
    const p: Zyx = [
      half[0] + Math.floor(random() * (nz - t[0] + 1)),
      half[1] + Math.floor(random() * (ny - t[1] + 1)),
      half[2] + Math.floor(random() * (nx - t[2] + 1)),
    ];
    if (truth.every((q) => Math.hypot(q.position[0] - p[0], q.position[1] - p[1], q.position[2] - p[2]) >= minDistance)) {
      truth.push({ position: p, rotation: options.orient ? options.orient(random) : quaternionToMatrix(randomQuaternion(random)) });
    }
  }
  if (truth.length < count) {
    throw invalidOption('particles', `at most ${truth.length} particles for this tomogram and template size`, count);
  }

  const signal = new Float64Array(nz * ny * nx);
  const occupied = new Uint8Array(nz * ny * nx);
  const imaging = series ? tiltSeriesImager(series, template.voxelSize, shape, t) : undefined;
  for (const { position, rotation } of truth) {
    const rotated = rotateBox(template.data, t, rotation, 'cubic');
    if (imaging) {
      imaging(rotated, position, signal, occupied);
      continue;
    }
    for (let z = 0; z < t[0]; z++) {
      for (let y = 0; y < t[1]; y++) {
        for (let x = 0; x < t[2]; x++) {
          const v = rotated[(z * t[1] + y) * t[2] + x] as number;
          const i = ((position[0] - half[0] + z) * ny + (position[1] - half[1] + y)) * nx + (position[2] - half[2] + x);
          signal[i] = (signal[i] as number) + v;
          if (v !== 0) occupied[i] = 1;
        }
      }
    }
  }

  let decoyTruth: DecoyTruth | undefined;
  if (d) {
    let templateMax = 0;
    for (const v of template.data) templateMax = Math.max(templateMax, Math.abs(v));
    const beads: Zyx[] = [];
    const radius = d.beadRadius ?? 2.5;
    // Beads stay a box away from particles (a pick near a bead is the bead's) and a box from each other.
    for (let attempt = 0; beads.length < (d.beads ?? 6) && attempt < 100000; attempt++) {
      const b: Zyx = [
        Math.ceil(radius) + decoyRandom() * (nz - 2 * Math.ceil(radius) - 1), Math.ceil(radius) + decoyRandom() * (ny - 2 * Math.ceil(radius) - 1),
        Math.ceil(radius) + decoyRandom() * (nx - 2 * Math.ceil(radius) - 1),
      ];
      const far = (q: Zyx): boolean => Math.hypot(q[0] - b[0], q[1] - b[1], q[2] - b[2]) >= Math.max(...t);
      if (truth.every((q) => far(q.position)) && beads.every(far) && (!membrane || Math.abs(b[0] - membraneZ(b[1], b[2])) > Math.max(...t))) beads.push(b);
    }
    const leaflet = (d.membraneContrast ?? 0.6) * templateMax;
    const spacing = d.membraneSpacing ?? 4;
    const dense = (d.beadContrast ?? 4) * templateMax;
    for (let z = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const i = (z * ny + y) * nx + x;
          let v = 0;
          if (membrane) {
            const off = z - membraneZ(y, x);
            v += leaflet * (Math.exp(-0.5 * (off - spacing / 2) ** 2) + Math.exp(-0.5 * (off + spacing / 2) ** 2));
          }
          for (const b of beads) {
            // A sphere with a one-voxel soft edge.
            const r = Math.hypot(z - b[0], y - b[1], x - b[2]);
            if (r < radius + 1) v += dense * Math.min(1, Math.max(0, radius + 0.5 - r));
          }
          signal[i] = (signal[i] as number) + v;
        }
      }
    }
    decoyTruth = { beads, ...(membrane ? { membraneZ } : {}) };
  }

  let filtered: ArrayLike<number> = signal;
  if (tiltRange) {
    const spectrum = rfftn(signal, shape);
    const wedge = continuousWedgeFilter(shape, [1, 1, 1], { tiltRange: [tiltRange[0], tiltRange[1]] });
    for (let k = 0; k < wedge.length; k++) {
      const w = wedge[k] as number;
      spectrum.re[k] = (spectrum.re[k] as number) * w;
      spectrum.im[k] = (spectrum.im[k] as number) * w;
    }
    filtered = irfftn(spectrum);
  }

  let n = 0; let sum = 0; let sumSq = 0;
  for (let i = 0; i < occupied.length; i++) {
    if (!occupied[i]) continue;
    const v = filtered[i] as number;
    n += 1; sum += v; sumSq += v * v;
  }
  const signalVar = n > 0 ? Math.max(0, sumSq / n - (sum / n) ** 2) : 0;
  const noiseStd = snr > 0 && Number.isFinite(snr) ? Math.sqrt(signalVar / snr) : 0;

  const data = new Float32Array(nz * ny * nx);
  for (let i = 0; i < data.length; i++) data[i] = (filtered[i] as number) + (noiseStd > 0 ? noiseStd * normal() : 0);
  return { tomogram: createVolume(data, shape, template.voxelSize), truth, noiseStd, ...(decoyTruth ? { decoys: decoyTruth } : {}) };
}

/**
 * The imaging of one particle through `series`: filters the rotated copy (box `t`, centre box//2 at `position`) with
 * its own per-tilt CTFs and adds it into `signal`, marking the copy's voxels in `occupied`.
 */
function tiltSeriesImager(series: TiltSeriesImaging, voxelSize: Zyx, shape: Zyx, t: Zyx): (rotated: ArrayLike<number>, position: Zyx, signal: Float64Array, occupied: Uint8Array) => void {
  const hand = series.defocusHandedness ?? 1;
  if (hand !== 1 && hand !== -1 && hand !== 0) throw invalidOption('defocusHandedness', '1, −1 or 0', hand);
  if (series.tilts.length === 0) throw invalidOption('tiltSeries.tilts', 'at least one tilt', 'none');
  const [nz, ny, nx] = shape;
  // The padding holds the CTF's delocalisation of the finest detail, λ·Δf·k at Nyquist, so little of it wraps.
  let reach = 0;
  for (const tilt of series.tilts) {
    if (!tilt.ctf) continue;
    const lambda = electronWavelength(tilt.ctf.voltage ?? DEFAULT_MICROSCOPE.voltage);
    const extent = Math.hypot(nx * voxelSize[2], nz * voxelSize[0]) / 2;
    reach = Math.max(reach, (lambda * (Math.abs(tilt.ctf.defocus) + extent)) / (2 * Math.min(...voxelSize)));
  }
  const pad = Math.ceil(reach / Math.min(...voxelSize));
  // Powers of two: @tme/template's FFT is radix-2 there (Bluestein, ~4× slower, elsewhere).
  const side = (n: number): number => 2 ** Math.ceil(Math.log2(n + 2 * pad));
  const box: Zyx = [side(t[0]), side(t[1]), side(t[2])];
  const off: Zyx = [(box[0] - t[0]) >> 1, (box[1] - t[1]) >> 1, (box[2] - t[2]) >> 1];
  const centre = (i: number, n: number, voxel: number): number => (i - (n - 1) / 2) * voxel;
  return (rotated: ArrayLike<number>, position: Zyx, signal: Float64Array, occupied: Uint8Array): void => {
    const [bz, by, bx] = box;
    const padded = new Float64Array(bz * by * bx);
    for (let z = 0; z < t[0]; z++) {
      for (let y = 0; y < t[1]; y++) {
        for (let x = 0; x < t[2]; x++) {
          padded[((z + off[0]) * by + y + off[1]) * bx + x + off[2]] = rotated[(z * t[1] + y) * t[2] + x] as number;
        }
      }
    }
    // The particle's place in Å from the tomogram's centre (the same origin as the matcher's zones).
    const px = centre(position[2], nx, voxelSize[2]);
    const pz = centre(position[0], nz, voxelSize[0]);
    const tilts = series.tilts.map((tilt) => {
      if (!tilt.ctf) return tilt;
      const theta = (tilt.angle * Math.PI) / 180;
      return { ...tilt, ctf: { ...tilt.ctf, defocus: tilt.ctf.defocus + hand * (px * Math.sin(theta) - pz * Math.cos(theta)) } };
    });
    const filter = tiltWeightingFilter(box, voxelSize, { tilts, tiltAxis: 'y', flipPhase: series.flipPhase ?? false, slabWidth: 'spacing' });
    const spectrum = rfftn(padded, box);
    for (let k = 0; k < filter.length; k++) {
      const w = filter[k] as number;
      spectrum.re[k] = (spectrum.re[k] as number) * w;
      spectrum.im[k] = (spectrum.im[k] as number) * w;
    }
    const imaged = irfftn(spectrum);
    // Box voxel (z, y, x) lands at position − (off + t//2) + (z, y, x); what falls outside the tomogram is cut.
    const o0 = position[0] - off[0] - (t[0] >> 1);
    const o1 = position[1] - off[1] - (t[1] >> 1);
    const o2 = position[2] - off[2] - (t[2] >> 1);
    for (let z = Math.max(0, -o0); z < Math.min(bz, nz - o0); z++) {
      for (let y = Math.max(0, -o1); y < Math.min(by, ny - o1); y++) {
        const row = ((z + o0) * ny + y + o1) * nx + o2;
        for (let x = Math.max(0, -o2); x < Math.min(bx, nx - o2); x++) signal[row + x] = (signal[row + x] as number) + (imaged[(z * by + y) * bx + x] as number);
      }
    }
    for (let z = 0; z < t[0]; z++) {
      for (let y = 0; y < t[1]; y++) {
        for (let x = 0; x < t[2]; x++) {
          if (rotated[(z * t[1] + y) * t[2] + x] !== 0) occupied[((o0 + off[0] + z) * ny + o1 + off[1] + y) * nx + o2 + off[2] + x] = 1;
        }
      }
    }
  };
}

/** A tomogram of several templates' particles (MatchJob.moreTemplates' test case) and each template's truth. */
export interface MixedTomogram {
  tomogram: Volume;
  /** truth[k]: template k's particles, positions in the whole tomogram. */
  truth: OrientedPosition[][];
}

/**
 * Several templates' particles in one tomogram: the x axis is cut into one slab per template (shape[2] split evenly;
 * the last takes the rest), and each slab is a generateSyntheticTomogram of its template with `options` (the seed + k),
 * so no two particles overlap and each template's truth is exact. All templates share the voxel size.
 */
export function generateMixedTomogram(templates: readonly Volume[], options: SyntheticTomogramOptions & { shape: Zyx }): MixedTomogram {
  if (templates.length === 0) throw invalidOption('templates', 'at least one template', 0);
  const [nz, ny, nx] = options.shape;
  const width = Math.floor(nx / templates.length);
  const data = new Float32Array(nz * ny * nx);
  const truth: OrientedPosition[][] = [];
  templates.forEach((template, k) => {
    const x0 = k * width;
    const w = k === templates.length - 1 ? nx - x0 : width;
    const part = generateSyntheticTomogram(template, { ...options, shape: [nz, ny, w], seed: (options.seed ?? 20261125) + k });
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) {
      data.set(part.tomogram.data.subarray((z * ny + y) * w, (z * ny + y + 1) * w), (z * ny + y) * nx + x0);
    }
    truth.push(part.truth.map((t) => ({ position: [t.position[0], t.position[1], t.position[2] + x0], rotation: t.rotation })));
  });
  return { tomogram: createVolume(data, options.shape, (templates[0] as Volume).voxelSize), truth };
}
