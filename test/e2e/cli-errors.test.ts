/**
 * The real `tme` binary on bad input: every failure is one stderr line `tme: FILE: problem` (no stack trace), exit
 * code 1 for bad input and 2 for bad usage, and nothing is left behind (the -o folder does not exist afterwards, or
 * is exactly as it was). Plus --help on every command (exit 0, units and defaults shown) and --version.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createVolume } from '@tme/formats';
import { blobTemplate, listTree, noisyTarget, runTme, tempDir, writeVolume, type CliResult } from './helpers';

const FIXTURES = '/work/shared/fixtures/mrc';
const VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'apps', 'cli', 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
const f = (name: string): string => path.resolve(dir, name);

beforeAll(() => {
  dir = tempDir('errors');
  const template = blobTemplate(8);
  writeVolume(f('template.mrc'), template);
  const target = noisyTarget([24, 32, 32], template);
  writeVolume(f('target.mrc'), target);
  const nan = target.data.slice();
  nan[1234] = Number.NaN;
  writeVolume(f('nan.mrc'), createVolume(nan, target.shape, target.voxelSize, target.origin));
  const inf = target.data.slice();
  inf[77] = Number.POSITIVE_INFINITY;
  writeVolume(f('inf.mrc'), createVolume(inf, target.shape, target.voxelSize, target.origin));
  writeVolume(f('big-template.mrc'), blobTemplate(40));
  writeVolume(f('template-5A.mrc'), blobTemplate(8, 5));
  // Random bytes: a deterministic pattern, not a header anyone wrote.
  const junk = Buffer.alloc(3000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
  fs.writeFileSync(f('random.mrc'), junk);
  fs.writeFileSync(f('empty.pdb'), 'HEADER    NOTHING HERE\nREMARK   1 no atoms\nEND\n');
  fs.writeFileSync(f('a-file'), 'not a folder\n');
  const soft = new Float32Array(target.data.length).fill(1);
  soft[(1 * 32 + 2) * 32 + 3] = 0.5; // (z, y, x) = (1, 2, 3)
  writeVolume(f('soft-mask.mrc'), createVolume(soft, target.shape, target.voxelSize, target.origin));
  writeVolume(f('small-mask.mrc'), createVolume(new Float32Array(8).fill(1), [2, 2, 2], target.voxelSize));
  // A 2048×2048×1000 float32 tomogram (16 GiB) as a sparse file: only its header is ever read.
  const header = Buffer.alloc(1024);
  [2048, 2048, 1000, 2].forEach((v, i) => header.writeInt32LE(v, 4 * i));
  [2048, 2048, 1000].forEach((v, i) => header.writeInt32LE(v, 28 + 4 * i));
  [2048 * 5, 2048 * 5, 1000 * 5].forEach((v, i) => header.writeFloatLE(v, 40 + 4 * i));
  [1, 2, 3].forEach((v, i) => header.writeInt32LE(v, 64 + 4 * i));
  header.write('MAP ', 208, 'ascii');
  header.writeUInt32LE(0x4444, 212);
  fs.writeFileSync(f('huge.mrc'), header);
  fs.truncateSync(f('huge.mrc'), 1024 + 2048 * 2048 * 1000 * 4);
  fs.copyFileSync(path.join(FIXTURES, 'truncated_data.mrc'), f('truncated_data.mrc'));
  fs.copyFileSync(path.join(FIXTURES, 'truncated_header.mrc'), f('truncated_header.mrc'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Exactly one stderr line, `tme: …`, no stack trace, nothing on stdout. */
function expectOneErrorLine(r: CliResult, pattern: RegExp): string {
  expect(r.timedOut).toBe(false);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  const line = lines[0] as string;
  expect(line.startsWith('tme: ')).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at\s|Error:\s|node:internal/);
  expect(line).toMatch(pattern);
  expect(r.stdout).toBe('');
  return line;
}

interface Case {
  name: string;
  args: () => string[];
  code: 1 | 2;
  /** What the one stderr line must say (file name and problem). */
  message: RegExp;
  /** The -o folder; it must not exist afterwards (or must be as it was, when it existed). */
  output: () => string;
}

const match = (target: string, template: string, out: string, ...extra: string[]): string[] => [
  'match', '--target', f(target), '--template', f(template), '--angular-step', '45', '--device', 'cpu', '--threads', '1', '-o', f(out), ...extra,
];

