import { TmeError } from './errors';

/** (z, y, x): the order of every per-axis tuple inside tme. x is the fastest-varying axis (MRC order). */
export type Zyx<T = number> = readonly [z: T, y: T, x: T];

export type VolumeData = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array;

/**
 * A 3D array with its geometry. `data[(z * ny + y) * nx + x]`; voxelSize and origin in Å, in (z, y, x) order.
 */
export interface Volume<D extends VolumeData = Float32Array> {
  data: D;
  shape: Zyx;
  voxelSize: Zyx;
  origin: Zyx;
}

export function voxelCount(shape: Zyx): number {
  return shape[0] * shape[1] * shape[2];
}

/** Builds a volume and checks once that the data length matches the shape. */
export function createVolume<D extends VolumeData = Float32Array>(
  data: D,
  shape: Zyx,
  voxelSize: Zyx | number = 1,
  origin: Zyx = [0, 0, 0],
): Volume<D> {
  if (!shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new TmeError('ERR_TME_INVALID_OPTION', `Expected positive integer shape for volume but received [${shape.join(', ')}]`);
  }
  if (data.length !== voxelCount(shape)) {
    throw new TmeError(
      'ERR_TME_INVALID_OPTION',
      `Expected ${voxelCount(shape)} values for a volume of shape (z, y, x) = (${shape.join(', ')}) but received ${data.length}`,
    );
  }
  const v: Zyx = typeof voxelSize === 'number' ? [voxelSize, voxelSize, voxelSize] : voxelSize;
  return { data, shape: [shape[0], shape[1], shape[2]], voxelSize: [v[0], v[1], v[2]], origin: [origin[0], origin[1], origin[2]] };
}

/** A zero-filled float32 volume. */
export function zeros(shape: Zyx, voxelSize: Zyx | number = 1): Volume {
  return createVolume(new Float32Array(voxelCount(shape)), shape, voxelSize);
}
