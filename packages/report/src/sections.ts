import { MrcRegionReader, invalidOption, type Volume, type Zyx } from '@tme/formats';
import { HISTOGRAM_BLOCK, scoreHistogramOfBlocks, type HistogramBlocks, type ScoreHistogram } from '@tme/peaks';

/**
 * A volume the report reads a run of whole z sections at a time: held in memory, or an MRC file read by region.
 * The page needs only binned previews, a histogram and a few sections, so a job whose maps (or tomogram) do not fit
 * memory is drawn the same way, within `maxReadBytes` a read.
 */
export interface SectionSource {
  readonly shape: Zyx;
  /** Sections [z0, z0 + count) as float32 (z, y, x), x fastest. */
  readSections(z0: number, count: number): Float32Array;
}

/** Most bytes the report reads from a volume at once by default: a 4096×4096 section is one read of 64 MiB. */
export const REPORT_READ_BYTES = 64 * 2 ** 20;

export function isSectionSource(v: Volume | SectionSource): v is SectionSource {
  return typeof (v as SectionSource).readSections === 'function';
}

/** A volume in memory as sections (views, not copies). */
export function sectionsOfVolume(volume: Volume): SectionSource {
  const [, ny, nx] = volume.shape;
  return {
    shape: volume.shape,
    readSections: (z0, count) => volume.data.subarray(z0 * ny * nx, (z0 + count) * ny * nx),
  };
}

/** An MRC file's sections, read by region (the file is opened for each read: nothing stays open between them). */
export function sectionsOfMrc(file: string): SectionSource {
  const reader = new MrcRegionReader(file);
  const { shape } = reader;
  reader.close();
  return {
    shape,
    readSections(z0, count) {
      const r = new MrcRegionReader(file);
      try {
        return r.readRegion([z0, 0, 0], [count, shape[1], shape[2]]);
      } finally {
        r.close();
      }
    },
  };
}

/** Sections a read of at most `maxBytes` holds (at least one). */
export function sectionsPerRead(shape: Zyx, maxBytes: number): number {
  if (!(Number.isFinite(maxBytes) && maxBytes > 0)) throw invalidOption('maxReadBytes', 'a number of bytes > 0', maxBytes);
  return Math.max(1, Math.floor(maxBytes / (4 * shape[1] * shape[2])));
}

/** Visits the whole volume in runs of sections, in z order. */
export function eachSectionRun(source: SectionSource, perRead: number, visit: (data: Float32Array, z0: number, count: number) => void): void {
  const nz = source.shape[0];
  for (let z0 = 0; z0 < nz; z0 += perRead) {
    const count = Math.min(perRead, nz - z0);
    visit(source.readSections(z0, count), z0, count);
  }
}

/**
 * A map and its rotation indices (the voxels a negative index marks were not scored) handed to the histogram in
 * HISTOGRAM_BLOCK-voxel blocks of the whole map's raster, read `perRead` sections at a time: the blocks (and so every
 * sum) a map held whole gives.
 */
function histogramBlocks(map: SectionSource, rot: SectionSource, perRead: number): HistogramBlocks {
  return (visit) => {
    const s = new Float32Array(HISTOGRAM_BLOCK);
    const r = new Float32Array(HISTOGRAM_BLOCK);
    let fill = 0;
    eachSectionRun(map, perRead, (scores, z0, count) => {
      const rotations = rot.readSections(z0, count);
      const n = scores.length;
      let i = 0;
      while (i < n) {
        // A whole block in this run, nothing carried: read in place (a block boundary of the whole map).
        if (fill === 0 && n - i >= HISTOGRAM_BLOCK) {
          visit(scores, i, i + HISTOGRAM_BLOCK, undefined, rotations);
          i += HISTOGRAM_BLOCK;
          continue;
        }
        const take = Math.min(HISTOGRAM_BLOCK - fill, n - i);
        s.set(scores.subarray(i, i + take), fill);
        r.set(rotations.subarray(i, i + take), fill);
        fill += take;
        i += take;
        if (fill === HISTOGRAM_BLOCK) {
          visit(s, 0, fill, undefined, r);
          fill = 0;
        }
      }
    });
    if (fill > 0) visit(s, 0, fill, undefined, r);
  };
}

/** scoreHistogram of a map with its rotation indices (`rotationIndices`), both read `maxReadBytes` at a time (split
 *  between the two): the same numbers as the maps held whole. */
export function scoreHistogramOfSections(map: SectionSource, rot: SectionSource, options: { bins?: number; maxReadBytes?: number } = {}): ScoreHistogram {
  if (!rot.shape.every((n, a) => n === map.shape[a])) throw invalidOption('rotationIndices', `a map of the score map's shape (${map.shape.join(', ')})`, rot.shape.join(', '));
  const perRead = sectionsPerRead(map.shape, (options.maxReadBytes ?? REPORT_READ_BYTES) / 2);
  return scoreHistogramOfBlocks(histogramBlocks(map, rot, perRead), { bins: options.bins ?? 100 });
}
