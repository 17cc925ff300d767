import { PNG } from 'pngjs';
import { invalidOption, type Volume } from '@tme/formats';
import type { ReportData, ReportPick } from './report-data';
import { isSectionSource, sectionsOfVolume, type SectionSource } from './sections';
import { sampleQuantiles } from './volume-preview';

export interface SlabPngOptions {
  /** Centre slice (z, voxels). Default: the slice whose slab holds the most picks (the best pick's on a tie). */
  z?: number;
  /** Slices in the slab. Default 2·r − 1 for the marker radius r (a third of the template box): the slices the
   * markers' spheres span, so every pick drawn lies inside the slab. */
  thickness?: number;
}

export interface SlabPng {
  png: Buffer;
  /** The slab: slices [zFrom, zTo] around z. */
  z: number;
  zFrom: number;
  zTo: number;
  width: number;
  height: number;
  /** Picks drawn (those whose marker sphere the centre slice cuts). */
  drawn: number[];
}

/** matplotlib's plasma at five stops (the page's pick colours are d3's plasma): score low → high. */
const PLASMA: ReadonlyArray<readonly [number, number, number]> = [[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]];

export function plasma(t: number): [number, number, number] {
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (PLASMA.length - 1);
  const i = Math.min(PLASMA.length - 2, Math.floor(u));
  const f = u - i;
  const a = PLASMA[i] as readonly number[];
  const b = PLASMA[i + 1] as readonly number[];
  return [0, 1, 2].map((c) => Math.round(a[c]! + f * (b[c]! - a[c]!))) as [number, number, number];
}

/** The slice whose slab of ±radius holds the most picks; the best pick's slice on a tie, the middle without picks. */
export function busiestSlice(picks: readonly ReportPick[], nz: number, radius: number): number {
  if (picks.length === 0) return Math.floor(nz / 2);
  let best = Math.round((picks[0] as ReportPick).z);
  let most = -1;
  const counts = new Int32Array(nz);
  for (const p of picks) {
    for (let z = Math.max(0, Math.ceil(p.z - radius + 1e-9)); z <= Math.min(nz - 1, Math.floor(p.z + radius - 1e-9)); z++) counts[z]!++;
  }
  const order = [best, ...Array.from({ length: nz }, (_, z) => z)];
  for (const z of order) if (counts[z]! > most) { most = counts[z]!; best = z; }
  return best;
}

/** Mean (or max) of slices [from, to] of a volume, as float32 (y, x). */
function slab(v: Volume | SectionSource, from: number, to: number, reduce: 'mean' | 'max'): Float32Array {
  const [, ny, nx] = v.shape;
  const plane = ny * nx;
  const data = (isSectionSource(v) ? v : sectionsOfVolume(v)).readSections(from, to - from + 1);
  const out = new Float32Array(plane).fill(reduce === 'max' ? -Infinity : 0);
  for (let z = 0; z <= to - from; z++) {
    const at = z * plane;
    if (reduce === 'max') for (let i = 0; i < plane; i++) out[i] = Math.max(out[i]!, data[at + i]!);
    else for (let i = 0; i < plane; i++) out[i]! += data[at + i]!;
  }
  if (reduce === 'mean') for (let i = 0; i < plane; i++) out[i]! /= to - from + 1;
  return out;
}

/**
 * The slab views as one PNG for slides and notebooks: the tomogram's slab (mean over its slices) and the best-score
 * map's (maximum), side by side at full resolution (enlarged to at least 384 pixels a view), the picks the centre
 * slice cuts drawn as circles coloured by score (plasma, threshold → best). Without the tomogram, the score map alone.
 */
export function renderSlabPng(data: ReportData, volumes: { tomogram: Volume | SectionSource | null; scores: Volume | SectionSource }, options: SlabPngOptions = {}): SlabPng {
  const [nz, ny, nx] = data.shape;
  const R = data.markerRadius;
  const thickness = options.thickness ?? Math.min(nz, 2 * R - 1);
  if (!(Number.isInteger(thickness) && thickness >= 1 && thickness <= nz)) throw invalidOption('thickness', `integer in [1, ${nz}] (slices)`, thickness);
  const z = options.z ?? busiestSlice(data.picks, nz, R);
  if (!(Number.isInteger(z) && z >= 0 && z < nz)) throw invalidOption('z', `integer in [0, ${nz - 1}]`, z);
  const zFrom = Math.max(0, z - Math.floor(thickness / 2));
  const zTo = Math.min(nz - 1, zFrom + thickness - 1);
  const k = Math.max(1, Math.ceil(384 / nx));
  const gap = 8;
  const views: Array<{ values: Float32Array; window: [number, number] }> = [];
  if (volumes.tomogram) {
    const values = slab(volumes.tomogram, zFrom, zTo, 'mean');
    views.push({ values, window: sampleQuantiles(values, [0.005, 0.995]) as [number, number] });
  }
  const scores = slab(volumes.scores, zFrom, zTo, 'max');
  views.push({ values: scores, window: [sampleQuantiles(scores, [0.5])[0]!, sampleQuantiles(scores, [1])[0]!] });

  const width = views.length * nx * k + (views.length - 1) * gap;
  const height = ny * k;
  const png = new PNG({ width, height, colorType: 6 });
  png.data.fill(255);
  const scoreValues = data.picks.map((p) => p.score);
  const cLo = data.histogram.threshold ?? Math.min(...scoreValues);
  const cHi = Math.max(...scoreValues, cLo);
  const drawn = data.picks.filter((p) => Math.abs(p.z - z) < R).map((p) => p.rank);
  views.forEach((view, n) => {
    const left = n * (nx * k + gap);
    const [lo, hi] = view.window;
    const s = hi > lo ? 255 / (hi - lo) : 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < nx * k; x++) {
        const v = view.values[Math.floor(y / k) * nx + Math.floor(x / k)]!;
        const g = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round((v - lo) * s))) : 0;
        const o = 4 * (y * width + left + x);
        png.data[o] = g;
        png.data[o + 1] = g;
        png.data[o + 2] = g;
        png.data[o + 3] = 255;
      }
    }
    for (const p of data.picks) {
      const d = p.z - z;
      if (Math.abs(d) >= R) continue;
      const r = Math.max(1, Math.sqrt(R * R - d * d)) * k;
      const colour = plasma(cHi > cLo ? (p.score - cLo) / (cHi - cLo) : 1);
      strokeCircle(png, left, nx * k, (p.x + 0.5) * k, (p.y + 0.5) * k, r, colour);
    }
  });
  return { png: PNG.sync.write(png), z, zFrom, zTo, width, height, drawn };
}

/** A 2-pixel ring, clipped to its view. */
function strokeCircle(png: PNG, left: number, viewWidth: number, cx: number, cy: number, r: number, rgb: readonly number[]): void {
  const x0 = Math.max(0, Math.floor(cx - r - 2));
  const x1 = Math.min(viewWidth - 1, Math.ceil(cx + r + 2));
  const y0 = Math.max(0, Math.floor(cy - r - 2));
  const y1 = Math.min(png.height - 1, Math.ceil(cy + r + 2));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
      if (Math.abs(d - r) > 1) continue;
      const o = 4 * (y * png.width + left + x);
      png.data[o] = rgb[0]!;
      png.data[o + 1] = rgb[1]!;
      png.data[o + 2] = rgb[2]!;
      png.data[o + 3] = 255;
    }
  }
}
