import * as fs from 'node:fs';
import * as path from 'node:path';
import { MRC_HEADER_BYTES, encodeMrcHeaderFields, mrcHeaderFieldsFor, readMrcHeader, readMrcSlab, createVolume } from '../src';
import { tempDir } from './helpers';

// A 4 GiB tomogram as a sparse file (no disk blocks, no data written but one section): reading a slab must touch
// only its bytes, so this is fast and small in memory although the file is larger than any typed array.
const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('slab of a sparse 4 GiB MRC: header and one section read without reading the rest', () => {
  const [nz, ny, nx] = [1024, 1024, 1024];
  const p = path.join(dir, 'big.mrc');
  const fake = createVolume(new Float32Array(1), [1, 1, 1], 10);
  const fields = mrcHeaderFieldsFor(fake, { min: 0, max: 1, mean: 0, std: 0, count: 1 }, {});
  Object.assign(fields, { nx, ny, nz, mx: nx, my: ny, mz: nz, cella: [nx * 10, ny * 10, nz * 10] as [number, number, number] });
  const fd = fs.openSync(p, 'w');
  try {
    fs.writeSync(fd, encodeMrcHeaderFields(fields), 0, MRC_HEADER_BYTES, 0);
    const section = new Float32Array(nx * ny);
    for (let i = 0; i < section.length; i++) section[i] = i % 977;
    fs.writeSync(fd, new Uint8Array(section.buffer), 0, section.byteLength, MRC_HEADER_BYTES + 700 * nx * ny * 4);
    fs.ftruncateSync(fd, MRC_HEADER_BYTES + nx * ny * nz * 4);
  } finally {
    fs.closeSync(fd);
  }
  const h = readMrcHeader(p);
  expect(h.shape).toEqual([1024, 1024, 1024]);
  const before = process.memoryUsage().rss;
  const t0 = Date.now();
  const slab = readMrcSlab(p, 699, 3);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(process.memoryUsage().rss - before).toBeLessThan(200 * 2 ** 20);
  expect(slab.shape).toEqual([3, 1024, 1024]);
  expect(slab.origin[0]).toBe(6990);
  const plane = nx * ny;
  expect(slab.data[0]).toBe(0); // section 699: a hole, zeros
  expect(slab.data[plane + 5000]).toBe(5000 % 977); // section 700: the data written
  expect(slab.data[plane + plane - 1]).toBe((plane - 1) % 977);
  expect(slab.data[2 * plane + 123]).toBe(0);
});
