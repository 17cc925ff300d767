import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, writeMrc } from '@tme/formats';
import { angleBetween, matrixToPytmeEuler, matrixToQuaternion, sampleRotations } from '@tme/rotations';
import { listDevices, nativeAddonBuilt, readJob, rotateBox } from '@tme/engine';
import { progressWanted } from '../src/progress';
import { runPeaks, type PeaksCliOptions } from '../src/commands/peaks';

// One CLI process runs every invocation (see below); loading it alone takes seconds on a busy machine.
jest.setTimeout(180_000);

const built = nativeAddonBuilt();
const withNative = built ? describe : describe.skip;
if (!built) test.skip('tme match runs skipped: native/build/Release/tme.node is not built', () => undefined);

// commander 15 is ESM-only, which jest's CommonJS runtime cannot load, so the CLI runs in a real `node` process
// from its TypeScript sources (transpiled on load, workspace packages mapped to their sources as jest does). Loading
// takes seconds on a busy machine, so one process runs every invocation in order and records each one's exit code,
// stdout and stderr.
const root = path.resolve(__dirname, '..', '..', '..');
const harness = `
const fs = require('node:fs'), path = require('node:path'), Module = require('node:module');
const ts = require(${JSON.stringify(require.resolve('typescript'))});
const root = ${JSON.stringify(root)};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const m = /^@tme[/]([a-z-]+)$/.exec(request);
  if (request === '@tme/native') request = path.join(root, 'native', 'index.ts');
  else if (m) request = path.join(root, 'packages', m[1], 'src', 'index.ts');
  return resolve.call(this, request, ...rest);
};
require.extensions['.ts'] = (module, file) => module._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), {
  fileName: file, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
}).outputText, file);
const { main } = require(path.join(root, 'apps', 'cli', 'src', 'main.ts'));
const [runsFile, resultsFile] = process.argv.slice(1);
(async () => {
  const results = {};
  for (const [name, argv, setup] of JSON.parse(fs.readFileSync(runsFile, 'utf8'))) {
    if (setup) fs.mkdirSync(setup, { recursive: true });
    let out = '', err = '';
    const ow = process.stdout.write, ew = process.stderr.write;
    process.stdout.write = (s) => { out += s; return true; };
    process.stderr.write = (s) => { err += s; return true; };
    let code;
    try { code = await main(argv); } catch (e) { code = -2; err += String(e); } finally { process.stdout.write = ow; process.stderr.write = ew; }
    results[name] = { code, out, err };
  }
  fs.writeFileSync(resultsFile, JSON.stringify(results));
})();
`;

interface Run { code: number; out: string; err: string }
let dir: string;
let results: Record<string, Run> = {};

/** Runs the named invocations in one CLI process; `setup` is a folder to create just before the run. */
function runAll(runs: Array<[name: string, argv: string[], setup?: string]>): void {
  const runsFile = path.join(dir, 'runs.json');
  const resultsFile = path.join(dir, 'results.json');
  fs.writeFileSync(runsFile, JSON.stringify(runs));
  const child = spawnSync(process.execPath, ['-e', harness, '--', runsFile, resultsFile], { encoding: 'utf8', env: { ...process.env, CI: '1' }, timeout: 170_000 });
  if (!fs.existsSync(resultsFile)) throw new Error(`the CLI harness failed: ${child.stderr}`);
  results = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as Record<string, Run>;
}

function run(name: string): Run {
  const r = results[name];
  if (!r) throw new Error(`no run named ${name}`);
  return r;
}

function noise(n: number, seed: number): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = (s / 2147483648 - 0.5) * 0.6;
  }
  return out;
}

const set = sampleRotations({ angularStep: 60, measure: false });
const FIXTURES = path.join(__dirname, '..', '..', '..', 'packages', 'template', '__tests__', 'fixtures');
const placedRotation = 7;
const placedAt = [13, 10, 15] as const;

const base = (): string[] => ['match', '--target', path.join(dir, 'target.mrc'), '--template', path.join(dir, 'template.mrc'), '--angular-step', '60', '--mask-radius', '16', '--device', 'cpu'];
const job = (name: string): string => path.join(dir, name);

