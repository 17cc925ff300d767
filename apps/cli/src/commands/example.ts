import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, invalidOption, readStructure, writeFileAtomic, writeMrc } from '@tme/formats';
import { generateSyntheticTomogram, scorePicks } from '@tme/example';
import { matrixToPytmeEuler } from '@tme/rotations';
import { bundledModelPath, prepareTemplate, simulateDensity } from '@tme/template';
import { pickAndExport, toExportPicks } from '../pipeline';
import { DEVICE_CHOICES, createFolder, executeMatch, setupMatch, type MatchFlags } from './match';

interface ExampleFlags {
  device: string;
  angularStep: string;
  snr: string;
  particles: string;
  seed: string;
  force?: boolean;
  quiet?: boolean;
  progress?: boolean;
  refine?: boolean;
}

/** The bundled example's fixed design: a real protein at a voxel size and box that run in minutes on 2 cores. */
export const EXAMPLE = {
  // 1TII is an AB5 toxin: at coarser voxels or resolutions its B pentamer looks 5-fold symmetric and orientations
  // alias (measured: 6 Å/18 Å gives 5 of 12 picks 70–170° off; 5 Å/10 Å gives 1 of 12).
  voxelSize: 5,
  resolution: 10,
  tomogramShape: [64, 128, 128] as const,
  tiltRange: [-60, 60] as const,
};

function tsvOf(truth: ReturnType<typeof generateSyntheticTomogram>['truth']): string {
  const lines = ['x\ty\tz\teuler_x\teuler_y\teuler_z\tscore\tdetail'];
  for (const t of truth) {
    const [ex, ey, ez] = matrixToPytmeEuler(t.rotation);
    lines.push([t.position[2], t.position[1], t.position[0], ex.toFixed(4), ey.toFixed(4), ez.toFixed(4), '1', '0'].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}

/** `tme example [DIR]`: writes the bundled example, runs the whole job on it and scores the picks against the truth. */
export async function runExample(dirArg: string | undefined, flags: ExampleFlags): Promise<void> {
  const dir = path.resolve(dirArg ?? 'tme-example');
  const snr = Number(flags.snr);
  if (!(Number.isFinite(snr) && snr > 0)) throw invalidOption('--snr', 'a signal-to-noise ratio > 0', flags.snr);
  const particles = Number(flags.particles);
  if (!(Number.isInteger(particles) && particles >= 1)) throw invalidOption('--particles', 'an integer ≥ 1', flags.particles);
  const seed = Number(flags.seed);
  if (!Number.isInteger(seed)) throw invalidOption('--seed', 'an integer', flags.seed);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0 && !flags.force) {
    throw new TmeError('ERR_TME_EXISTS', 'output folder exists and is not empty; use --force to overwrite it', { file: dir });
  }
  createFolder(dir);
  const say = (s: string): void => { if (!flags.quiet) process.stdout.write(`${s}\n`); };

  const modelFile = bundledModelPath();
  const model = await readStructure(modelFile);
  const simulated = simulateDensity(model, { voxelSize: EXAMPLE.voxelSize, lowpassAngstrom: EXAMPLE.resolution, marginAngstrom: 6 });
  const template = prepareTemplate(simulated.volume, { center: false });
  const made = generateSyntheticTomogram(template, { shape: [...EXAMPLE.tomogramShape], particles, snr, seed, tiltRange: EXAMPLE.tiltRange });
  const files = {
    tomogram: path.join(dir, 'tomogram.mrc'), template: path.join(dir, 'template.mrc'), truth: path.join(dir, 'truth.tsv'),
    run: path.join(dir, 'run'),
  };
  writeMrc(files.tomogram, made.tomogram);
  writeMrc(files.template, template);
  writeFileAtomic(files.truth, tsvOf(made.truth));
  say(`tme example: ${path.basename(modelFile)} (${simulated.atomCount} atoms) simulated at ${EXAMPLE.voxelSize} Å in a ${template.shape[2]}³ box; `
    + `${particles} copies in a ${[...EXAMPLE.tomogramShape].reverse().join('×')} tomogram, wedge ±${EXAMPLE.tiltRange[1]}°, SNR ${snr} → ${dir}`);
  const command = `tme run --target ${files.tomogram} --template ${files.template} --angular-step ${flags.angularStep} `
    + `--tilt-range ${EXAMPLE.tiltRange.join(',')} --device ${flags.device} -o ${files.run}`;
  say(`tme example: ${command}`);

  const matchFlags: MatchFlags = {
    target: files.tomogram, template: files.template, angularStep: flags.angularStep, symmetry: 'C1', score: 'flc-sphere',
    device: flags.device, tile: 'auto', padTarget: 'mean', interpolation: 'linear', rotationMode: 'real', background: 'none',
    tiltRange: EXAMPLE.tiltRange.join(','), tiltAxis: 'y',
    modelBfactor: '0', force: true, quiet: flags.quiet, progress: flags.progress, output: files.run,
  };
  const setup = await setupMatch(matchFlags);
  const result = await executeMatch(setup, matchFlags, 'tme example');
  const summary = await pickAndExport({
    dir: setup.dir, result, target: setup.target, templateShape: setup.template.shape, tomoName: 'example',
    peaks: { falseAlarms: 1 }, formats: ['tsv', 'relion', 'imod'], tiltRange: EXAMPLE.tiltRange, force: true,
    microscope: setup.filters.microscope.microscope, micrographName: files.tomogram,
    refine: flags.refine !== false ? { job: setup.job, angularStep: Number(flags.angularStep) } : undefined,
  });
  const picks = toExportPicks(summary.picks).map((p) => ({ position: p.position, rotation: p.rotation }));
  const score = scorePicks(picks, made.truth, 2);
  const outputs = `${files.run}/{picks.tsv, relion/particles.star, imod/picks.mod}`;
  say(`tme example: found ${score.matched} of ${score.truthCount} particles (recall ${score.recall.toFixed(2)}), `
    + `precision ${score.precision.toFixed(2)} (${score.pickCount} picks), median angular error ${score.medianAngularError.toFixed(1)}° `
    + `at a ${flags.angularStep}° step → ${outputs}`);
}

export function register(program: Command): void {
  program
    .command('example')
    .description('Write the bundled example (a synthetic tomogram of a real protein, with its ground truth), run the whole job on it, and report how well the picks match the truth')
    .argument('[dir]', 'folder to write into', 'tme-example')
    .option('--device <device>', DEVICE_CHOICES, 'auto')
    .option('--angular-step <deg>', 'angular step of the search, degrees', '15')
    .option('--snr <ratio>', 'signal-to-noise ratio of the tomogram (signal variance over noise variance)', '0.05')
    .option('--particles <n>', 'particles in the tomogram', '12')
    .option('--seed <n>', 'seed of the generator', '20261125')
    .option('--no-refine', 'keep the global search\'s orientations (default: refine each pick locally at half and a quarter of the angular step)')
    .option('--force', 'overwrite the folder')
    .option('--quiet', 'print nothing but errors')
    .option('--progress', 'draw progress even when stderr is not a terminal or CI is set')
    .action(async (dir: string | undefined, flags: ExampleFlags) => runExample(dir, flags));
}
