import { starNumbers, TmeError, type StarBlock, type StarFile, type StarLoop, type Zyx } from '@tme/formats';
import { pytmeEulerToMatrix, relionEulerToMatrix } from '@tme/rotations';
import type { ExportPick } from './pick';
import { positionFromCentredAngst, type CentreConvention } from './relion5-particles';

/**
 * What a particles STAR's numbers mean:
 * - 'pytme-relion4': pyTME postprocess `relion4`: rlnCoordinateX/Y/Z = voxel indices of the matched tomogram and
 *   rlnAngleRot/Tilt/Psi = pyTME's extrinsic zyz angles copied as they are (NOT RELION's angles).
 * - 'pytme-relion5': pyTME `relion5` (`# version 50001`): the same angles, and rlnCoordinateX/Y/Z = centred Å,
 *   (index − shape//2)·voxel.
 * - 'relion': RELION 3.1/4 (tme's `--format relion`, pytom): rlnCoordinateX/Y/Z in bin-1 pixels, RELION angles,
 *   optional rlnOriginX/Y/ZAngst (position = coordinate − origin/pixel).
 * - 'relion5': RELION 5: rlnCenteredCoordinateX/Y/ZAngst, RELION angles.
 */
export type StarPicksConvention = 'pytme-relion4' | 'pytme-relion5' | 'relion' | 'relion5';

export interface ReadStarPicksOptions {
  /** Default: detected ('pytmeScore' column → pyTME, with `# version 50001` → its relion5 flavour; centred labels → relion5). */
  convention?: StarPicksConvention;
  /** Shape (z, y, x) of the matched tomogram; needed for centred coordinates. */
  shape?: Zyx;
  /** Voxel size of the matched tomogram, Å; needed for centred coordinates and origins. */
  voxelSize?: number;
  /** Binning of the matched tomogram vs bin-1 coordinates. Default: from rlnTomoTiltSeriesPixelSize, else 1. */
  binning?: number;
  /** Centre of RELION 5 centred coordinates. Default 'relion' (size/2.0). */
  centreConvention?: CentreConvention;
}

export interface StarPicks {
  picks: ExportPick[];
  convention: StarPicksConvention;
  /** rlnTomoName, or the rlnMicrographName without folder and extension, of the first row. */
  tomoName?: string;
}

function particlesLoop(star: StarFile, file?: string): { block: StarBlock; loop: StarLoop } {
  const coordinateLabels = ['rlnCoordinateX', 'rlnCenteredCoordinateXAngst'];
  const ordered = [...star.blocks.filter((b) => b.name === 'particles'), ...star.blocks.filter((b) => b.name !== 'particles')];
  for (const block of ordered) {
    const loop = block.loops.find((l) => coordinateLabels.some((c) => l.labels.includes(c)));
    if (loop) return { block, loop };
  }
  throw new TmeError('ERR_TME_FORMAT', 'no particles table with rlnCoordinateX or rlnCenteredCoordinateXAngst', { file });
}

function detect(block: StarBlock, loop: StarLoop): StarPicksConvention {
  if (loop.labels.includes('pytmeScore')) return block.version === '50001' ? 'pytme-relion5' : 'pytme-relion4';
  return loop.labels.includes('rlnCenteredCoordinateXAngst') ? 'relion5' : 'relion';
}

function optionalNumbers(loop: StarLoop, label: string, file?: string): Float64Array | undefined {
  return loop.labels.includes(label) ? starNumbers(loop, label, file) : undefined;
}

function need<T>(value: T | undefined, what: string, file?: string): T {
  if (value === undefined) throw new TmeError('ERR_TME_INVALID_OPTION', `${what} (give --target or --voxel-size/--tomo-size)`, { file });
  return value;
}

function opticsValue(star: StarFile, label: string, file?: string): number | undefined {
  const optics = star.blocks.find((b) => b.name === 'optics');
  const loop = optics?.loops.find((l) => l.labels.includes(label));
  const v = loop ? starNumbers(loop, label, file)[0] : undefined;
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
}

/**
 * Picks from a particles STAR of pyTME, RELION 3.1/4/5, pytom or tme itself, converted to tme's conventions
 * (positions in voxels of the matched tomogram, R active template→tomogram).
 */