const errorCases: Array<[string[], number, RegExp]> = [
  [['--score', 'ncc'], 2, /Expected one of cc, lcc, corr, cam, flc, flc-sphere, mcc .* for --score but received "ncc"/],
  [['--tile', '16,16'], 2, /Expected auto or Z,Y,X .* for --tile/],
  [['--device', 'tpu'], 2, /for --device but received "tpu"/],
  [['--pad-target', 'wrap'], 2, /for --pad-target but received "wrap"/],
  [['--angular-step', '0'], 2, /for --angular-step/],
  [['--force', '--resume'], 2, /only one of --force and --resume/],
  [['--rotations-convention', 'pytme'], 2, /only with --rotations <file> for --rotations-convention/],
  [['--rotations', 'list.tsv', '--symmetry', 'C2'], 2, /C1 with --rotations .* for --symmetry but received "C2"/],
  [['--rotations', 'set.npy', '--rotations-convention', 'relion'], 2, /no convention for a .npy rotation list/],
  [['--mask-radius', '0'], 2, /Expected a radius > 0 Å for --mask-radius but received 0 of type number/],
  [['--device', '0,,1'], 2, /Expected .*comma-separated list .* for --device but received "0,,1"/],
  [['--device', 'gpu:all,cpu'], 2, /for --device but received "gpu:all,cpu"/],
];

// Devices this machine lacks: refused in one line naming --device, before any input is read (needs the addon).
const listed = built ? listDevices().devices : [];
const deviceErrorCases: Array<[string[], number, RegExp]> = built ? [
  [['--device', '7'], 1, /^tme: --device 7: no device matches 7; available: [^\n]*cpu: CPU \(FFTW3f\) \(cpu\); see tme devices\n$/],
  [['--device', 'cpu,7'], 1, /^tme: --device cpu,7: no device matches 7; available: /],
  ...(listed.some((d) => d.kind === 'gpu') ? [] : [
    [['--device', 'gpu:all'], 1, /^tme: --device gpu:all: no GPU is listed \(the native backend lists [^\n]*\); see tme devices\n$/],
  ] as Array<[string[], number, RegExp]>),
] : [];
// Two devices at once: a Vulkan device (lavapipe on CI) and the CPU path, else the CPU path twice.
const multiDevice = listed.some((d) => d.index === 0) ? '0,cpu' : 'cpu,cpu';

