import { TmeError, invalidOption } from './errors';
import type { Volume, VolumeData } from './volume';

/** Checks a volume handed to a writer: positive integer shape, matching data length, finite positive voxel size. */
export function checkVolume(volume: Volume<VolumeData>, path: string): void {
  if (typeof volume !== 'object' || volume === null) throw invalidOption('volume', 'a Volume', volume, path);
  const { shape, voxelSize, origin, data } = volume;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0 && n < 2 ** 31)) {
    throw invalidOption('volume.shape', 'three positive integers (z, y, x)', shape, path);
  }
  if (!ArrayBuffer.isView(data) || (data as { length: number }).length !== shape[0] * shape[1] * shape[2]) {
    throw new TmeError('ERR_TME_INVALID_OPTION',
      `Expected ${shape[0] * shape[1] * shape[2]} values for shape (z, y, x) = (${shape.join(', ')}) but received ${ArrayBuffer.isView(data) ? (data as { length: number }).length : typeof data}`, { file: path });
  }
  if (!Array.isArray(voxelSize) || voxelSize.length !== 3 || !voxelSize.every((v) => Number.isFinite(v) && v > 0)) {
    throw invalidOption('volume.voxelSize', 'three finite positive numbers (Å)', voxelSize, path);
  }
  if (!Array.isArray(origin) || origin.length !== 3 || !origin.every((v) => Number.isFinite(v))) {
    throw invalidOption('volume.origin', 'three finite numbers (Å)', origin, path);
  }
}