export function readStarPicks(star: StarFile, options: ReadStarPicksOptions = {}, file?: string): StarPicks {
  const { block, loop } = particlesLoop(star, file);
  const convention = options.convention ?? detect(block, loop);
  const n = loop.rows.length;
  const rot = optionalNumbers(loop, 'rlnAngleRot', file);
  const tilt = optionalNumbers(loop, 'rlnAngleTilt', file);
  const psi = optionalNumbers(loop, 'rlnAnglePsi', file);
  const pytme = convention === 'pytme-relion4' || convention === 'pytme-relion5';
  const score = optionalNumbers(loop, pytme ? 'pytmeScore' : 'rlnAutopickFigureOfMerit', file)
    ?? optionalNumbers(loop, 'rlnLCCmax', file) ?? optionalNumbers(loop, 'pytmeScore', file);
  const classes = optionalNumbers(loop, 'rlnClassNumber', file);
  const positions: Zyx[] = [];

  if (convention === 'relion5') {
    const shape = need(options.shape, 'RELION 5 centred coordinates need the tomogram shape', file);
    const voxelSize = need(options.voxelSize, 'RELION 5 centred coordinates need the voxel size', file);
    const ts = opticsValue(star, 'rlnTomoTiltSeriesPixelSize', file);
    const binning = options.binning ?? (ts !== undefined ? voxelSize / ts : 1);
    const scale = { binning, tiltSeriesPixelSize: voxelSize / binning };
    const [cx, cy, cz] = ['X', 'Y', 'Z'].map((a) => starNumbers(loop, `rlnCenteredCoordinate${a}Angst`, file)) as [Float64Array, Float64Array, Float64Array];
    const [ox, oy, oz] = ['X', 'Y', 'Z'].map((a) => optionalNumbers(loop, `rlnOrigin${a}Angst`, file));
    for (let i = 0; i < n; i += 1) {
      // RELION 5: position = centred − origin (both Å) when no subtomogram pre-rotation is present.
      const a: [number, number, number] = [cx[i]! - (ox?.[i] ?? 0), cy[i]! - (oy?.[i] ?? 0), cz[i]! - (oz?.[i] ?? 0)];
      positions.push(positionFromCentredAngst(a, shape, scale, options.centreConvention ?? 'relion'));
    }
  } else {
    const [x, y, z] = ['X', 'Y', 'Z'].map((a) => starNumbers(loop, `rlnCoordinate${a}`, file)) as [Float64Array, Float64Array, Float64Array];
    if (convention === 'pytme-relion5') {
      // pyTME: Å = (index − shape//2)·voxel (integer division), written under rlnCoordinateX/Y/Z.
      const shape = need(options.shape, 'pyTME RELION-5 coordinates need the tomogram shape', file);
      const voxelSize = need(options.voxelSize, 'pyTME RELION-5 coordinates need the voxel size', file);
      const h = shape.map((s) => Math.floor(s / 2));
      for (let i = 0; i < n; i += 1) positions.push([z[i]! / voxelSize + h[0]!, y[i]! / voxelSize + h[1]!, x[i]! / voxelSize + h[2]!]);
    } else if (convention === 'pytme-relion4') {
      for (let i = 0; i < n; i += 1) positions.push([z[i]!, y[i]!, x[i]!]);
    } else {
      const b = options.binning ?? 1;
      const [ox, oy, oz] = ['X', 'Y', 'Z'].map((a) => optionalNumbers(loop, `rlnOrigin${a}Angst`, file));
      const px = options.voxelSize ?? opticsValue(star, 'rlnImagePixelSize', file);
      if ((ox || oy || oz) && px === undefined) need(undefined, 'rlnOriginXAngst needs the voxel size', file);
      const o = (col: Float64Array | undefined, i: number): number => (col ? col[i]! / px! : 0);
      for (let i = 0; i < n; i += 1) positions.push([z[i]! / b - o(oz, i), y[i]! / b - o(oy, i), x[i]! / b - o(ox, i)]);
    }
  }

  const picks: ExportPick[] = positions.map((position, i) => {
    const angles = [rot?.[i] ?? 0, tilt?.[i] ?? 0, psi?.[i] ?? 0] as const;
    // pyTME copies its extrinsic zyz angles into RELION's columns; RELION files hold RELION's angles.
    const rotation = pytme ? pytmeEulerToMatrix(...angles) : relionEulerToMatrix(...angles);
    const detail = classes ? (pytme ? classes[i]! : classes[i]! - 1) : undefined;
    return { position, rotation, score: score?.[i] ?? 0, ...(detail !== undefined ? { detail } : {}) };
  });
  const names = loop.labels.includes('rlnTomoName') ? 'rlnTomoName' : loop.labels.includes('rlnMicrographName') ? 'rlnMicrographName' : undefined;
  const first = names && n > 0 ? loop.rows[0]![loop.labels.indexOf(names)] : undefined;
  const tomoName = first?.replace(/^.*\//, '').replace(/\.(mrc|rec|map|st|tomostar)$/i, '');
  return { picks, convention, ...(tomoName ? { tomoName } : {}) };
}