/** A .npy (version 1, little-endian float64, C order) as NumPy writes it. */
function npy(shape: number[], values: number[]): Buffer {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => body.writeDoubleLE(v, 8 * i));
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-cli-match-'));
  const size = 9;
  const c = 4;
  const t = new Float32Array(size ** 3);
  const blobs = [[0, 0, 0, 1], [0, 0, 3, 0.8], [0, 3, 0, -0.7], [3, 0, -1, 0.6]];
  for (let z = 0; z < size; z++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    let v = 0;
    for (const [bz, by, bx, a] of blobs) v += a! * Math.exp(-((z - c - bz!) ** 2 + (y - c - by!) ** 2 + (x - c - bx!) ** 2) / 1.5);
    t[(z * size + y) * size + x] = v;
  }
  const shape = [24, 22, 26] as const;
  const data = noise(shape[0] * shape[1] * shape[2], 3);
  const tR = rotateBox(t, [size, size, size], set.matrices.subarray(9 * placedRotation, 9 * placedRotation + 9), 'linear');
  for (let z = 0; z < size; z++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const i = ((placedAt[0] + z - c) * shape[1] + placedAt[1] + y - c) * shape[2] + placedAt[2] + x - c;
    data[i] = data[i]! + tR[(z * size + y) * size + x]!;
  }
  writeMrc(path.join(dir, 'target.mrc'), createVolume(data, shape, 4));
  writeMrc(path.join(dir, 'template.mrc'), createVolume(t, [size, size, size], 4));
  writeMrc(path.join(dir, 'template-5A.mrc'), createVolume(t, [size, size, size], 5));
  const peakMask = new Float32Array(shape[0] * shape[1] * shape[2]);
  peakMask.fill(1, 0, 12 * shape[1] * shape[2]); // z < 12: the placed copy (z 13) is outside
  writeMrc(path.join(dir, 'peak-mask.mrc'), createVolume(peakMask, shape, 4));
  const t5 = ['match', '--target', path.join(dir, 'target.mrc'), '--template', path.join(dir, 'template-5A.mrc'), '--angular-step', '60'];
  // The 60° set as pyTME's rotation sets store theirs (quaternion x, y, z, w and a weight), and as a pyTME-convention
  // Euler list: searched as lists, they must give the sampled set's maps.
  const quaternions: number[] = [];
  const eulerLines = ['euler_x\teuler_y\teuler_z'];
  for (let i = 0; i < set.count; i++) {
    const r = set.matrices.slice(9 * i, 9 * i + 9);
    const [w, x, y, z] = matrixToQuaternion(r);
    quaternions.push(x, y, z, w, 1);
    eulerLines.push(matrixToPytmeEuler(r).map((v) => v.toFixed(9)).join('\t'));
  }
  fs.writeFileSync(path.join(dir, 'set.npy'), npy([set.count, 5], quaternions));
  fs.writeFileSync(path.join(dir, 'set-pytme.tsv'), `${eulerLines.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'not.npy'), 'rot tilt psi\n0 0 0\n');
  const lists = ['match', '--target', path.join(dir, 'target.mrc'), '--template', path.join(dir, 'template.mrc'), '--mask-radius', '16', '--device', 'cpu', '--quiet'];
  runAll([
    ...errorCases.map(([extra], k): [string, string[]] => [`error${k}`, [...base(), '-o', job('never'), ...extra]]),
    ['missing', ['match', '--target', path.join(dir, 'missing.mrc'), '--template', path.join(dir, 'template.mrc'), '--angular-step', '60', '-o', job('job-missing')]],
    ['voxelSize', [...t5, '-o', job('job-5A')]],
    ['mcc', [...base(), '--score', 'MCC', '-o', job('job-mcc')]],
    ['noStep', [...lists, '-o', job('never')]],
    ['notNpy', [...lists, '--rotations', path.join(dir, 'not.npy'), '-o', job('never')]],
    ...(built ? [
      ...deviceErrorCases.map(([extra], k): [string, string[]] => [`deviceError${k}`, [...base(), '-o', job('never'), ...extra]]),
      ['multi', [...base(), '--device', multiDevice, '--tile', '20,30,34', '-o', job('job-multi')]],
      ['estimateMulti', ['estimate', ...base().slice(1), '--device', multiDevice, '--calibration', '0']],
      ['job1', [...base(), '-o', job('job1')]],
      ['npyList', [...lists, '--rotations', path.join(dir, 'set.npy'), '-o', job('job-npy')]],
      ['pytmeList', [...lists, '--rotations', path.join(dir, 'set-pytme.tsv'), '--rotations-convention', 'pytme', '--angular-step', '60', '-o', job('job-pytme')]],
      ['exists', [...base(), '-o', job('job2'), '--quiet'], job('job2')],
      ['force', [...base(), '-o', job('job2'), '--quiet', '--force', '--tile', '16,16,16']],
      ['resumeFinished', [...base(), '-o', job('job2'), '--resume']],
      ['resumeFresh', [...base(), '-o', job('job3'), '--resume', '--quiet', '--score', 'FLC'], job('job3')],
      ['progress', [...base(), '-o', job('job4'), '--progress', '--interpolation', 'cubic']],
      ['runMask', ['run', ...base().slice(1), '--mask', path.join(dir, 'peak-mask.mrc'), '--formats', 'tsv', '--number', '5', '-o', job('run-mask')]],
      ['runNoMask', ['run', ...base().slice(1), '--formats', 'tsv', '--number', '5', '--edge', '2', '-o', job('run-nomask')]],
      ['relativeFiles', [...base(), '--tilt-angles', path.relative(process.cwd(), path.join(FIXTURES, 'ts01.rawtlt')),
        '--dose', path.relative(process.cwd(), path.join(FIXTURES, 'ts01_dose.txt')), '--defocus', path.relative(process.cwd(), path.join(FIXTURES, 'ts01_v3.defocus')),
        '--voltage', '200', '--quiet', '-o', job('job-relative')]],
      ['devicesJson', ['devices', '--json']],
      ['devices', ['devices']],
    ] as Array<[string, string[], string?]> : []),
  ]);
}, 180_000);
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

withNative('tme match (native CPU path)', () => {
  it('writes a job folder in which the placed template is the best match', () => {
    const r = run('job1');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(job('job1')).sort()).toEqual(['angles.tsv', 'job.json', 'rotations.mrc', 'scores.mrc']);
    expect(r.out).toMatch(/48 rotations × 1 tile on CPU .*best score/);
    expect(r.err).toBe('');
    const result = readJob(job('job1'));
    let best = 0;
    result.scores.data.forEach((v, i) => { if (v > result.scores.data[best]!) best = i; });
    const [ny, nx] = [22, 26];
    expect([Math.floor(best / (ny * nx)), Math.floor(best / nx) % ny, best % nx]).toEqual(placedAt);
    const found = result.indices[best]!;
    const angle = angleBetween(result.rotations.slice(9 * found, 9 * found + 9), set.matrices.slice(9 * placedRotation, 9 * placedRotation + 9));
    expect(angle).toBeLessThanOrEqual(60);
    expect(found).toBe(placedRotation);
    expect(result.record.inputs['angularStep']).toBe(60);
    expect(result.record.parameters.padTarget).toBe('mean');
    expect(result.record.device.backend).toBe('native');
  });

  it('--rotations searches a list as given: pyTME\'s .npy quaternions and pyTME Euler angles give the sampled set\'s maps', () => {
    const sampled = readJob(job('job1'));
    for (const name of ['npyList', 'pytmeList']) expect(run(name).code).toBe(0);
    const npyJob = readJob(job('job-npy'));
    const pytmeJob = readJob(job('job-pytme'));
    for (const r of [npyJob, pytmeJob]) {
      let diff = 0;
      r.scores.data.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - sampled.scores.data[i]!)); });
      expect(diff).toBeLessThan(1e-5);
      let same = 0;
      r.indices.forEach((v, i) => { if (v === sampled.indices[i]) same++; });
      expect(same / r.indices.length).toBeGreaterThan(0.999);
      expect(r.record.inputs['rotationCount']).toBe(set.count);
    }
    // Without --angular-step the list's measured covering is the refinement's scale.
    expect(npyJob.record.inputs['rotationsConvention']).toBe('quaternions');
    expect(npyJob.record.inputs['angularStep']).toBeGreaterThan(40);
    expect(npyJob.record.inputs['angularStep']).toBeLessThanOrEqual(60);
    expect(pytmeJob.record.inputs['angularStep']).toBe(60);
    expect(run('noStep').code).toBe(2);
    expect(run('noStep').err).toMatch(/or a rotation list, --rotations <file>\) for --angular-step/);
    expect(run('notNpy').code).toBe(1);
    expect(run('notNpy').err).toMatch(/not\.npy: not a numeric \.npy array/);
  });

  it('refuses an existing output folder, and a finished job for --resume; --force reruns', () => {
    expect(run('exists').code).toBe(1);
    expect(run('exists').err).toMatch(/^tme: .*job2: output folder exists; use --force to overwrite it or --resume to continue its job\n$/);
    expect(run('force').code).toBe(0);
    expect(run('force').out).toBe('');
    // Tiles of 16 voxels with a 9-voxel template: cores of 8 → 3 × 3 × 4 tiles over 24 × 22 × 26.
    expect(readJob(job('job2')).record.tilePlan.splits).toEqual([3, 3, 4]);
    expect(run('resumeFinished').code).toBe(1);
    expect(run('resumeFinished').err).toMatch(/holds a finished job; use --force/);
  });

  it('--resume without a checkpoint runs the whole job', () => {
    expect(run('resumeFresh').code).toBe(0);
    expect(readJob(job('job3')).record.parameters.score).toBe('flc');
  });

  it('--progress draws the bar on stderr even off a terminal: rotations, rate, ETA, device, tile', () => {
    expect(run('progress').code).toBe(0);
    expect(run('progress').err).toMatch(/\| 48\/48 rotations \| [\d.-]+\/s \| ETA \S+ \| CPU .* \| tile 1\/1/);
    expect(readJob(job('job4')).record.parameters.interpolation).toBe('cubic');
  });

  it('tme run --mask calls peaks only inside the mask, as tme peaks --mask does, and records it', () => {
    const r = run('runMask');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/expected false positives at this threshold: 1 over 6864 voxels/); // 12 × 22 × 26
    const rows = fs.readFileSync(path.join(job('run-mask'), 'picks.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t').map(Number));
    for (const row of rows) expect(row[2]).toBeLessThan(12); // z
    expect(readJob(job('run-mask')).record.inputs['peakMask']).toBe(path.join(dir, 'peak-mask.mrc'));
    // Without the mask the placed copy is the best pick; a typed --edge reports what its margin dropped.
    const plain = run('runNoMask');
    expect(plain.code).toBe(0);
    expect(plain.out).toMatch(/^tme run: edge 2 voxels dropped \d+ candidates? above the threshold$/m);
    const best = fs.readFileSync(path.join(job('run-nomask'), 'picks.tsv'), 'utf8').split('\n')[1]!.split('\t').slice(0, 3).map(Number);
    expect(best).toEqual([placedAt[2], placedAt[1], placedAt[0]]);
  });

  it('job.json records metadata files as absolute paths, and the microscope and tilt range the filters used', () => {
    expect(run('relativeFiles').err).toBe('');
    const inputs = readJob(job('job-relative')).record.inputs;
    expect(inputs['filters']).toMatchObject({
      tiltAngles: path.join(FIXTURES, 'ts01.rawtlt'), dose: path.join(FIXTURES, 'ts01_dose.txt'), defocus: path.join(FIXTURES, 'ts01_v3.defocus'), voltage: 200,
    });
    expect(inputs['microscope']).toEqual({
      voltage: 200, sphericalAberration: 2.7, amplitudeContrast: 0.07, source: { voltage: 'flag', sphericalAberration: 'default', amplitudeContrast: 'default' },
    });
    expect(inputs['tiltRange']).toEqual([-60, 60]);
  });

  it('job.json stores the search as typed values; tme peaks --refine rebuilds it from there, from any folder', async () => {
    const { record } = readJob(job('job-relative'));
    expect(record.search).toMatchObject({
      target: path.join(dir, 'target.mrc'), angularStep: 60, score: 'flc-sphere', symmetry: 'C1', tiltAxis: 'y', voltage: 200,
      tiltAngles: path.join(FIXTURES, 'ts01.rawtlt'), dose: path.join(FIXTURES, 'ts01_dose.txt'), defocus: path.join(FIXTURES, 'ts01_v3.defocus'),
    });
    let said = '';
    const peaks = async (refine: boolean, cwd: string): Promise<number[]> => {
      const here = process.cwd();
      process.chdir(cwd);
      const out = path.join(dir, `picks-${refine}.tsv`);
      const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { said += String(chunk); return true; });
      try {
        await runPeaks(job('job-relative'), { output: out, number: '1', refine, force: true } satisfies PeaksCliOptions);
      } finally {
        spy.mockRestore();
        process.chdir(here);
      }
      return fs.readFileSync(out, 'utf8').split('\n')[1]!.split('\t').slice(0, 7).map(Number);
    };
    const global = await peaks(false, process.cwd());
    const refined = await peaks(true, os.tmpdir());
    // The same pick, re-scored at orientations near the global one: at least as good, found from another folder.
    expect(refined.slice(0, 3)).toEqual(global.slice(0, 3));
    expect(refined[6]).toBeGreaterThanOrEqual(global[6]! - 1e-6);
    expect(said).toMatch(/refined 1 orientations: median change [\d.]+°/);
  });

  it('tme devices lists the CPU path and what auto picks', () => {
    expect(run('devicesJson').code).toBe(0);
    const listing = JSON.parse(run('devicesJson').out) as { devices: Array<{ index: unknown; kind: string }>; auto: unknown };
    expect(listing.devices.some((d) => d.index === 'cpu' && d.kind === 'cpu')).toBe(true);
    expect(listing.auto).not.toBeNull();
    expect(run('devices').code).toBe(0);
    expect(run('devices').out).toMatch(/^\s+DEVICE\s+KIND\s+MEMORY\s+NAME/);
    expect(run('devices').out).toMatch(/\nauto: /);
  });
});

withNative('tme match on several devices', () => {
  it(`--device ${multiDevice} splits the rotations across both, records them, and gives the one-device maps`, () => {
    const r = run('multi');
    expect(r.code).toBe(0);
    const names = multiDevice.split(',').map((d) => listed.find((e) => String(e.index) === d)?.name ?? '');
    expect(r.out).toContain(`48 rotations × 2 tiles on ${names[0] === names[1] ? `${names[0]} ×2` : names.join(' + ')} in `);
    const multi = readJob(job('job-multi'));
    expect(multi.record.parameters.device).toEqual(multiDevice.split(',').map((d) => (d === 'cpu' ? 'cpu' : Number(d))));
    expect(multi.record.devices?.map((d) => String(d.index))).toEqual(multiDevice.split(','));
    const one = readJob(job('job1'));
    let diff = 0;
    let same = 0;
    multi.scores.data.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - one.scores.data[i]!)); if (multi.indices[i] === one.indices[i]) same++; });
    expect(diff).toBeLessThan(1e-4);
    expect(same / multi.indices.length).toBeGreaterThan(0.995);
  });

  it('tme estimate names the devices used and the plan they share', () => {
    const r = run('estimateMulti');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\ndevices used: [^\n]+, one worker each, splitting every tile's rotations: 1 tile of /);
    expect(r.out).toMatch(/\(\* = the devices --device picks\)\n$/);
    expect(r.out.split('\n').filter((l) => l.startsWith('* ')).length).toBe(new Set(multiDevice.split(',')).size);
  });

  it.each(deviceErrorCases.map((c, k) => [k, ...c] as const))('device case %i: %j → exit %i, one line', (k, _extra, code, message) => {
    const r = run(`deviceError${k}`);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
    expect(fs.existsSync(job('never'))).toBe(false);
  });
});

describe('tme match: errors before any work', () => {
  it.each(errorCases.map((c, k) => [k, ...c] as const))('case %i: %j → exit %i', (k, _extra, code, message) => {
    const r = run(`error${k}`);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
    expect(fs.existsSync(job('never'))).toBe(false);
  });

  it('names a missing input file', () => {
    expect(run('missing').code).toBe(1);
    expect(run('missing').err).toMatch(/^tme: .*missing\.mrc: /);
  });

  it('rejects a template of another voxel size and mcc without a target mask', () => {
    expect(run('voxelSize').code).toBe(1);
    expect(run('voxelSize').err).toMatch(/voxel size/);
    expect(run('mcc').code).toBe(2);
    expect(run('mcc').err).toMatch(/needs a target mask/);
  });
});

describe('progress rendering choice', () => {
  const tty = { isTTY: true } as NodeJS.WriteStream;
  const pipe = { isTTY: false } as NodeJS.WriteStream;
  it.each([
    [{ stream: tty, env: {} }, true],
    [{ stream: tty, env: { CI: 'true' } }, false],
    [{ stream: pipe, env: {} }, false],
    [{ stream: pipe, env: { CI: '1' }, force: true }, true],
    [{ stream: tty, env: {}, quiet: true, force: true }, false],
  ])('%j → %s', (choice, wanted) => expect(progressWanted(choice)).toBe(wanted));
});
