import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  StarFile, TmeError, formatStar, formatStarNumber, parseStar, readStar, starBlock, starColumn, starLoopWith,
  starNumbers, writeStar,
} from '../src';
import { tempDir } from './helpers';

const dir = tempDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const PYTME = '/work/shared/fixtures/pytme';

const RELION_LIKE = `
# Written by hand in RELION 3.1 style
# version 30001

data_optics

loop_
_rlnOpticsGroup #1
_rlnOpticsGroupName #2
_rlnImagePixelSize #3
_rlnImageSize #4
_rlnImageDimensionality #5
_rlnVoltage #6
_rlnSphericalAberration #7
1 opticsGroup1 10.000000 40 3 300.000000 2.700000

# version 30001

data_particles

loop_
_rlnImageName #1
_rlnAngleRot #2
_rlnAngleTilt #3
_rlnMicrographName #4
_rlnOpticsGroup #5
Subtomograms/sub_000.mrc 28.960710 76.965756 "tomo one.mrc" 1
Subtomograms/sub_001.mrc -1.5e-3   12  'it''s.mrc' 1
   # a comment between rows
Subtomograms/sub_002.mrc 0 0 "" 1

data_general

_rlnTomoSubTomosAre2DStacks    1
_rlnTomoName  "TS 01"
`;

