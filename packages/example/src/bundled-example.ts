import { readStructure, type Volume } from '@tme/formats';
import { matrixToPytmeEuler } from '@tme/rotations';
import { bundledModelPath, prepareTemplate, simulateDensity } from '@tme/template';
import { generateSyntheticTomogram } from './synthetic-tomogram';
import type { OrientedPosition } from './score-picks';

/** The bundled example's fixed design: a real protein at a voxel size and box that run in minutes on 2 cores. */
export const EXAMPLE = {
  // 1TII is an AB5 toxin: at coarser voxels or resolutions its B pentamer looks 5-fold symmetric and orientations
  // alias (measured: 6 Å/18 Å gives 5 of 12 picks 70–170° off; 5 Å/10 Å gives 1 of 12).
  voxelSize: 5,
  resolution: 10,
  tomogramShape: [64, 128, 128] as const,
  tiltRange: [-60, 60] as const,
};

export interface BundledExample {
  modelFile: string;
  atomCount: number;
  template: Volume;
  tomogram: Volume;
  truth: OrientedPosition[];
  /** The truth in pyTME's orientations layout (what `tme example` writes as truth.tsv). */
  truthTsv: string;
}

/** The bundled model simulated as the template, and a tomogram of `particles` copies of it with its ground truth. */
export async function makeBundledExample(o: { particles: number; snr: number; seed: number }): Promise<BundledExample> {
  const modelFile = bundledModelPath();
  const model = await readStructure(modelFile);
  const simulated = simulateDensity(model, { voxelSize: EXAMPLE.voxelSize, lowpassAngstrom: EXAMPLE.resolution, marginAngstrom: 6 });
  const template = prepareTemplate(simulated.volume, { center: false });
  const made = generateSyntheticTomogram(template, { shape: [...EXAMPLE.tomogramShape], ...o, tiltRange: EXAMPLE.tiltRange });
  return { modelFile, atomCount: simulated.atomCount, template, tomogram: made.tomogram, truth: made.truth, truthTsv: truthTsv(made.truth) };
}

function truthTsv(truth: readonly OrientedPosition[]): string {
  const lines = ['x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail'];
  for (const t of truth) {
    const [ex, ey, ez] = matrixToPytmeEuler(t.rotation);
    lines.push([t.position[2], t.position[1], t.position[0], ex.toFixed(4), ey.toFixed(4), ez.toFixed(4), '1', '0'].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}
