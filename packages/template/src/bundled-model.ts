import * as path from 'node:path';

/** File name of the bundled real molecule (PDB 1TII, see data/README.md). */
export const BUNDLED_MODEL_FILE = '1tii.pdb';

/** Absolute path of the bundled atomic model; works from src/ (ts-jest) and dist/ alike. */
export function bundledModelPath(): string {
  return path.join(__dirname, '..', 'data', BUNDLED_MODEL_FILE);
}
