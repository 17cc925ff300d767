import { invalidOption, TmeError, type Zyx } from '@tme/formats';

/**
 * One particle to export: where the template's centre (box//2) sits in the matched tomogram and how the template
 * is turned there.
 */
export interface ExportPick {
  /** Position of the template centre in the matched tomogram, (z, y, x) 0-based voxel indices; fractions allowed. */
  position: Zyx;
  /** 3×3 row-major rotation in the xyz frame, ACTIVE template→tomogram (the contract's convention). */
  rotation: Float64Array;
  /** The score of the pick (written as a figure of merit / cc). */
  score: number;
  /** Optional small integer, e.g. the template index (pyTME's `detail`, RELION's class). */
  detail?: number;
  /** Extra per-pick values kept for provenance (not interpreted). */
  extra?: Readonly<Record<string, number | string>>;
}

/** The matched tomogram: what coordinates are relative to. */
export interface TomogramGeometry {
  /** (z, y, x) voxels of the matched (possibly binned) tomogram. */
  shape: Zyx;
  /** Isotropic voxel size of the matched tomogram, Å. */
  voxelSize: number;
  /** Tomogram name used in rlnTomoName / rlnMicrographName / file names. */
  name: string;
}

/** Checks the geometry once so every writer can trust it. */
export function validateGeometry(geometry: TomogramGeometry): void {
  if (!geometry.shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw invalidOption('tomogram shape', 'three positive integers', [...geometry.shape].join(','));
  }
  if (!(Number.isFinite(geometry.voxelSize) && geometry.voxelSize > 0)) {
    throw invalidOption('voxelSize', 'number > 0 (Å)', geometry.voxelSize);
  }
  if (!/^[A-Za-z0-9._+-]+$/.test(geometry.name)) {
    throw invalidOption('tomogram name', 'letters, digits, . _ + - only (it becomes a file name and a STAR value)', geometry.name);
  }
}

/** Checks that every pick has a finite position, a 9-value rotation and a finite score. */
export function validatePicks(picks: readonly ExportPick[]): void {
  picks.forEach((p, i) => {
    if (p.position.length !== 3 || !p.position.every(Number.isFinite)) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `pick ${i}: position must be three finite numbers (z, y, x)`);
    }
    if (p.rotation.length !== 9 || !p.rotation.every(Number.isFinite)) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `pick ${i}: rotation must be 9 finite numbers (3×3 row-major)`);
    }
    if (!Number.isFinite(p.score)) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `pick ${i}: score must be a finite number`);
    }
  });
}