const cases: Case[] = [
  { name: 'missing target file', args: () => match('missing.mrc', 'template.mrc', 'o1'), code: 1, message: /missing\.mrc: .*no such file/i, output: () => f('o1') },
  { name: 'MRC with truncated data', args: () => match('truncated_data.mrc', 'template.mrc', 'o2'), code: 1, message: /truncated_data\.mrc: .*data block is 100 bytes.*needs 768 bytes/, output: () => f('o2') },
  { name: 'MRC with truncated header', args: () => match('truncated_header.mrc', 'template.mrc', 'o3'), code: 1, message: /truncated_header\.mrc: .*(1024-byte header|shorter)/, output: () => f('o3') },
  { name: 'random bytes as .mrc', args: () => match('random.mrc', 'template.mrc', 'o4'), code: 1, message: /random\.mrc: .*(header|MRC|dimension|mode)/i, output: () => f('o4') },
  { name: 'NaN in the tomogram', args: () => match('nan.mrc', 'template.mrc', 'o5'), code: 1, message: /nan\.mrc: .*NaN at voxel 1234/, output: () => f('o5') },
  { name: 'Inf in the tomogram', args: () => match('inf.mrc', 'template.mrc', 'o6'), code: 1, message: /inf\.mrc: .*Infinity at voxel 77/, output: () => f('o6') },
  { name: 'template larger than the target', args: () => match('target.mrc', 'big-template.mrc', 'o7'), code: 1, message: /big-template\.mrc: .*larger than the target/, output: () => f('o7') },
  { name: 'mismatched voxel sizes', args: () => match('target.mrc', 'template-5A.mrc', 'o8'), code: 1, message: /template-5A\.mrc: .*5\.00 Å.*10\.00 Å.*--resample/, output: () => f('o8') },
  { name: 'empty PDB as template', args: () => match('target.mrc', 'empty.pdb', 'o9'), code: 1, message: /empty\.pdb: .*no atoms/i, output: () => f('o9') },
  {
    name: 'negative --angular-step', code: 2, message: /--angular-step but received -5\b/, output: () => f('o10'),
    args: () => [...match('target.mrc', 'template.mrc', 'o10').filter((a) => a !== '45' && a !== '--angular-step'), '--angular-step', '-5'],
  },
  {
    name: 'zero --angular-step', code: 2, message: /--angular-step but received 0\b/, output: () => f('o11'),
    args: () => [...match('target.mrc', 'template.mrc', 'o11').filter((a) => a !== '45' && a !== '--angular-step'), '--angular-step', '0'],
  },
  { name: 'unknown --score', args: () => match('target.mrc', 'template.mrc', 'o12', '--score', 'bogus'), code: 2, message: /score.*"bogus"/, output: () => f('o12') },
  { name: 'negative --checkpoint-interval', args: () => match('target.mrc', 'template.mrc', 'o13', '--checkpoint-interval', '-1'), code: 2, message: /--checkpoint-interval.*"-1"/, output: () => f('o13') },
  { name: 'output under a file', args: () => match('target.mrc', 'template.mrc', 'a-file/sub'), code: 1, message: /a-file\/sub: .*a-file is a file/, output: () => f('a-file/sub') },
  // Node 20's recursive mkdir loops forever here; tme must fail at once.
  { name: 'output under /proc', args: () => match('target.mrc', 'template.mrc', '/proc/tme-forbidden/x'), code: 1, message: /\/proc\/tme-forbidden\/x: cannot create the output folder/, output: () => '/proc/tme-forbidden' },
  {
    name: 'a target mask that is not 0/1', args: () => match('target.mrc', 'template.mrc', 'o16', '--target-mask', f('soft-mask.mrc')), code: 1, output: () => f('o16'),
    message: /soft-mask\.mrc: holds 0\.5 at voxel \(x, y, z\) = \(3, 2, 1\); a target mask must be 0 or 1 everywhere: threshold it/,
  },
  { name: '--phase-flip without a defocus', args: () => match('target.mrc', 'template.mrc', 'o17', '--phase-flip'), code: 2, message: /a defocus with --phase-flip .* for --phase-flip\/--defocus/, output: () => f('o17') },
  { name: '--defocus 3 (Å? µm?)', args: () => match('target.mrc', 'template.mrc', 'o18', '--defocus', '3'), code: 2, message: /--defocus but received "3" \(a bare number is Å\): did you mean 3um\?$/, output: () => f('o18') },
  { name: '--cosine-weighting without tilts', args: () => match('target.mrc', 'template.mrc', 'o19', '--cosine-weighting'), code: 2, message: /for --cosine-weighting but received "neither"/, output: () => f('o19') },
  {
    name: 'Fourier-space rotation with CTF zones', code: 2, output: () => f('o21'),
    args: () => match('target.mrc', 'template.mrc', 'o21', '--rotation-mode', 'fourier', '--defocus', '3um', '--defocus-handedness', '1'),
    message: /Expected real when the template's filter changes with depth \(--defocus-handedness\) for --rotation-mode but received "fourier"/,
  },
  {
    name: 'tme run --mask of another shape', code: 1, output: () => f('o20'), message: /small-mask\.mrc: mask shape \(z, y, x\) = \(2, 2, 2\) differs from the score map \(24, 32, 32\)/,
    args: () => ['run', ...match('target.mrc', 'template.mrc', 'o20', '--mask', f('small-mask.mrc')).slice(1)],
  },
  { name: 'info on random bytes', args: () => ['info', f('random.mrc')], code: 1, message: /random\.mrc: .*(header|MRC|dimension|mode)/i, output: () => f('none') },
  { name: 'convert from a missing file', args: () => ['convert', f('missing.mrc'), f('o14.em')], code: 1, message: /missing\.mrc: .*no such file/i, output: () => f('o14.em') },
  { name: 'convert to an unknown format', args: () => ['convert', f('target.mrc'), f('o15.xyz')], code: 2, message: /"[^"]*o15\.xyz"/, output: () => f('o15.xyz') },
  { name: 'unknown command', args: () => ['frobnicate'], code: 2, message: /^tme: unknown command 'frobnicate' \(run with --help for usage\)$/, output: () => f('none') },
  {
    // Out of core (tomograms larger than memory) with a filter of the whole tomogram, on too little memory for one
    // plane of its FFT grid: refused before the tomogram is read.
    name: 'a 16 GiB tomogram on a --memory too small for its filter\'s passes, with --lowpass', code: 1, output: () => f('o22'),
    args: () => match('huge.mrc', 'template.mrc', 'o22', '--memory', '200M', '--lowpass', '20', '--resample'),
    message: /^tme: the target's filter out of core needs [\d.]+ MiB \(one \d+×\d+ plane of its FFT grid, or one row of every plane\) but [\d.]+ MiB is available; allow it more \(--memory\)$/,
  },
  { name: 'tiles that are nearly all overlap', args: () => match('target.mrc', 'template.mrc', 'o23', '--tile', '8,8,8'), code: 2, message: /Expected tiles of at least .* or auto \(cores of .* voxels make \d+ tiles transforming \d+× the voxels of one whole tile\) for --tile but received "8,8,8"/, output: () => f('o23') },
  // tme itself is more than the limit: out of core cannot help, and the message must not say it would.
  { name: 'a --memory below what tme itself holds', args: () => match('target.mrc', 'template.mrc', 'o25', '--memory', '1M'), code: 1, message: /^tme: a search out of core holds 160 MiB \(tme itself\) before any tile, but --memory allows 1 MiB; allow it more$/, output: () => f('o25') },
  { name: 'a bad --memory', args: () => match('target.mrc', 'template.mrc', 'o24', '--memory', 'lots'), code: 2, message: /Expected a memory size of at least 1M, like 8G, 512M or 16GiB for --memory but received "lots"/, output: () => f('o24') },
  {
    name: 'a bad --calibration', code: 2, output: () => f('o26'),
    args: () => ['estimate', ...match('target.mrc', 'template.mrc', 'o26', '--calibration', 'a few').slice(1)],
    message: /^tme: Expected a whole number of rotations ≥ 0 \(0: no timing\) for --calibration but received "a few" of type string$/,
  },
  {
    name: 'tme run --box without relion among --formats', code: 2, output: () => f('o27'),
    args: () => ['run', ...match('target.mrc', 'template.mrc', 'o27', '--formats', 'tsv,imod', '--box', '32').slice(1)],
    message: /^tme: Expected it only with relion in --formats \(the subtomograms' box; --formats is tsv,imod\) for --box but received "32"/,
  },
  { name: 'missing required option', args: () => ['match', '--target', f('target.mrc')], code: 2, message: /^tme: required option '--template <file>' not specified/, output: () => f('none') },
];

describe('tme on bad input: one line, the right exit code, nothing left behind', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await runTme(c.args(), { timeoutMs: 30_000 });
    expectOneErrorLine(r, c.message);
    expect(r.code).toBe(c.code);
    expect(fs.existsSync(c.output())).toBe(false);
  }, 40_000);

  test('an existing output folder is refused (kept as it was) unless --force', async () => {
    const out = f('exists');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine\n');
    const before = listTree(out);
    const r = await runTme(match('target.mrc', 'template.mrc', 'exists'), { timeoutMs: 30_000 });
    expectOneErrorLine(r, /exists: output folder exists; use --force/);
    expect(r.code).toBe(1);
    expect(listTree(out)).toEqual(before);
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('mine\n');

    const forced = await runTme(match('target.mrc', 'template.mrc', 'exists', '--force', '--quiet'), { timeoutMs: 60_000 });
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    expect(listTree(out)).toEqual(['angles.tsv', 'job.json', 'notes.txt', 'rotations.mrc', 'scores.mrc']);
    // A finished job cannot be "resumed".
    const resumed = await runTme(match('target.mrc', 'template.mrc', 'exists', '--resume'), { timeoutMs: 30_000 });
    expectOneErrorLine(resumed, /exists: holds a finished job; use --force/);
    expect(resumed.code).toBe(1);
  }, 90_000);
});