describe('STAR', () => {
  test('parses blocks, loops, pairs, version lines, comments and quoted strings', () => {
    const s = parseStar(RELION_LIKE);
    expect(s.blocks.map((b) => b.name)).toEqual(['optics', 'particles', 'general']);
    const optics = s.blocks[0]!;
    expect(optics.version).toBe('30001');
    expect(optics.comments).toEqual([' Written by hand in RELION 3.1 style']);
    expect(optics.loops[0]!.labels).toEqual(['rlnOpticsGroup', 'rlnOpticsGroupName', 'rlnImagePixelSize', 'rlnImageSize',
      'rlnImageDimensionality', 'rlnVoltage', 'rlnSphericalAberration']);
    expect(optics.loops[0]!.rows).toEqual([['1', 'opticsGroup1', '10.000000', '40', '3', '300.000000', '2.700000']]);
    const p = starBlock(s, 'particles')!;
    expect(p.version).toBe('30001');
    const loop = starLoopWith(p, 'rlnAngleRot')!;
    expect(starColumn(loop, 'rlnMicrographName')).toEqual(['tomo one.mrc', "it''s.mrc", '']);
    expect(Array.from(starNumbers(loop, 'rlnAngleRot'))).toEqual([28.96071, -0.0015, 0]);
    expect(p.comments).toEqual([' a comment between rows']);
    const g = starBlock(s, 'general')!;
    expect(g.version).toBeUndefined();
    expect(g.pairs).toEqual([{ key: 'rlnTomoSubTomosAre2DStacks', value: '1' }, { key: 'rlnTomoName', value: 'TS 01' }]);
  });

  test('round trip: parse → format → parse is identical, and format is a fixed point', () => {
    const s = parseStar(RELION_LIKE);
    const text = formatStar(s);
    expect(parseStar(text)).toEqual(s);
    expect(formatStar(parseStar(text))).toBe(text);
    for (const f of fs.readdirSync(PYTME).filter((n) => n.endsWith('.star'))) {
      const a = readStar(path.join(PYTME, f));
      const out = path.join(dir, f);
      writeStar(out, a);
      const b = readStar(out);
      expect(b).toEqual(a);
      expect(b.blocks[0]!.loops[0]!.labels[0]).toBe('rlnCoordinateX');
    }
  });

  test('pyTME fixture: labels in order and numbers', () => {
    const s = readStar(path.join(PYTME, 'peer128_flcs_a15.relion5.star'));
    const b = starBlock(s, 'particles')!;
    expect(b.version).toBe('50001');
    const loop = b.loops[0]!;
    expect(loop.labels).toEqual(['rlnCoordinateX', 'rlnCoordinateY', 'rlnCoordinateZ', 'rlnAngleRot', 'rlnAngleTilt',
      'rlnAnglePsi', 'rlnClassNumber', 'rlnMicrographName', 'pytmeScore']);
    expect(starNumbers(loop, 'rlnAngleRot')[0]).toBe(-23.7166);
    expect(starColumn(loop, 'rlnMicrographName')[1]).toBe('peer128.mrc');
    expect(() => starNumbers(loop, 'rlnMicrographName')).toThrow(/row 1 is "peer128.mrc", not a number/);
    expect(() => starColumn(loop, 'rlnNope')).toThrow(expect.objectContaining({ code: 'ERR_TME_FORMAT' }));
  });

  test('numbers: fixed point, no exponent, no negative zero', () => {
    expect(formatStarNumber(1.5e-7)).toBe('0.000000');
    expect(formatStarNumber(123456789.123)).toBe('123456789.123000');
    expect(formatStarNumber(-1e-9)).toBe('0.000000');
    expect(formatStarNumber(2.5, 2)).toBe('2.50');
    expect(formatStarNumber(7, 0)).toBe('7');
    expect(formatStarNumber(1e20, 0)).toBe('100000000000000000000');
    expect(() => formatStarNumber(NaN)).toThrow(expect.objectContaining({ code: 'ERR_TME_INVALID_OPTION' }));
  });

  const relion = spawnSync('relion_star_printtable', ['--help'], { encoding: 'utf8' });
  const hasRelion = relion.error === undefined;
  (hasRelion ? test : test.skip)('RELION reads what tme writes (relion_star_printtable)', () => {
    const star: StarFile = {
      blocks: [
        { name: 'optics', version: '30001', comments: [], pairs: [], loops: [{ labels: ['rlnOpticsGroup', 'rlnImagePixelSize'], rows: [['1', formatStarNumber(10)]] }] },
        {
          name: 'particles', version: '30001', comments: [], pairs: [],
          loops: [{
            labels: ['rlnImageName', 'rlnAngleRot', 'rlnAngleTilt', 'rlnOpticsGroup'],
            rows: [['sub_0.mrc', formatStarNumber(28.96071), formatStarNumber(1e-7), '1'], ['sub_1.mrc', formatStarNumber(-170.25), formatStarNumber(90), '1']],
          }],
        },
      ],
    };
    const p = path.join(dir, 'relion.star');
    writeStar(p, star);
    const r = spawnSync('relion_star_printtable', [p, 'data_particles', 'rlnImageName', 'rlnAngleRot', 'rlnAngleTilt'], { encoding: 'utf8', timeout: 20000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/))).toEqual([
      ['sub_0.mrc', '28.960710', '0.000000'], ['sub_1.mrc', '-170.250000', '90.000000'],
    ].map((row) => row));
  });

  test.each([
    ['loop_\n_a\n1\n', /line 1: "loop_" before the first data_ block/],
    ['data_x\nloop_\n_a #1\n_b #2\n1 2\n3\n', /line 6: loop in data_x has 2 labels but its last row has 1 values/],
    ['data_x\nloop_\n1 2\n', /loop_ without labels/],
    ['data_x\n_key\n', /_key has no value/],
    ['data_x\n_a "unterminated\n', /line 2: unterminated double-quoted string/],
    ['just text\n', /before the first data_ block/],
    ['', /no data_ block/],
    ['data_x\n\0\0', /binary content/],
    ['data_x\n_a 1\nstray\n', /line 3: unexpected "stray"/],
  ])('bad input %# → one-line coded error', (text, message) => {
    let err: unknown;
    try { parseStar(text, 'in.star'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(TmeError);
    expect((err as TmeError).code).toBe('ERR_TME_FORMAT');
    expect((err as TmeError).oneLine).toMatch(message);
    expect((err as TmeError).oneLine.startsWith('in.star: ')).toBe(true);
  });

  test('writer refuses values it cannot write and rows of the wrong length', () => {
    const mk = (rows: string[][]): StarFile => ({ blocks: [{ name: 'x', comments: [], pairs: [], loops: [{ labels: ['a', 'b'], rows }] }] });
    expect(() => formatStar(mk([['1']]))).toThrow(/2 values per row/);
    expect(() => formatStar(mk([['a\nb', '1']]))).toThrow(/without line breaks/);
    expect(formatStar(mk([['_x', '#y']]))).toContain('"_x" "#y"');
    expect(() => readStar(path.join(dir, 'missing.star'))).toThrow(expect.objectContaining({ code: 'ERR_TME_IO' }));
  });
});
