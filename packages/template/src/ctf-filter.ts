import type { Zyx } from '@tme/formats';
import { halfSpectrumAxes } from './fft';
import { ctfModel, ctfValue, type CtfFilterOptions } from './ctf';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

/**
 * The 3D CTF of a tilt series at one defocus: every Fourier point lies in the central plane of the tilt whose
 * in-plane direction passes through it, so it sees the CTF at its full |k|, with the plane's in-image
 * direction u = ±√(ka² + kz²) (ka = kx for a y tilt axis) and the tilt-axis component for astigmatism.
 * Multiply with a wedge or use per-tilt weighting for the sampled region.
 */
export function ctfFilter(shape: Zyx, voxelSize: Zyx, options: CtfFilterOptions): Float32Array {
  const model = ctfModel(options.ctf);
  const flip = options.flipPhase ?? true;
  const axis = options.tiltAxis ?? 'y';
  const { half, fz, fy, fx } = halfSpectrumAxes(shape, voxelSize);
  const out = new Float32Array(half[0] * half[1] * half[2]);
  let i = 0;
  for (let z = 0; z < half[0]; z++) {
    const kz = fz[z] as number;
    for (let y = 0; y < half[1]; y++) {
      const ky = fy[y] as number;
      for (let x = 0; x < half[2]; x++, i++) {
        const kx = fx[x] as number;
        const ka = axis === 'y' ? kx : ky;
        const kb = axis === 'y' ? ky : kx;
        const u = (ka < 0 || (ka === 0 && kz < 0) ? -1 : 1) * Math.sqrt(ka * ka + kz * kz);
        out[i] = axis === 'y' ? ctfValue(model, u, kb, flip) : ctfValue(model, kb, u, flip);
      }
    }
  }
  return out;
}