test('header doubts of every input reach stderr once per file (here a template without a voxel size), then the one error', async () => {
  const bytes = fs.readFileSync(f('template.mrc'));
  bytes.fill(0, 40, 52); // CELLA: the voxel size unknown
  fs.writeFileSync(f('novoxel.mrc'), bytes);
  const r = await runTme(match('target.mrc', 'novoxel.mrc', 'o25'));
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines.slice(0, 3)).toEqual(['x', 'y', 'z'].map((a) => `tme: warning: ${f('novoxel.mrc')}: voxel size along ${a} unknown (CELLA 0, M${a.toUpperCase()} 8); using 1 Å`));
  expect(lines[3]).toMatch(/novoxel\.mrc: voxel size 1\.00 Å differs from target 10\.00 Å/);
  expect(lines).toHaveLength(4);
  expect(fs.existsSync(f('o25'))).toBe(false);
  // --quiet keeps the error, drops the warnings.
  const quiet = await runTme([...match('target.mrc', 'novoxel.mrc', 'o25'), '--quiet']);
  expect(quiet.stderr.trim().split('\n')).toHaveLength(1);
});

test('convert refuses to replace an existing file unless --force', async () => {
  const before = fs.readFileSync(f('template.mrc'));
  const r = await runTme(['convert', f('target.mrc'), f('template.mrc')], { timeoutMs: 30_000 });
  expectOneErrorLine(r, /template\.mrc: output exists; use --force/);
  expect(r.code).toBe(1);
  expect(fs.readFileSync(f('template.mrc')).equals(before)).toBe(true);
}, 40_000);

