import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, invalidOption, writeFileAtomic, writeMrc } from '@tme/formats';
import { EXAMPLE, makeBundledExample, scorePicks } from '@tme/example';
import { pickAndExport, toExportPicks } from '../pipeline';
import { createFolder, executeMatch, inMemoryResult, inMemoryTarget, setupSearch } from './match';
import { DEVICE_CHOICES, parseDevice } from '../search-flags';
import { REPORT_FILE, writeReport } from './report';

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

  const made = await makeBundledExample({ particles, snr, seed });
  const { template, modelFile } = made;
  const files = {
    tomogram: path.join(dir, 'tomogram.mrc'), template: path.join(dir, 'template.mrc'), truth: path.join(dir, 'truth.tsv'),
    run: path.join(dir, 'run'),
  };
  writeMrc(files.tomogram, made.tomogram);
  writeMrc(files.template, template);
  writeFileAtomic(files.truth, made.truthTsv);
  say(`tme example: ${path.basename(modelFile)} (${made.atomCount} atoms) simulated at ${EXAMPLE.voxelSize} Å in a ${template.shape[2]}³ box; `
    + `${particles} copies in a ${[...EXAMPLE.tomogramShape].reverse().join('×')} tomogram, wedge ±${EXAMPLE.tiltRange[1]}°, SNR ${snr} → ${dir}`);
  const command = `tme run --target ${files.tomogram} --template ${files.template} --angular-step ${flags.angularStep} `
    + `--tilt-range ${EXAMPLE.tiltRange.join(',')} --device ${flags.device} -o ${files.run}`;
  say(`tme example: ${command}`);

  const angularStep = Number(flags.angularStep);
  const run = { force: true, quiet: flags.quiet, progress: flags.progress };
  const setup = await setupSearch({
    target: files.tomogram, template: files.template, angularStep, device: parseDevice(flags.device), tiltRange: [...EXAMPLE.tiltRange],
  }, files.run, { ...run, holdsTarget: 'tme example' });
  const target = inMemoryTarget(setup, 'tme example');
  const result = inMemoryResult(await executeMatch(setup, run, 'tme example'));
  const summary = await pickAndExport({
    dir: setup.dir, result, target, templateShape: setup.template.shape, tomoName: 'example',
    peaks: { falseAlarms: 1 }, formats: ['tsv', 'relion', 'imod'], tiltRange: EXAMPLE.tiltRange, force: true,
    microscope: setup.filters.microscope.microscope, micrographName: files.tomogram,
    refine: flags.refine !== false ? { job: setup.job, angularStep: setup.angularStep } : undefined, warnings: setup.warnings,
  });
  const picks = toExportPicks(summary.picks).map((p) => ({ position: p.position, rotation: p.rotation }));
  const score = scorePicks(picks, made.truth, 2);
  const outputs = `${files.run}/{picks.tsv, relion/particles.star, imod/picks.mod}`;
  say(`tme example: found ${score.matched} of ${score.truthCount} particles (recall ${score.recall.toFixed(2)}), `
    + `precision ${score.precision.toFixed(2)} (${score.pickCount} picks), median angular error ${score.medianAngularError.toFixed(1)}° `
    + `at a ${flags.angularStep}° step → ${outputs}`);
  // The page scores the picks against the truth the same way (@tme/example's scorePicks, 2 voxels).
  say(`tme example: report ${writeReport(files.run, path.join(files.run, REPORT_FILE), { truth: files.truth, truthDistance: 2 })}`);
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
