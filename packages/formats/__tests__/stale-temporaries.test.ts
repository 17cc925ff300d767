import * as fs from 'node:fs';
import * as path from 'node:path';
import { processAlive, removeStaleTemporaries } from '../src';
import { tempDir } from './helpers';

it('removes what killed writers left, keeps what live ones are writing and every other file', () => {
  const dir = tempDir();
  try {
    let dead = 4_000_000;
    while (processAlive(dead)) dead--;
    const names = [`.scores.mrc.${dead}.3.tmp`, `.checkpoint.bin.${process.pid}.1.tmp`, 'scores.mrc', '.notes.tmp', `.a.b.${dead}.tmp`];
    for (const n of names) fs.writeFileSync(path.join(dir, n), 'x');
    expect(removeStaleTemporaries(dir)).toEqual([`.scores.mrc.${dead}.3.tmp`]);
    expect(fs.readdirSync(dir).sort()).toEqual([`.a.b.${dead}.tmp`, `.checkpoint.bin.${process.pid}.1.tmp`, '.notes.tmp', 'scores.mrc']);
    expect(processAlive(process.pid)).toBe(true);
    expect(removeStaleTemporaries(path.join(dir, 'missing'))).toEqual([]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
