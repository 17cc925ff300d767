import type { MemoryQuery } from './backend';

/**
 * Device bytes to match one tile, counted in float32 real arrays R and complex64 half-spectra C of the tile:
 * the tile and its spectrum, the best-score and best-index maps, and each score's work arrays (after pyTME's
 * memory classes, tme/memory.py). Used by the reference backend and as the fallback when a backend gives none.
 */
export function defaultMemoryEstimate(query: MemoryQuery): number {
  const [nz, ny, nx] = query.tileShape;
  const real = 4 * nz * ny * nx;
  const complex = 8 * nz * ny * (Math.floor(nx / 2) + 1);
  const perScore: Record<MemoryQuery['score'], [number, number]> = {
    cc: [4, 2],
    'flc-sphere': [5, 2],
    flc: [6, 4],
    mcc: [8, 4],
  };
  const [r, c] = perScore[query.score];
  let bytes = r * real + c * complex;
  const [tz, ty, tx] = query.templateShape;
  // The filter and its work arrays live on the template's grid (about the box): a real and a complex array each.
  if (query.filter) bytes += 2 * (4 + 8) * tz * ty * tx;
  // Fourier-space rotation keeps a ×2-oversampled complex template spectrum.
  if (query.rotationMode === 'fourier') bytes += 8 * 8 * tz * ty * tx;
  return bytes;
}

/** Resident memory of a `tme match` process beyond its arrays: Node with tme, its addon and the Vulkan drivers loaded
 *  is 116 MiB; the run's JS heap, FFTW's plans and the worker threads bring even a 48³ target's job to 168 MiB. */
export const PROCESS_BASE_BYTES = 160 * 2 ** 20;
/** The allocator's and the page cache's share on top of the arrays (fitted: 3.5 % on 128³ to 512×512×200 jobs). */
export const ARRAY_OVERHEAD = 1.04;

/**
 * What the in-memory target filter (prepare.ts's filterTarget) holds at its peak beyond the target as read, per voxel
 * of its FFT grid (targetFilterGrid: the target and a template box beyond every face, at a fast size): the padded
 * grid (filtered in place), its half spectrum, the filter on it, and the filtered target cut back. Measured (maximum
 * RSS over RSS before the filter, lowpass on the CPU): 10.2, 12.1 and 8.5 B a grid voxel on 256×256×160 (box 24),
 * 384×384×96 (16) and 256³ (40); 22.3–22.7 before the grid was filtered in place (no copy, no second grid array).
 */
export const TARGET_FILTER_BYTES_PER_GRID_VOXEL = 12;

/**
 * What a search that holds the target whole holds before any tile: tme itself, the target as read and as matched,
 * its best-score and rotation maps (16 bytes a voxel), a target mask (4) and rotation-stats' sums and maps (12).
 * Below it no tile fits (match.ts's device budget counts the same).
 */
export function wholeTargetBytes(shape: readonly [number, number, number], o: { targetMask?: boolean; background?: string } = {}): number {
  return PROCESS_BASE_BYTES + ARRAY_OVERHEAD * shape[0] * shape[1] * shape[2] * heldPerVoxel(o);
}

/** Bytes a voxel that a search holding the target whole keeps before any tile (wholeTargetBytes). */
function heldPerVoxel(o: { targetMask?: boolean; background?: string }): number {
  return 16 + (o.targetMask ? 4 : 0) + (o.background === 'rotation-stats' ? 12 : 0);
}

/**
 * What matching a target in memory holds whole, in bytes: tme itself, the target as read and as matched, its
 * best-score and rotation maps (16 bytes a voxel), a target mask (4) and rotation-stats' sums and maps (12), and room
 * for tiles of 4 bytes a voxel (one float32 copy of the target: below that tiles get so small that their overlap
 * costs more than reading them from disk). A target filter (`targetFilterGrid`, its FFT grid) first holds the target as
 * read (and a mask) and its own arrays (TARGET_FILTER_BYTES_PER_GRID_VOXEL): 16 B a voxel or more, against the 20 of the
 * rest, so the larger of the two counts. Above what is available the search goes out of core.
 */
export function inMemoryBytes(
  shape: readonly [number, number, number], o: { targetMask?: boolean; background?: string; targetFilterGrid?: readonly [number, number, number] } = {},
): number {
  const voxels = shape[0] * shape[1] * shape[2];
  // What the search holds whole, and room for tiles of one float32 copy.
  const search = voxels * (heldPerVoxel(o) + 4);
  const g = o.targetFilterGrid;
  const filter = g ? voxels * (4 + (o.targetMask ? 4 : 0)) + TARGET_FILTER_BYTES_PER_GRID_VOXEL * g[0] * g[1] * g[2] : 0;
  return PROCESS_BASE_BYTES + ARRAY_OVERHEAD * Math.max(search, filter);
}

/**
 * What calling peaks on a job holds: tme itself, the score map, the rotation map as read (float32) and as indices
 * (int32), and the peak caller's own map of the same size (16 bytes a voxel). tme calls peaks on maps held whole.
 */
export function peakCallingBytes(shape: readonly [number, number, number]): number {
  return PROCESS_BASE_BYTES + ARRAY_OVERHEAD * 16 * shape[0] * shape[1] * shape[2];
}

/**
 * Slab-wise peak calling: the sections a slab may hold besides its halo (`halo` sections at each end) when a voxel
 * read costs `bytesPerVoxel`, within `availableBytes`; below 1 the maps cannot be called in that memory.
 */
export function peakSlabSections(shape: readonly [number, number, number], availableBytes: number, bytesPerVoxel: number, halo: number): number {
  const section = ARRAY_OVERHEAD * bytesPerVoxel * shape[1] * shape[2];
  return Math.min(shape[0], Math.floor((availableBytes - PROCESS_BASE_BYTES) / section) - 2 * halo);
}

/** The memory slab-wise peak calling needs for slabs of one section with their halo. */
export function peakSlabMinimumBytes(shape: readonly [number, number, number], bytesPerVoxel: number, halo: number): number {
  return PROCESS_BASE_BYTES + ARRAY_OVERHEAD * bytesPerVoxel * shape[1] * shape[2] * (1 + 2 * halo);
}