describe('--help and --version', () => {
  /** Words each command's help must show (whitespace collapsed): its usage line, units and defaults. */
  const HELP: Record<string, string[]> = {
    info: ['Usage: tme info [options] <file>', '--json'],
    convert: ['Usage: tme convert [options] <in> <out>', '(default: "2")', '--force'],
    devices: ['Usage: tme devices [options]', '--json'],
    match: ['Usage: tme match [options]', '--angular-step <deg>', 'degrees', '(default: "flc-sphere")', '(default: "C1")', 'Å', 'kV', 'else 300',
      'a value you type wins over the metadata file', '--resume'],
    angles: ['Usage: tme angles [options]', 'degrees', '(default: "C1")'],
    peaks: ['Usage: tme peaks [options] <job>', '(default 1000)', 'Å'],
    export: ['Usage: tme export [options] <picks>', 'Å', 'kV', 'else 300', 'else 0.07', '0 after normalisation', 'tmeBoxOutsideFraction'],
    run: ['Usage: tme run [options]', 'degrees', '(default: "flc-sphere")', '(default 1000)', '(default: "tsv,relion,imod,report")', 'Å', '--mask <mrc>',
      'default: 0 (call everywhere the score is defined', '0 after normalisation'],
    estimate: ['Usage: tme estimate [options]', 'degrees', '(default: "8")', 'Å'],
    example: ['Usage: tme example [options] [dir]', 'degrees', '(default: "15")', '(default: "tme-example")'],
    report: ['Usage: tme report [options] <job>', '<job>/report.html', '--truth <tsv>', '(default 2)', '--png'],
  };
  test.each(Object.keys(HELP))('tme %s --help', async (command) => {
    const r = await runTme([command, '--help'], { timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const text = r.stdout.replace(/\s+/g, ' ');
    for (const word of HELP[command] as string[]) expect(text).toContain(word);
  }, 40_000);

  test('tme --help lists every command', async () => {
    const r = await runTme(['--help'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    for (const command of Object.keys(HELP)) expect(r.stdout).toMatch(new RegExp(`^\\s+${command} `, 'm'));
  }, 40_000);

  test('tme --version prints the version of @tme/cli', async () => {
    const r = await runTme(['--version'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  }, 40_000);
});
