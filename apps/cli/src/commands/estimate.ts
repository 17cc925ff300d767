import type { Command } from 'commander';
import { invalidOption, type Zyx } from '@tme/formats';
import { devicesLabel, estimateJob, outOfCoreCheckpointBytes, type DeviceInfo, type TilePlan } from '@tme/engine';
import { addMatchOptions, setupMatch, type MatchFlags } from './match';

/** The tiles' splits and padding per axis (x, y, z): half the support where one tile spans the axis (tiling.ts). */
function padding(plan: TilePlan, support: Zyx): string {
  const names = ['z', 'y', 'x'];
  const axes = (half: boolean): string => [2, 1, 0].filter((a) => (plan.halfPadded?.[a] === true) === half)
    .map((a) => `${names[a]} ${half ? Math.floor((support[a] as number) / 2) : (support[a] as number) - 1}`).join(', ');
  const half = axes(true), full = axes(false);
  const by = [half ? `half the support: ${half}` : '', full ? `support − 1: ${full}` : ''].filter(Boolean).join('; ');
  // The cost model's choice between padding by half the support and by support − 1.
  const model = plan.model
    ? `; predicted FFT cost ${plan.model.relativeCost.toFixed(2)}× that of ${[...plan.model.alternative].reverse().join('×')}, padded by ${plan.halfPadded?.includes(true) ? 'support − 1' : 'half the support'}`
    : '';
  return ` (split ${[...plan.splits].reverse().join('×')}, x×y×z; padded by ${by}${model})`;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** `tme estimate`: memory per device, the tile plan and a calibrated time, before anything big runs. */
export async function runEstimate(flags: MatchFlags & { calibration: string; json?: boolean }): Promise<void> {
  // Checked before the inputs are read: a typo here is not worth a tomogram's read.
  if (!/^\s*\d+\s*$/.test(flags.calibration)) throw invalidOption('--calibration', 'a whole number of rotations ≥ 0 (0: no timing)', flags.calibration);
  const calibration = Number(flags.calibration);
  const setup = await setupMatch({ ...flags, output: flags.output ?? '.' }, { createDir: false });
  const estimate = await estimateJob(setup.job, { calibrationRotations: calibration });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(estimate, (_k, v: unknown) => (v instanceof Float32Array ? Array.from(v) : v), 2)}\n`);
    return;
  }
  const xyz = (s: readonly number[]): string => [...s].reverse().join('×');
  const several = estimate.templateCount > 1
    // Each template's rotations run on every tile in turn: time adds up by rotations, memory holds one template's set-up.
    ? ` of ${estimate.templateCount} templates in one pass (each tile read and set up once per template; time as for all their rotations, memory as for the largest box)` : '';
  const lines = [`${setup.rotationCount} rotations${several}, target ${xyz(estimate.targetShape)} voxels (x×y×z)`,
    `tiles pad and overlap by the ${estimate.templateCount > 1 ? 'templates\' largest' : 'template\'s'} support ${xyz(estimate.supportShape)} (box ${xyz(estimate.templateShape)}): `
    + (estimate.supportShape.every((n, a) => n === estimate.templateShape[a])
      ? 'the whole box, as the score correlates it'
      : 'where the mask lets the template reach after rotation')];
  const m = setup.memory;
  const size = (b: number): string => (b >= 2 ** 30 ? gib(b) : `${Math.ceil(b / 2 ** 20)} MiB`);
  const available = m.limit ? `--memory allows ${size(m.availableBytes)}` : `${size(m.availableBytes)} is free`;
  lines.push(m.path === 'in-memory'
    ? (m.inMemoryBytes <= m.availableBytes
      ? `path: in memory (the tomogram, its maps and room for tiles ≈ ${size(m.inMemoryBytes)}; ${available})`
      : `path: in memory with less room for tiles (≈ ${size(m.inMemoryBytes)} wanted but ${available}; out of core cannot take this search's options)`)
    : `path: out of core (in memory would need ${size(m.inMemoryBytes)} but ${available}): tiles are read from the file and the maps written tile by tile; `
      + `a checkpoint of ≤ ${Math.ceil(outOfCoreCheckpointBytes(setup.rotationCount) / 1024)} KiB after each tile (--resume continues at the next tile)`);
  const tf = estimate.targetFilter;
  if (tf) {
    lines.push(tf.error !== undefined ? `target filter out of core: does not fit: ${tf.error}`
      : `target filter out of core: the whole tomogram on a ${xyz(tf.grid ?? [0, 0, 0])} FFT grid, by passes over ${size(tf.diskBytes ?? 0)} of temporary files `
        + `in the job folder (its spectrum and the filtered tomogram), ≈ ${size(tf.memoryBytes ?? 0)} in memory (slabs of ${tf.slabPlanes} planes, blocks of ${tf.blockRows} rows)`);
  }
  const z = setup.zones;
  const span = (f: { spanAngstrom: number; boundAngstrom: number }): string => `the defocus changes by up to ${Math.round(f.spanAngstrom)} Å over the tomogram, `
    + `a zone may hold ${Number.isFinite(f.boundAngstrom) ? Math.round(f.boundAngstrom) : '∞'} Å (phase error ≤ π/4 at the filter's highest frequency)`;
  const f = z.followed;
  lines.push(z.handedness !== 0
    ? `CTF zones: ${z.count} (${xyz(z.splits)}, x×y×z): ${span(z)}; handedness ${z.handedness}`
    : f.spanAngstrom === 0
      ? 'CTF zones: 1 (one defocus for the whole tomogram: no defocus to follow)'
      // Off by default: measured, the zones' gain is nil at common settings (README, "Defocus gradient").
      : `CTF zones: 1 (one defocus for the whole tomogram, the default; --defocus-handedness 1 or -1 would make ${f.count}`
        + `${f.count > 1 ? ` (${xyz(f.splits)}, x×y×z)` : ''}: ${span(f)})`);
  for (const d of estimate.devices) {
    const mark = estimate.used.includes(d.device.index) ? '*' : ' ';
    if (!d.fits || !d.tilePlan) {
      lines.push(`${mark} ${d.device.name}: does not fit: ${d.error ?? 'no plan'}`);
      continue;
    }
    const plan = d.tilePlan;
    const time = d.seconds !== undefined
      ? `, ≈ ${duration(d.seconds)} (${((d.secondsPerRotation ?? 0) * 1000).toFixed(1)} ms per rotation per tile, ${duration(d.setupSeconds ?? 0)} set-up per tile)`
      : '';
    const peak = d.processBytes !== undefined ? `; this process's peak ≈ ${gib(d.processBytes)}` : '';
    // Priors and shards leave rotations out: the time counts only what runs.
    const whole = estimate.rotationCount * plan.tiles.length;
    const run = d.rotationsToRun !== undefined && d.rotationsToRun < whole
      ? `; ${d.rotationsToRun} of ${whole} tile·rotations run (${(whole / Math.max(1, d.rotationsToRun)).toFixed(1)}× fewer)` : '';
    lines.push(`${mark} ${d.device.name}: ${plan.tiles.length} tile${plan.tiles.length === 1 ? '' : 's'} of ${[...plan.fastShape].reverse().join('×')}${padding(plan, estimate.supportShape)}, `
      + `${gib(d.bytesPerTile ?? 0)} per tile of ${gib(d.budgetBytes)} allowed${peak}${run}${time}`);
  }
  const used = estimate.used.map((index) => estimate.devices.find((d) => d.device.index === index)?.device)
    .filter((d): d is DeviceInfo => d !== undefined);
  if (estimate.shared) {
    const { tilePlan: plan, error, seconds } = estimate.shared;
    lines.push(plan
      ? `devices used: ${devicesLabel(used)}, one worker each, splitting every tile's rotations: ${plan.tiles.length} tile${plan.tiles.length === 1 ? '' : 's'} of `
        + `${xyz(plan.fastShape)} (each worker holds one; planned for the smallest share of memory)`
        + `${seconds !== undefined ? `, ≈ ${duration(seconds)} if every worker is as fast as the first` : ''}`
      : `devices used: ${devicesLabel(used)}: does not fit: ${error ?? 'no plan'}`);
  } else {
    lines.push(`device used: ${devicesLabel(used)}`);
  }
  lines.push(`(* = the device${estimate.used.length > 1 ? 's' : ''} --device picks)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function register(program: Command): void {
  const cmd = program
    .command('estimate')
    .description('Print the memory each device would need, the tile plan, and a time estimate from a short calibration run');
  addMatchOptions(cmd)
    .option('--calibration <rotations>', 'rotations to time on the picked device (0: no timing)', '8')
    .option('--json', 'print the estimate as JSON')
    .option('-o, --output <dir>', 'ignored (accepted so a match command line can be estimated as it is)')
    .action(async (flags: MatchFlags & { calibration: string; json?: boolean }) => runEstimate(flags));
}
