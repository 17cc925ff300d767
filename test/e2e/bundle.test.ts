/**
 * The portable bundle (`pnpm bundle`), as a cluster user gets it: built from this checkout, unpacked into an empty
 * folder, and run with no Node.js, pnpm or apt on PATH (a PATH of sh, readlink and dirname only), LD_LIBRARY_PATH
 * unset and a fresh HOME. It must list the devices and say which Vulkan loader and driver it uses, run the example
 * to recall 1.0, run a small `tme run`, make a report (its browser libraries inside the bundle), load FFTW3f from
 * the bundle, fall back to its own Vulkan loader where the system has none, and stay under 60 MiB. And test/gpu/check.sh, the one-shot GPU check, runs from the archive alone
 * on lavapipe in its CI-sized form (--quick).
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers';

const ROOT = path.join(__dirname, '..', '..');
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
const built = fs.existsSync(path.join(ROOT, 'apps', 'cli', 'dist', 'main.js')) && fs.existsSync(path.join(ROOT, 'native', 'build', 'Release', 'tme.node'));

let work: string;
let archive: string;
let home: string;
let tme: string;
let pathDir: string;

function runBundle(args: string[], extraEnv: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  // env -i semantics: nothing of this process's environment (its PATH has node) reaches the bundle.
  const env: NodeJS.ProcessEnv = { HOME: home, PATH: pathDir, CI: '1', ...extraEnv };
  if (fs.existsSync(LAVAPIPE)) env['VK_ICD_FILENAMES'] = LAVAPIPE;
  return spawnSync(tme, args, { env, encoding: 'utf8', timeout: 300_000, cwd: work });
}

(built ? describe : describe.skip)('the portable bundle (pnpm bundle)', () => {
  beforeAll(() => {
    work = tempDir('bundle');
    const out = path.join(work, 'out');
    const printed = execFileSync(process.execPath, [path.join(ROOT, 'apps', 'cli', 'scripts', 'bundle.js'), '--out', out], { encoding: 'utf8' });
    archive = printed.trim().split(' ')[0] as string;
    const unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['-xJf', archive, '-C', unpacked]);
    const [folder] = fs.readdirSync(unpacked);
    tme = path.join(unpacked, folder as string, 'bin', 'tme');
    home = path.join(work, 'home');
    fs.mkdirSync(home);
    pathDir = path.join(work, 'path');
    fs.mkdirSync(pathDir);
    for (const tool of ['sh', 'readlink', 'dirname']) {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      fs.symlinkSync(found, path.join(pathDir, tool));
    }
  }, 600_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('is one tar.xz under 60 MiB named tme-<version>-linux-x64', () => {
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'apps', 'cli', 'package.json'), 'utf8')) as { version: string }).version;
    expect(path.basename(archive)).toBe(`tme-${version}-linux-x64.tar.xz`);
    expect(fs.statSync(archive).size).toBeLessThan(60 * 2 ** 20);
    expect(fs.readdirSync(path.dirname(archive))).toEqual([path.basename(archive)]); // no temp file left
  });

  it('runs with no node on PATH and LD_LIBRARY_PATH unset', () => {
    const probe = spawnSync('/bin/sh', ['-c', 'command -v node || echo none'], { env: { PATH: pathDir }, encoding: 'utf8' });
    expect(probe.stdout.trim()).toBe('none');
    const r = runBundle(['--version']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('loads FFTW3f from the bundle, not from the system', () => {
    const addon = path.join(path.dirname(tme), '..', 'lib', 'tme.node');
    const ldd = execFileSync('ldd', [addon], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    const libDir = fs.realpathSync(path.dirname(addon));
    for (const lib of ['libfftw3f.so.3', 'libfftw3f_threads.so.3']) {
      const line = ldd.split('\n').find((l) => l.includes(`${lib} =>`));
      expect(line).toContain(path.join(libDir, lib));
    }
  });

  it('lists the devices and names the Vulkan loader and driver it uses', () => {
    const r = runBundle(['devices']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\bcpu\s+cpu\s+.*CPU \(FFTW3f\)/);
    if (!fs.existsSync(LAVAPIPE)) return;
    expect(r.stdout).toMatch(/llvmpipe/);
    expect(r.stdout).toMatch(/^Vulkan loader: \/\S*libvulkan\.so\.1 \(the system's\)$/m);
    expect(r.stdout).toContain(`(manifest ${LAVAPIPE})`);
    expect(r.stdout).toMatch(/^Vulkan driver: \/\S*libvulkan_lvp\.so /m);
  });

  it("falls back to its own Vulkan loader where the system's is missing", () => {
    const system = execFileSync('sh', ['-c', 'ldconfig -p | grep -m1 "libvulkan.so.1 " | sed "s/.*=> //"'], { encoding: 'utf8' }).trim();
    // A private mount namespace hides the system's loader from this run only (needs CAP_SYS_ADMIN, as root in CI).
    const hidden = spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind /dev/null "$(readlink -f '${system}')" && exec env -i HOME='${home}' PATH='${pathDir}' VK_ICD_FILENAMES='${LAVAPIPE}' '${tme}' devices`], { encoding: 'utf8' });
    if (system === '' || hidden.stderr.includes('unshare failed') || hidden.stderr.includes('Operation not permitted')) {
      console.warn(`skipped: no system loader or no mount namespace here (${hidden.stderr.trim()})`);
      return;
    }
    expect(hidden.status).toBe(0);
    expect(hidden.stdout).toMatch(/^Vulkan loader: \S+\/lib\/vulkan\/libvulkan\.so\.1 \(tme's bundled copy: the system has none\)$/m);
    expect(hidden.stdout).toMatch(/llvmpipe/);
  });

  it('runs the GPU check (test/gpu/check.sh, CI-sized) on lavapipe from the bundle alone', () => {
    if (!fs.existsSync(LAVAPIPE)) return;
    // The check's shell needs a few more tools than the launcher; still no node on PATH.
    const checkPath = path.join(work, 'check-path');
    fs.mkdirSync(checkPath);
    for (const tool of ['bash', 'sh', 'readlink', 'dirname', 'cat', 'tr', 'sed', 'find', 'head', 'mktemp', 'rm', 'tar', 'xz']) {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      fs.symlinkSync(found, path.join(checkPath, tool));
    }
    const out = path.join(work, 'gpu-check');
    const r = spawnSync(path.join(ROOT, 'test', 'gpu', 'check.sh'), [archive, '--device', '0', '--quick', '--out', out], {
      env: { HOME: home, PATH: checkPath, VK_ICD_FILENAMES: LAVAPIPE }, encoding: 'utf8', timeout: 600_000,
    });
    expect(r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('match-bench:'))).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/gpu-check: all checks passed/);
    const [file] = fs.readdirSync(out);
    const results = JSON.parse(fs.readFileSync(path.join(out, file as string), 'utf8')) as {
      machine: { slug: string };
      suites: {
        gpuCheck: {
          failed: number; agreement: Array<{ score: string; rotationMode: string; pass: boolean; maxScoreDiffOverBest: number }>; example: { recall: number };
          choices: { rows: Array<{ rotationMode: string; spectrumPrecision: string; perRotationMs: number; setupMs: number; hostSetupMs?: number; againstSingle?: { maxScoreDiffOverBest: number } }>; faster: { rotationMode: string; spectrumPrecision: string }; line: string };
        };
        match: { cases: Array<{ path: string; overC2r: number; perRotationMs: number }> };
      };
    };
    expect(file).toBe(`${results.machine.slug}.json`);
    const check = results.suites.gpuCheck;
    expect(check.failed).toBe(0);
    // Every score, both rotation modes, each within 1e-4 of the best score.
    expect(new Set(check.agreement.map((a) => a.score))).toEqual(new Set(['cc', 'lcc', 'corr', 'cam', 'flc', 'flc-sphere', 'mcc']));
    expect(new Set(check.agreement.map((a) => a.rotationMode))).toEqual(new Set(['real', 'fourier']));
    for (const a of check.agreement) expect(a.maxScoreDiffOverBest).toBeLessThanOrEqual(1e-4);
    expect(check.example.recall).toBeGreaterThanOrEqual(0.9);
    // The GPU loop's choices, each timed, float16 against float32 in the same rotation mode, and the verdict.
    expect(check.choices.rows.map((r) => `${r.rotationMode}/${r.spectrumPrecision}`)).toEqual(['real/single', 'real/half', 'fourier/single', 'fourier/half']);
    for (const r of check.choices.rows) expect(r.perRotationMs).toBeGreaterThan(0);
    // The tile's set-up timed on the device, and once on the host for comparison (printed, so a GPU run shows it).
    for (const r of check.choices.rows) expect(r.setupMs).toBeGreaterThan(0);
    expect(check.choices.rows[0]!.hostSetupMs).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/tile set-up [\d.]+ ms \(on the host: [\d.]+ ms\)/);
    for (const r of check.choices.rows.filter((x) => x.spectrumPrecision === 'half')) expect(r.againstSingle!.maxScoreDiffOverBest).toBeLessThanOrEqual(2e-3);
    expect(['real', 'fourier']).toContain(check.choices.faster.rotationMode);
    expect(['single', 'half']).toContain(check.choices.faster.spectrumPrecision);
    expect(r.stdout).toContain(`gpu-check: ${check.choices.line}`);
    expect(results.suites.match.cases.length).toBeGreaterThanOrEqual(6);
    for (const c of results.suites.match.cases) {
      expect(c.path).toMatch(/^vulkan \(llvmpipe/);
      expect(c.overC2r).toBeGreaterThan(0.3);
    }
  }, 600_000);

  it('runs the example to recall 1.0, then a small tme run on its data', () => {
    const ex = path.join(work, 'example');
    const r = runBundle(['example', ex]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = /found (\d+) of (\d+) particles \(recall ([\d.]+)\)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m?.[3])).toBe(1);

    const job = path.join(work, 'job');
    const run = runBundle(['run', '--target', path.join(ex, 'tomogram.mrc'), '--template', path.join(ex, 'template.mrc'),
      '--angular-step', '30', '--tilt-range', '-60,60', '--number', '5', '-o', job]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const picks = fs.readFileSync(path.join(job, 'picks.tsv'), 'utf8').trim().split('\n');
    expect(picks.length).toBeGreaterThan(1);
    for (const f of ['scores.mrc', 'rotations.mrc', 'job.json', 'relion/particles.star', 'report.html']) expect(fs.existsSync(path.join(job, f))).toBe(true);

    // The report's browser libraries travel inside lib/tme.js (there is no node_modules to read them from).
    const page = path.join(work, 'example-report.html');
    const report = runBundle(['report', path.join(ex, 'run'), '--truth', path.join(ex, 'truth.tsv'), '-o', page]);
    expect(report.stderr).toBe('');
    expect(report.status).toBe(0);
    expect(report.stdout).toMatch(/^tme report: \S+example-report\.html \([\d.]+ MiB\)\n$/);
    const html = fs.readFileSync(page, 'utf8');
    expect(html).toMatch(/<script data-library="d3@7\.\d+\.\d+">[\s\S]{200000,}?<\/script>/);
    expect(html).toMatch(/<script data-library="@observablehq\/plot@0\.6\.\d+">[\s\S]{100000,}?<\/script>/);
    expect(html).toMatch(/"truth":\{"file":/); // scored against truth.tsv (without it the page's data has "truth":null)
  });
});
