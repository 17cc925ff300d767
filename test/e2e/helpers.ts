/**
 * Shared by the CLI end-to-end tests: run the REAL built `tme` binary (apps/cli/dist/main.js, built by turbo before
 * this package's tests) as a child process, and make tiny inputs for it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createVolume, writeMrc, type Volume, type Zyx } from '@tme/formats';

/** The built `tme` binary. */
export const TME = path.join(__dirname, '..', '..', 'apps', 'cli', 'dist', 'main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the child, ms. */
  ms: number;
  timedOut: boolean;
}

export interface RunningCli {
  child: ChildProcess;
  done: Promise<CliResult>;
}

/** Starts `node main.js ...args` with CI=1 (no progress bars) and collects its output; killed after timeoutMs. */
export function startTme(args: readonly string[], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const started = Date.now();
  const child = spawn(process.execPath, [TME, ...args], {
    cwd: options.cwd, env: { ...process.env, CI: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, options.timeoutMs ?? 120_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });
  return { child, done };
}

export function runTme(args: readonly string[], options: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startTme(args, options).done;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tme-e2e-${prefix}-`));
}

/** Deterministic uniform [0, 1) generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An asymmetric blob template (a few Gaussians) in a cubic box of `n` voxels. */
export function blobTemplate(n: number, voxel = 10): Volume {
  const data = new Float32Array(n * n * n);
  const c = Math.floor(n / 2);
  const s = n / 8;
  const blobs: Array<[number, number, number, number]> = [[0, 0, 0, 1], [s * 1.5, 0, 0, 0.8], [0, s, 0, 0.6], [0, 0, s * 2, 0.9]];
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    let v = 0;
    for (const [bx, by, bz, a] of blobs) {
      const d2 = (x - c - bx) ** 2 + (y - c - by) ** 2 + (z - c - bz) ** 2;
      v += a * Math.exp(-d2 / (2 * (s * 0.8) ** 2));
    }
    data[(z * n + y) * n + x] = v;
  }
  return createVolume(data, [n, n, n], [voxel, voxel, voxel], [0, 0, 0]);
}

/** Gaussian noise plus one copy of the template (unrotated) at the centre. */
export function noisyTarget(shape: Zyx, template: Volume, seed = 1, voxel = 10): Volume {
  const [nz, ny, nx] = shape;
  const next = rng(seed);
  const data = new Float32Array(nz * ny * nx);
  for (let i = 0; i < data.length; i += 2) {
    const u = Math.max(next(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u)) * 0.3;
    const t = 2 * Math.PI * next();
    data[i] = r * Math.cos(t);
    if (i + 1 < data.length) data[i + 1] = r * Math.sin(t);
  }
  const [tz, ty, tx] = template.shape;
  const oz = Math.floor(nz / 2 - tz / 2), oy = Math.floor(ny / 2 - ty / 2), ox = Math.floor(nx / 2 - tx / 2);
  for (let z = 0; z < tz; z++) for (let y = 0; y < ty; y++) for (let x = 0; x < tx; x++) {
    const i = ((z + oz) * ny + (y + oy)) * nx + (x + ox);
    data[i] = (data[i] as number) + (template.data[(z * ty + y) * tx + x] as number);
  }
  return createVolume(data, shape, [voxel, voxel, voxel], [0, 0, 0]);
}

export function writeVolume(file: string, volume: Volume): string {
  writeMrc(file, volume);
  return file;
}

/** The voxel data of an MRC file (bytes after the 1024-byte header and the extended header). */
export function mrcData(file: string): Buffer {
  const buf = fs.readFileSync(file);
  const nsymbt = buf.readInt32LE(92);
  return buf.subarray(1024 + nsymbt);
}

/** Every entry under `dir`, recursively, relative; empty when `dir` does not exist. */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map(String).sort();
}
