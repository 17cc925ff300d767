import { readFileSync } from 'node:fs';
import type { AtomicModel } from '../../src/atomic-model';

/** Test-only PDB ATOM reader (fixed columns), independent of @tme/formats' readStructure. */
export function readPdbAtoms(file: string, records: readonly string[] = ['ATOM']): AtomicModel {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => records.includes(l.slice(0, 6).trim()));
  const n = lines.length;
  const model = {
    x: new Float64Array(n),
    y: new Float64Array(n),
    z: new Float64Array(n),
    element: [] as string[],
    bFactor: new Float32Array(n),
    occupancy: new Float32Array(n),
  };
  lines.forEach((l, i) => {
    model.x[i] = Number(l.slice(30, 38));
    model.y[i] = Number(l.slice(38, 46));
    model.z[i] = Number(l.slice(46, 54));
    model.occupancy[i] = Number(l.slice(54, 60));
    model.bFactor[i] = Number(l.slice(60, 66));
    model.element.push(l.slice(76, 78).trim() || l.slice(12, 14).trim().replace(/[0-9]/g, ''));
  });
  return model;
}
