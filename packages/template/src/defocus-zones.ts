import { invalidOption, type Zyx } from '@tme/formats';
import { electronWavelength, DEFAULT_MICROSCOPE } from './ctf';
import type { FilterOptions } from './compose';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/** +1 or −1: the sign of the defocus gradient (IMOD/Dynamo: +1); 0: one defocus for the whole tomogram. */
export type DefocusHandedness = -1 | 0 | 1;

export interface DefocusZonesInput {
  /** The template's filter options: per-tilt CTFs (`tiltWeighting`) or one CTF (`ctf`). */
  options: FilterOptions;
  /** The tomogram's shape (z, y, x) and voxel size (Å). */
  shape: Zyx;
  voxelSize: Zyx;
  handedness: DefocusHandedness;
}

export interface DefocusZones {
  /** Zones per axis (z, y, x): 1 along the tilt axis, and wherever the defocus changes too little to matter. */
  splits: Zyx;
  /** The largest defocus change (Å) a zone may hold: a phase error of at most π/4 at the filter's highest frequency. */
  boundAngstrom: number;
  /** The largest defocus change (Å) over the whole tomogram, over all tilts. */
  spanAngstrom: number;
  /** The filter options of each zone, z-major then y then x: the CTFs at the zone's centre. */
  options: FilterOptions[];
}

/** Zone boundaries along one axis: the same rounding as the engine's tiles, so a multiple of the zones aligns. */
export function zoneRanges(length: number, parts: number): Array<[start: number, size: number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < parts; i++) {
    const a = Math.floor((i * length) / parts);
    out.push([a, Math.floor(((i + 1) * length) / parts) - a]);
  }
  return out;
}

/**
 * CTF zones: where one CTF per tilt stands for every voxel. Tomogram frame (x, y, z; tilt axis y, or x), origin at
 * the volume's centre, tilt angles as IMOD's (a view at θ projects onto x' = x·cos θ + z·sin θ, checked against a
 * reconstruction in test/e2e/tilt-convention.test.ts). The beam runs along (−sin θ, cos θ) in (x, z), so a point at
 * (x, z) is seen in the tilt at θ with defocus Δf + h·(x·sin θ − z·cos θ), Δf the tilt's defocus at the centre and h
 * the handedness: h = +1 makes the right side (x > 0) of a positive tilt more underfocused, the convention of IMOD,
 * Dynamo and novaCTF. (The x and z terms are tied: flipping one sign alone is not a rotation of the specimen.)
 *
 * Bound: a defocus error δ turns the CTF's phase by π·λ·k²·δ. A zone's filter uses its centre's defocus, so a voxel
 * is off by at most half the zone's span; keeping π·λ·k²·span/2 ≤ π/4 at the filter's highest frequency k (the
 * low-pass, else Nyquist) gives span ≤ 1/(2·λ·k²): 10 150 Å at 10 Å voxels, 2 540 Å at 5 Å, 406 Å at 2 Å (300 kV).
 * Each axis across the gradient gets half of it.
 */
export function defocusZones(input: DefocusZonesInput): DefocusZones {
  const { options, shape, voxelSize, handedness } = input;
  if (handedness !== -1 && handedness !== 0 && handedness !== 1) throw invalidOption('defocus handedness', '1, −1 or 0', handedness);
  const tw = options.tiltWeighting;
  const ctf = options.ctf;
  const perTilt = tw?.tilts.filter((t) => t.ctf !== undefined) ?? [];
  const one: DefocusZones = { splits: [1, 1, 1], boundAngstrom: Infinity, spanAngstrom: 0, options: [options] };
  if (handedness === 0 || (perTilt.length === 0 && ctf === undefined)) return one;

  const voltage = (perTilt[0]?.ctf ?? ctf?.ctf)?.voltage ?? DEFAULT_MICROSCOPE.voltage;
  const lambda = electronWavelength(voltage);
  const nyquist = 1 / (2 * Math.min(...voxelSize));
  const lowpass = options.bandPass?.lowpassAngstrom;
  const kMax = lowpass !== undefined ? Math.min(nyquist, 1 / lowpass) : nyquist;
  const bound = 1 / (2 * lambda * kMax * kMax);

  const axis = (tw?.tiltAxis ?? ctf?.tiltAxis ?? 'y') === 'y' ? 2 : 1;
  const angles = perTilt.length > 0 ? perTilt.map((t) => (t.angle * Math.PI) / 180) : [0];
  const maxSin = Math.max(...angles.map((a) => Math.abs(Math.sin(a))));
  const maxCos = Math.max(...angles.map((a) => Math.abs(Math.cos(a))));
  const lengthZ = shape[0] * voxelSize[0];
  const lengthA = (shape[axis] as number) * (voxelSize[axis] as number);
  // Only a per-tilt CTF sees the across-axis term: one CTF for the series stands for the untilted view.
  const spanA = perTilt.length > 0 ? lengthA * maxSin : 0;
  const spanZ = lengthZ * maxCos;
  const splits: [number, number, number] = [1, 1, 1];
  splits[0] = Math.max(1, Math.min(shape[0], Math.ceil(spanZ / (bound / 2))));
  splits[axis] = Math.max(1, Math.min(shape[axis] as number, Math.ceil(spanA / (bound / 2))));
  if (splits[0] === 1 && splits[axis] === 1) return { ...one, boundAngstrom: bound, spanAngstrom: spanA + spanZ };

  const centre = (start: number, size: number, n: number, voxel: number): number => (start + (size - 1) / 2 - (n - 1) / 2) * voxel;
  const zones: FilterOptions[] = [];
  for (const [z0, zn] of zoneRanges(shape[0], splits[0])) {
    for (const [y0, yn] of zoneRanges(shape[1], splits[1])) {
      for (const [x0, xn] of zoneRanges(shape[2], splits[2])) {
        const z = centre(z0, zn, shape[0], voxelSize[0]);
        const a = axis === 2 ? centre(x0, xn, shape[2], voxelSize[2]) : centre(y0, yn, shape[1], voxelSize[1]);
        if (tw && perTilt.length > 0) {
          zones.push({ ...options, tiltWeighting: { ...tw, positionAngstrom: { x: a, z }, defocusHandedness: handedness } });
        } else if (ctf) {
          // θ = 0: the untilted view's defocus at this height.
          zones.push({ ...options, ctf: { ...ctf, ctf: { ...ctf.ctf, defocus: ctf.ctf.defocus - handedness * z } } });
        }
      }
    }
  }
  return { splits, boundAngstrom: bound, spanAngstrom: spanA + spanZ, options: zones };
}
