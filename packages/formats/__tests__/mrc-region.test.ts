import * as fs from 'node:fs';
import * as path from 'node:path';
import { MrcRegionReader, MrcRegionWriter, readMrc, readMrcHeader, writeMrc, createVolume, type Zyx } from '../src';
import { fixture, tempDir } from './helpers';

const FILES = [
  'mode0_int8_neg.mrc', 'mode1_int16.mrc', 'mode2_float32.mrc', 'mode2_float32_bigendian.mrc', 'mode2_exthdr.mrc',
  'mode6_uint16.mrc', 'mode12_float16.mrc', 'mode2_origin_nstart.mrc',
];

/** The box [start, start + shape) of a whole volume, as region reads must give it. */
function crop(data: Float32Array, volume: Zyx, start: Zyx, shape: Zyx): Float32Array {
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let z = 0; z < shape[0]; z++) {
    for (let y = 0; y < shape[1]; y++) {
      for (let x = 0; x < shape[2]; x++) {
        out[(z * shape[1] + y) * shape[2] + x] = data[((start[0] + z) * volume[1] + start[1] + y) * volume[2] + start[2] + x] as number;
      }
    }
  }
  return out;
}

test.each(FILES)('region reads of %s equal the whole read (every box shape: rows, sections, blocks)', (name) => {
  const whole = readMrc(fixture(name));
  const reader = new MrcRegionReader(fixture(name));
  try {
    expect(reader.shape).toEqual(whole.shape);
    expect(reader.voxelSize).toEqual(whole.voxelSize);
    expect(reader.origin).toEqual(whole.origin);
    const [nz, ny, nx] = whole.shape;
    const boxes: Array<[Zyx, Zyx]> = [
      [[0, 0, 0], [nz, ny, nx]],
      [[nz - 1, 0, 0], [1, ny, nx]],
      [[0, 1, 0], [nz, ny - 1, nx]],
      [[Math.floor(nz / 2), 1, 1], [nz - Math.floor(nz / 2), Math.max(1, ny - 2), Math.max(1, nx - 2)]],
    ];
    for (const [start, shape] of boxes) expect(reader.readRegion(start, shape)).toEqual(crop(whole.data, whole.shape, start, shape));
    expect(() => reader.readRegion([0, 0, 0], [nz + 1, ny, nx])).toThrow(/region/);
  } finally {
    reader.close();
  }
});

test('a map written box by box is byte for byte the one writeMrc writes whole; nothing at the path before commit', () => {
  const dir = tempDir();
  const shape: Zyx = [7, 9, 11];
  let seed = 3;
  const data = Float32Array.from({ length: 7 * 9 * 11 }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed / 2 ** 32 - 0.3));
  const volume = createVolume(data, shape, [2, 2.5, 3], [10, 20, 30]);
  writeMrc(path.join(dir, 'whole.mrc'), volume);
  const out = path.join(dir, 'regions.mrc');
  const writer = new MrcRegionWriter(out, { shape, voxelSize: volume.voxelSize, origin: volume.origin });
  // Out of order, in boxes that split every axis.
  const boxes: Array<[Zyx, Zyx]> = [];
  for (const [z0, zn] of [[4, 3], [0, 4]] as const) for (const [y0, yn] of [[0, 5], [5, 4]] as const) for (const [x0, xn] of [[6, 5], [0, 6]] as const) boxes.push([[z0, y0, x0], [zn, yn, xn]]);
  for (const [start, box] of boxes) writer.writeRegion(start, box, crop(data, shape, start, box));
  expect(fs.existsSync(out)).toBe(false);
  writer.commit();
  expect(fs.readFileSync(out).equals(fs.readFileSync(path.join(dir, 'whole.mrc')))).toBe(true);
  expect(fs.readdirSync(dir).sort()).toEqual(['regions.mrc', 'whole.mrc']);
  // Aborted: no file, no temporary file.
  const aborted = new MrcRegionWriter(path.join(dir, 'aborted.mrc'), { shape, voxelSize: volume.voxelSize, origin: volume.origin });
  aborted.abort();
  expect(fs.readdirSync(dir).sort()).toEqual(['regions.mrc', 'whole.mrc']);
  fs.rmSync(dir, { recursive: true });
});

test('more than 2^32−1 voxels: the header and any region read (a sparse file); a whole read is refused in one line', () => {
  const dir = tempDir();
  const file = path.join(dir, 'big.mrc');
  const [nz, ny, nx] = [1100, 2048, 2048];
  const small = path.join(dir, 'small.mrc');
  writeMrc(small, createVolume(new Float32Array(1), [1, 1, 1], 5));
  const header = Buffer.from(fs.readFileSync(small).subarray(0, 1024));
  header.writeInt32LE(nx, 0); header.writeInt32LE(ny, 4); header.writeInt32LE(nz, 8);
  header.writeInt32LE(nx, 28); header.writeInt32LE(ny, 32); header.writeInt32LE(nz, 36);
  header.writeFloatLE(5 * nx, 40); header.writeFloatLE(5 * ny, 44); header.writeFloatLE(5 * nz, 48);
  fs.writeFileSync(file, header);
  fs.truncateSync(file, 1024 + 4 * nz * ny * nx);
  const fd = fs.openSync(file, 'r+');
  const value = Buffer.alloc(4); value.writeFloatLE(2.5, 0);
  fs.writeSync(fd, value, 0, 4, 1024 + 4 * (((nz - 1) * ny + 7) * nx + 3));
  fs.closeSync(fd);
  expect(readMrcHeader(file).shape).toEqual([nz, ny, nx]);
  const reader = new MrcRegionReader(file);
  const box = reader.readRegion([nz - 2, 6, 2], [2, 3, 3]);
  reader.close();
  expect(Array.from(box).map((v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0)).toEqual([9 + 3 + 1]);
  expect(box[13]).toBe(2.5);
  expect(() => readMrc(file)).toThrow(/2048×2048×1100 voxels exceed the 2\^32−1/);
  fs.rmSync(dir, { recursive: true });
});
