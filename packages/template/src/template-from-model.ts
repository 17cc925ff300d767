import { createVolume, type Volume } from '@tme/formats';
import { simulateDensity, type AtomicModel, type SimulateOptions } from './atomic-model';
import { sphereMask, type MaskResult } from './masks';
import { normalizeVolume } from './template-map';

// A module-level alias: inside jest's vm sandbox every lookup of the global `Math` costs ~70× a local one.
const Math = globalThis.Math;

export interface TemplateFromModelOptions extends SimulateOptions {
  /** Multiply by −1 (for tomograms where protein is dark). Default false. */
  invertContrast?: boolean;
  /** Extra radius (Å) of the spherical mask beyond the farthest atom. Default 1 voxel. */
  maskPaddingAngstrom?: number;
  /** Soft cosine edge (Å) of the mask. Default 2 voxels. */
  maskEdgeAngstrom?: number;
}

export interface ModelTemplate {
  /** Simulated potential, standardised (zero mean, unit std inside the mask), contrast as asked. */
  template: Volume;
  /** Sphere about box//2 covering every atom plus padding, with a soft edge; its radius includes the edge. */
  mask: MaskResult;
  /** Farthest atom from the box centre (Å). */
  extentAngstrom: number;
}

/** The one-call template for a search from an atomic model: potential, spherical mask, normalisation. */
export function templateFromModel(model: AtomicModel, options: TemplateFromModelOptions): ModelTemplate {
  const sim = simulateDensity(model, options);
  const v = options.voxelSize;
  const [cz, cy, cx] = sim.centerAngstrom;
  let r2 = 0;
  for (let j = 0; j < model.x.length; j++) {
    r2 = Math.max(r2, ((model.z[j] as number) - cz) ** 2 + ((model.y[j] as number) - cy) ** 2 + ((model.x[j] as number) - cx) ** 2);
  }
  const extent = Math.sqrt(r2);
  const mask = sphereMask(sim.volume.shape, v, { radiusAngstrom: extent + (options.maskPaddingAngstrom ?? v), edgeAngstrom: options.maskEdgeAngstrom ?? 2 * v });
  let template = normalizeVolume(sim.volume, mask.mask);
  if (options.invertContrast) template = createVolume(template.data.map((x) => -x), template.shape, template.voxelSize, template.origin);
  return { template, mask, extentAngstrom: extent };
}
