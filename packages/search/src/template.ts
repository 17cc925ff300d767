import { TmeError, createVolume, inFile, invalidOption, readStructure, type Volume } from '@tme/formats';
import { prepareTemplate, simulateDensity } from '@tme/template';
import { SEARCH_FLAGS, type SearchOptions } from './options';

/** What was done to the template, for job.json. */
export interface TemplateSource { kind: 'map' | 'model'; file: string; atoms?: number; resampledFrom?: number }

export interface PreparedTemplate {
  template: Volume;
  /** The user's mask on the template's final box (same resampling and reboxing), or undefined. */
  templateMask: Volume | undefined;
  source: TemplateSource;
}

type TemplateFlags = Pick<SearchOptions,
  'template' | 'templateMask' | 'target' | 'invertContrast' | 'resample' | 'modelResolution' | 'modelBfactor' | 'templateBox'>;

export function looksLikeModel(file: string): boolean {
  return /\.(pdb|ent|cif|mmcif|pdb\.gz|cif\.gz|ent\.gz)$/i.test(file);
}

/**
 * The template shaped for this target: a map resampled (when asked), boxed, inverted and normalised, or an atomic
 * model simulated at the target's voxel size; and the user's mask put on the same box.
 */
export async function shapeTemplate(
  o: TemplateFlags, target: Pick<Volume, 'shape' | 'voxelSize'>, read: (file: string) => Volume, targetVoxelUnknown: boolean,
): Promise<PreparedTemplate> {
  const voxel = target.voxelSize[2];
  const largest = Math.max(...target.shape);
  if (o.templateBox !== undefined && o.templateBox > largest) {
    throw invalidOption(SEARCH_FLAGS.templateBox, `an even integer from 4 to the target's largest edge (${largest})`, o.templateBox);
  }
  if (looksLikeModel(o.template)) {
    if (o.templateMask !== undefined) {
      throw invalidOption(SEARCH_FLAGS.templateMask, 'no mask with an atomic model (its box is made here; use --mask-radius)', o.template);
    }
    const model = await readStructure(o.template);
    if (model.x.length === 0) throw new TmeError('ERR_TME_FORMAT', 'the model has no atoms', { file: o.template });
    // The template must fit in the target: a model that needs a larger box is refused before it is simulated.
    const simulated = simulateDensity(model, {
      voxelSize: voxel, lowpassAngstrom: o.modelResolution, extraBFactor: o.modelBfactor, unknownElements: 'carbon',
      maxEdge: largest, file: o.template,
    });
    const template = inFile(o.template, () => prepareTemplate(simulated.volume, { invertContrast: o.invertContrast, boxSize: o.templateBox, center: false }));
    return fitsTarget({ template, templateMask: undefined, source: { kind: 'model', file: o.template, atoms: simulated.atomCount } }, target);
  }
  const map = read(o.template);
  const mapVoxel = map.voxelSize[2];
  const differs = Math.abs(mapVoxel - voxel) > 0.01 * voxel;
  if (differs && !o.resample) {
    // When the target's header gives no voxel size, that is the problem to name, not the template's.
    if (targetVoxelUnknown) {
      throw new TmeError('ERR_TME_FORMAT', `its header gives no voxel size (taken as 1 Å), and the template's is ${mapVoxel.toFixed(2)} Å: set the target's voxel size in its header (CELLA / MX)`, { file: o.target });
    }
    throw new TmeError('ERR_TME_MISMATCH',
      `voxel size ${mapVoxel.toFixed(2)} Å differs from target ${voxel.toFixed(2)} Å — pass --resample or resample the template`, { file: o.template });
  }
  if (map.shape.some((n, i) => n > (target.shape[i] as number))) {
    throw new TmeError('ERR_TME_MISMATCH', `template (${[...map.shape].reverse().join('×')}) is larger than the target (${[...target.shape].reverse().join('×')})`, { file: o.template });
  }
  // A map keeps its own centre (box//2 stays the particle position users and RELION expect) and, when cubic, its
  // box: it is only resampled, made cubic, inverted and normalised.
  const [mz, my, mx] = map.shape;
  const keep = mz === my && my === mx && !differs ? mz : undefined;
  const shaping = { voxelSize: differs ? voxel : undefined, boxSize: o.templateBox ?? keep, center: false };
  const template = inFile(o.template, () => prepareTemplate(map, { ...shaping, invertContrast: o.invertContrast }));
  let templateMask: Volume | undefined;
  if (o.templateMask !== undefined) {
    const mask = read(o.templateMask);
    if (mask.shape.some((n, i) => n !== map.shape[i])) {
      throw new TmeError('ERR_TME_MISMATCH', `template mask box (${[...mask.shape].reverse().join('×')}) differs from the template's (${[...map.shape].reverse().join('×')})`, { file: o.templateMask });
    }
    const shaped = inFile(o.templateMask, () => prepareTemplate(mask, { ...shaping, normalize: false }));
    templateMask = createVolume(shaped.data.map((v) => Math.min(1, Math.max(0, v))), shaped.shape, shaped.voxelSize, shaped.origin);
  }
  return fitsTarget({ template, templateMask, source: { kind: 'map', file: o.template, resampledFrom: differs ? mapVoxel : undefined } }, target);
}

function fitsTarget(prepared: PreparedTemplate, target: Pick<Volume, 'shape'>): PreparedTemplate {
  const { template, source } = prepared;
  if (template.shape.some((n, i) => n > (target.shape[i] as number))) {
    throw new TmeError('ERR_TME_MISMATCH', `template box ${template.shape[2]} voxels is larger than the target`, { file: source.file });
  }
  return prepared;
}
