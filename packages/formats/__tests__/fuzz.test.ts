import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { TmeError, parseStar, readEm, readMrc, readMrcHeader, readMrcSlab, readStructure, writeEm, readVolume } from '../src';
import { fixture, tempDir } from './helpers';

// Thousands of truncated and mutated inputs: every reader either returns or throws a coded TmeError, quickly.
const dir = tempDir('tme-fuzz-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function onlyCodedErrors(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    if (!(err instanceof TmeError)) throw err;
    expect(err.oneLine).not.toMatch(/\n/);
  }
}

/** A file's bytes with some bytes overwritten (mostly inside the header) and an optional truncation. */
const mutation = (size: number, headerBytes: number) => fc.record({
  edits: fc.array(fc.record({
    at: fc.oneof(fc.nat(headerBytes - 1), fc.nat(size - 1)),
    value: fc.integer({ min: 0, max: 255 }),
  }), { minLength: 1, maxLength: 12 }),
  // Whole words too: dimensions, mode, nsymbt set to extreme values.
  words: fc.array(fc.record({
    word: fc.nat(headerBytes / 4 - 1),
    value: fc.oneof(fc.constantFrom(0, -1, 1, 2, 4, 12, 0x7fffffff, -0x80000000, 1 << 20), fc.integer()),
  }), { maxLength: 3 }),
  cut: fc.option(fc.nat(size), { nil: undefined }),
});

function apply(original: Uint8Array, m: { edits: { at: number; value: number }[]; words: { word: number; value: number }[]; cut: number | undefined }): Uint8Array {
  const b = original.slice();
  const v = new DataView(b.buffer);
  for (const e of m.edits) b[e.at] = e.value;
  for (const w of m.words) v.setInt32(4 * w.word, w.value, true);
  return m.cut === undefined ? b : b.subarray(0, m.cut);
}

describe('fuzz: only coded errors, no crash, no hang', () => {
  test('MRC readers on mutated and truncated files', () => {
    const sources = ['mode2_float32.mrc', 'mode12_float16.mrc', 'mode2_float32_bigendian.mrc', 'mode2_exthdr.mrc', 'mode0_int8_neg.mrc']
      .map((n) => new Uint8Array(fs.readFileSync(fixture(n))));
    const p = path.join(dir, 'fuzz.mrc');
    fc.assert(fc.property(fc.nat(sources.length - 1), mutation(1024 + 256, 1024), (k, m) => {
      const src = sources[k]!;
      fs.writeFileSync(p, apply(src, { ...m, edits: m.edits.map((e) => ({ ...e, at: e.at % src.length })) }));
      onlyCodedErrors(() => readMrcHeader(p));
      onlyCodedErrors(() => readMrc(p));
      onlyCodedErrors(() => readMrc(p, { dtype: 'native' }));
      onlyCodedErrors(() => readMrcSlab(p, 1, 2));
    }), { numRuns: 800 });
  });

  test('EM reader on mutated and truncated files', () => {
    const p0 = path.join(dir, 'src.em');
    writeEm(p0, readVolume(fixture('mode2_float32.mrc')));
    const src = new Uint8Array(fs.readFileSync(p0));
    const p = path.join(dir, 'fuzz.em');
    fc.assert(fc.property(mutation(src.length, 512), fc.integer({ min: 0, max: 12 }), (m, type) => {
      const b = apply(src, m);
      if (b.length > 3 && m.edits.length % 2 === 0) b[3] = type;
      fs.writeFileSync(p, b);
      onlyCodedErrors(() => readEm(p));
      onlyCodedErrors(() => readEm(p, { dtype: 'native' }));
    }), { numRuns: 500 });
  });

  test('STAR parser on random and mutated text', () => {
    const good = fs.readFileSync('/work/shared/fixtures/pytme/peer128_flcs_a15.relion4.star', 'utf8').slice(0, 3000);
    const piece = fc.constantFrom('data_', 'data_x', 'loop_', '_rlnA', '_rlnB #2', '"', "'", '"a b"', '#', '# version 30001', ';', '\n', ' ', '1.5', 'x', '\0', '\r\n', '\t');
    fc.assert(fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
      onlyCodedErrors(() => parseStar(parts.join(' ')));
      onlyCodedErrors(() => parseStar(parts.join('')));
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.nat(good.length), fc.nat(good.length), fc.string({ maxLength: 5 }), (a, b, s) => {
      onlyCodedErrors(() => parseStar(good.slice(0, Math.min(a, b)) + s + good.slice(Math.max(a, b))));
    }), { numRuns: 1000 });
  });

  test('structure reader on mutated PDB and mmCIF', async () => {
    const texts = ['two-models.pdb', 'two-models.cif'].map((n) => fs.readFileSync(path.join(__dirname, 'fixtures', n), 'latin1'));
    const p = path.join(dir, 'fuzz.pdb');
    await fc.assert(fc.asyncProperty(fc.nat(1), fc.nat(2000), fc.nat(2000), fc.string({ maxLength: 8 }), async (k, a, b, s) => {
      const t = texts[k]!;
      const i = a % (t.length + 1);
      const j = b % (t.length + 1);
      fs.writeFileSync(p, Buffer.from(t.slice(0, Math.min(i, j)) + s + t.slice(Math.max(i, j)), 'latin1'));
      try {
        await readStructure(p);
      } catch (err) {
        if (!(err instanceof TmeError)) throw err;
      }
    }), { numRuns: 300 });
    // Bytes that look like BinaryCIF (a MessagePack map) or gzip, then garbage.
    await fc.assert(fc.asyncProperty(fc.constantFrom(0x80, 0x85, 0x8f, 0xde, 0xdf, 0x1f), fc.uint8Array({ maxLength: 64 }), async (first, rest) => {
      const b = new Uint8Array(rest.length + 2);
      b[0] = first;
      b[1] = first === 0x1f ? 0x8b : 0xa4;
      b.set(rest, 2);
      fs.writeFileSync(p, b);
      try {
        await readStructure(p);
      } catch (err) {
        if (!(err instanceof TmeError)) throw err;
      }
    }), { numRuns: 300 });
  });
});
