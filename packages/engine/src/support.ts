import type { Zyx } from '@tme/formats';
import type { BackendScore, Interpolation, RotationMode } from './backend';
import { boxCentre } from './rotate';

/**
 * The template's support: the centred sub-box of the template box (its index s // 2 is the box's b // 2) outside
 * which every kernel the backend correlates is zero, for every rotation. The tile needs only support − 1 voxels of
 * padding and tiles overlap by as much, instead of a whole box: a 32³ template with a sphere of radius 7 correlates
 * a 15³ kernel, and a 200×200×100 slab then pads to 216×216×120 instead of 240×240×135.
 *
 * - cc correlates the rotated template itself: the box.
 * - flc-sphere multiplies the rotated, filtered, normalised template by the unrotated mask: the mask's bounding box,
 *   made symmetric about the centre.
 * - flc and mcc rotate the mask too: a sampled mask is non-zero within (reach of the interpolation) of a non-zero
 *   voxel, so the support is the ball of the mask's farthest non-zero voxel from the centre plus √3 (linear) or 2√3
 *   (cubic) voxels.
 * - Fourier-space rotation correlates the whole box.
 */
export function templateSupport(mask: Float32Array, box: Zyx, score: BackendScore, interpolation: Interpolation,
  rotationMode: RotationMode): Zyx {
  if (score === 'cc' || rotationMode === 'fourier') return [box[0], box[1], box[2]];
  const c = boxCentre(box);
  const [bz, by, bx] = box;
  const half = [0, 0, 0];
  let farthest = 0;
  for (let z = 0, i = 0; z < bz; z++) {
    for (let y = 0; y < by; y++) {
      for (let x = 0; x < bx; x++, i++) {
        if (mask[i] === 0) continue;
        const d = [Math.abs(z - c[0]), Math.abs(y - c[1]), Math.abs(x - c[2])] as const;
        for (let a = 0; a < 3; a++) if ((d[a] as number) > (half[a] as number)) half[a] = d[a] as number;
        const r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        if (r2 > farthest) farthest = r2;
      }
    }
  }
  if (score !== 'flc-sphere') {
    const reach = Math.floor(Math.sqrt(farthest) + (interpolation === 'cubic' ? 2 : 1) * Math.sqrt(3));
    half.fill(reach);
  }
  return [0, 1, 2].map((a) => {
    const b = box[a] as number;
    const lo = Math.min(half[a] as number, c[a] as number);
    const hi = Math.min(half[a] as number, b - 1 - (c[a] as number));
    // lo − hi is 0 or 1 (c = b // 2); a sub-box of lo + hi + 1 voxels then has its centre index at lo.
    return lo + hi + 1;
  }) as unknown as Zyx;
}
