import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const FIXTURES = '/work/shared/fixtures/mrc';
export const fixture = (name: string): string => path.join(FIXTURES, name);

export function tempDir(prefix = 'tme-formats-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Debian's python3 with python3-mrcfile (the system one, not a venv). */
export const PYTHON = '/usr/bin/python3';

export function python(code: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** mrcfile.validate: exit 0 when valid; stdout carries its findings. */
export function mrcfileValidate(file: string): { valid: boolean; output: string } {
  const r = python('import mrcfile,sys; sys.exit(0 if mrcfile.validate(sys.argv[1]) else 1)', file);
  return { valid: r.status === 0, output: r.stdout + r.stderr };
}

/** The value at (z, y, x) of a volume's data. */
export function at(v: { data: ArrayLike<number>; shape: readonly number[] }, z: number, y: number, x: number): number {
  const ny = v.shape[1]!;
  const nx = v.shape[2]!;
  return v.data[(z * ny + y) * nx + x]!;
}
