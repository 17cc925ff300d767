import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseTiltAngles, parseDoseFile } from '../src/metadata/columns';
import { parseImodDefocus, imodDefocusPerView } from '../src/metadata/imod-defocus';
import { parseCtffind } from '../src/metadata/ctffind';
import { parseMdoc } from '../src/metadata/mdoc';
import { parseRelionTomograms, parseRelionTiltSeries, selectRelionTomogram } from '../src/metadata/relion';
import { parseWarpXml } from '../src/metadata/warp-xml';
import { buildTilts, mdocMicroscope, tiltsFromMdoc, tiltsFromRelion, tiltsFromWarp, tiltsFromImod } from '../src/metadata/tilts';
import { DEFAULT_MICROSCOPE, resolveMicroscope } from '../src/ctf';
import { isTmeError } from '@tme/formats';

const fixture = (name: string) => readFileSync(path.join(__dirname, 'fixtures', name), 'utf8');

describe('IMOD tilt angles and dose files', () => {
  it('reads .rawtlt angles in order, duplicates kept', () => {
    expect(parseTiltAngles(fixture('ts01.rawtlt'))).toEqual([-60, -57, -54.01, -3, 0, 0, 3, 54, 57.02, 60]);
  });
  it('reads the first or a chosen column of a multi-column file, skipping blank lines', () => {
    expect(parseTiltAngles(fixture('ts01_two_columns.tlt'))).toEqual([-60.13, -57.09, -0.05, 56.95]);
    expect(parseTiltAngles(fixture('ts01_two_columns.tlt'), { column: 1 })).toEqual([0.998, 0.997, 1, 0.996]);
  });
  it('reads one dose per line and rejects bad values with the file and line', () => {
    expect(parseDoseFile(fixture('ts01_dose.txt'))).toEqual([87.5, 82.5, 77.5, 7.5, 0, 2.5, 5, 77.5, 82.5, 87.5]);
    try {
      parseTiltAngles('10\nabc\n', { file: 'bad.tlt' });
      throw new Error('no throw');
    } catch (e) {
      expect(isTmeError(e, 'ERR_TME_FORMAT')).toBe(true);
      expect((e as Error).message).toBe('Line 2: expected a number for tilt angle but found "abc"');
      expect((e as { file?: string }).file).toBe('bad.tlt');
    }
    expect(() => parseTiltAngles('95\n')).toThrow('Tilt angle 95 is outside (−90°, 90°)');
  });
});

describe('IMOD .defocus', () => {
  it('version 2: nm → Å, view ranges expanded per view', () => {
    const f = parseImodDefocus(fixture('ts01_v2.defocus'));
    expect(f.version).toBe(2);
    expect(f.entries).toHaveLength(5);
    expect(f.entries[0]).toEqual({ startView: 1, endView: 1, startAngle: -60, endAngle: -60, defocus1: 40123, defocus2: 40123, astigmatismAngle: 0, phaseShift: 0 });
    const per = imodDefocusPerView(f, 10).map((e) => e.defocus1);
    expect(per).toEqual([40123, 39981, 39500, 39500, 39217, 39217, 39217, 38904, 38904, 38904]);
    expect(() => imodDefocusPerView(f, 11)).toThrow('IMOD defocus file has no estimate for view 11 of 11');
  });
  it('version 3: header line skipped, astigmatism and phase (rad → deg)', () => {
    const f = parseImodDefocus(fixture('ts01_v3.defocus'));
    expect(f.version).toBe(3);
    expect(f.entries).toHaveLength(3);
    const e = f.entries[0]!;
    expect([e.defocus1, e.defocus2, e.astigmatismAngle]).toEqual([40123, 39817, -42.15]);
    expect(e.phaseShift).toBeCloseTo(30.0, 2);
    expect([f.entries[2]!.startView, f.entries[2]!.endView]).toEqual([3, 10]);
  });
});

describe('CTFFIND4', () => {
  it('reads the header microscope and every row (phase shift in degrees)', () => {
    const r = parseCtffind(fixture('ts01_ctffind.txt'));
    expect([r.pixelSize, r.voltage, r.sphericalAberration, r.amplitudeContrast]).toEqual([1.35, 300, 2.7, 0.07]);
    expect(r.rows).toHaveLength(3);
    expect(r.rows[0]).toEqual({ micrograph: 1, defocus1: 40123.45, defocus2: 39817.02, astigmatismAngle: -42.15, phaseShift: 0, crossCorrelation: 0.058211, fitResolution: 8.421 });
    expect(r.rows[2]!.phaseShift).toBeCloseTo(30, 4);
  });
});

describe('SerialEM .mdoc', () => {
  const m = parseMdoc(fixture('ts01.mrc.mdoc'));
  it('reads global keys and ZValue sections; defocus µm (negative underfocus) → Å positive', () => {
    expect(m.pixelSpacing).toBe(1.35);
    expect(m.voltage).toBe(300);
    expect(m.global.ImageFile).toBe('ts01.mrc');
    expect(m.tilts.map((t) => t.tiltAngle)).toEqual([-3, 0, 3]);
    expect(m.tilts.map((t) => t.defocus)).toEqual([39812, 39500, 39711]);
  });
  it('accumulates dose in acquisition (DateTime) order: 0° first, then 3°, then −3°', () => {
    expect(m.tilts.map((t) => t.preExposure)).toEqual([5, 0, 2.5]);
    const tilts = tiltsFromMdoc(m);
    expect(tilts[0]).toEqual({ angle: -3, dose: 5, ctf: { defocus: 39812, voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07 } });
  });
  it('microscope: a typed value wins over the mdoc, the mdoc over DEFAULT_MICROSCOPE', () => {
    const m200 = parseMdoc(fixture('ts01_200kV.mrc.mdoc'));
    expect(tiltsFromMdoc(m200)[1]!.ctf).toEqual({ defocus: 39500, voltage: 200, sphericalAberration: 2.7, amplitudeContrast: 0.07 });
    expect(tiltsFromMdoc(m200, { voltage: 120, amplitudeContrast: 0.1 })[1]!.ctf).toEqual({ defocus: 39500, voltage: 120, sphericalAberration: 2.7, amplitudeContrast: 0.1 });
    // An undefined entry is "not typed": the file's value stays.
    expect(tiltsFromMdoc(m200, { voltage: undefined })[1]!.ctf!.voltage).toBe(200);
    expect(resolveMicroscope({ sphericalAberration: 0.01 }, mdocMicroscope(m200))).toEqual({
      microscope: { voltage: 200, sphericalAberration: 0.01, amplitudeContrast: DEFAULT_MICROSCOPE.amplitudeContrast },
      source: { voltage: 'file', sphericalAberration: 'flag', amplitudeContrast: 'default' },
    });
  });
});

describe('SerialEM PriorRecordDose', () => {
  it('uses PriorRecordDose when every section has it', () => {
    const text = '[ZValue = 0]\nTiltAngle = 0\nExposureDose = 3\nPriorRecordDose = 0\n\n[ZValue = 1]\nTiltAngle = 3\nExposureDose = 3\nPriorRecordDose = 9.5\n';
    expect(parseMdoc(text).tilts.map((t) => t.preExposure)).toEqual([0, 9.5]);
    expect(() => parseMdoc('PixelSpacing = 1\n', { file: 'x.mdoc' })).toThrow('No [ZValue = n] sections in mdoc');
  });
});

describe('RELION 5 STAR', () => {
  it('reads tomograms.star rows', () => {
    const t = parseRelionTomograms(fixture('tomograms.star'));
    expect(t).toHaveLength(2);
    expect(t[0]).toEqual({
      name: 'TS_01', voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.1, tiltSeriesPixelSize: 1.35, hand: -1, binning: 8,
      size: [2000, 4096, 4096], tiltSeriesStarFile: 'Tomograms/job007/tilt_series/TS_01.star', reconstructedTomogram: 'Tomograms/job007/tomograms/rec_TS_01.mrc',
    });
  });
  it('reads per-tilt angle, pre-exposure, defocus U/V/angle and builds tilts', () => {
    const tilts = parseRelionTiltSeries(fixture('TS_01.star'));
    expect(tilts.map((t) => t.tiltAngle)).toEqual([0, 3, -3]);
    expect(tilts[1]).toEqual({ tiltAngle: 3, yTilt: 3.512, preExposure: 3, defocusU: 39671.089844, defocusV: 39350, defocusAngle: 44.900002 });
    const tomo = parseRelionTomograms(fixture('tomograms.star'))[0]!;
    const built = tiltsFromRelion(tomo, tilts);
    expect(built[2]).toEqual({ angle: -3, dose: 6, ctf: { defocus: 39433, defocus2: 39120.5, astigmatismAngle: 45.5, voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.1 } });
  });
  it('chooses the tomogram by name, else by the target file, else refuses with the names', () => {
    const t = parseRelionTomograms(fixture('tomograms.star'));
    const file = { file: 'tomograms.star' };
    expect(selectRelionTomogram(t, { name: 'TS_02' }, file).name).toBe('TS_02');
    expect(selectRelionTomogram(t, { target: '/data/rec_TS_02.mrc' }, file).name).toBe('TS_02'); // rlnTomoReconstructedTomogram
    expect(selectRelionTomogram(t, { target: 'TS_01.mrc' }, file).name).toBe('TS_01');
    expect(selectRelionTomogram(t, { target: 'TS_01_bin8_denoised.mrc' }, file).name).toBe('TS_01');
    expect(() => selectRelionTomogram(t, { name: 'TS_9' }, file)).toThrow('no tomogram named TS_9 (--tomo-name); it lists TS_01, TS_02');
    expect(() => selectRelionTomogram(t, { target: 'lamella3.mrc' }, file))
      .toThrow('lists 2 tomograms (TS_01, TS_02) and none is the target lamella3.mrc: choose one with --tomo-name');
    expect(selectRelionTomogram(t.slice(1), { target: 'lamella3.mrc' }).name).toBe('TS_02');
  });
  it('says what is missing for a non-RELION STAR', () => {
    expect(() => parseRelionTiltSeries('data_x\nloop_\n_rlnFoo #1\n1\n')).toThrow('No loop with _rlnTomoNominalStageTiltAngle');
  });
});

describe('Warp XML', () => {
  const w = parseWarpXml(fixture('TS_01.xml'));
  it('reads angles, doses, UseTilt, CTF params and GridCTF nodes (µm → Å)', () => {
    expect(w.angles).toEqual([-3, 0, 3]);
    expect(w.doses).toEqual([5, 0, 2.5]);
    expect(w.useTilt).toEqual([true, true, false]);
    expect(w.areAnglesInverted).toBe(false);
    expect(w.ctf).toEqual({ voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07, pixelSize: 1.35, defocus: 39500 });
    expect(w.defocus!.map((d) => Math.round(d * 100) / 100)).toEqual([39810, 39500, 39711]);
    expect(w.defocusAngle).toEqual([44.5, 45.1, 46]);
  });
  it('builds tilts with UseTilt applied and astigmatism D ± delta', () => {
    const t = tiltsFromWarp(w);
    expect(t).toHaveLength(2);
    expect(t[0]!.angle).toBe(-3);
    expect(t[0]!.ctf!.defocus).toBeCloseTo(39810 + 310, 6);
    expect(t[0]!.ctf!.defocus2).toBeCloseTo(39810 - 310, 6);
  });
  it('negates the angles when AreAnglesInverted="True"', () => {
    const inverted = parseWarpXml(fixture('TS_01_inverted.xml'));
    expect(inverted.areAnglesInverted).toBe(true);
    expect(inverted.angles).toEqual([-3, 0, 3]); // as written
    const t = tiltsFromWarp(inverted);
    expect(t.map((x) => x.angle)).toEqual([3, 0]); // UseTilt drops the third; the doses stay with their images
    expect(t.map((x) => x.dose)).toEqual([5, 0]);
    expect(t[0]!.ctf!.defocus).toBeCloseTo(39810 + 310, 6);
  });
  it('rejects XML without <Angles>', () => {
    expect(() => parseWarpXml('<TiltSeries></TiltSeries>', { file: 'x.xml' })).toThrow('No <Angles> element');
  });
});

describe('buildTilts', () => {
  it('checks array lengths', () => {
    expect(() => buildTilts({ angles: [0, 3], doses: [1] })).toThrow('1 doses values for 2 tilt angles');
  });
});

describe('tiltsFromImod', () => {
  it('joins .rawtlt, dose file and .defocus v3 per view', () => {
    const angles = parseTiltAngles(fixture('ts01.rawtlt'));
    const t = tiltsFromImod(angles, { doses: parseDoseFile(fixture('ts01_dose.txt')), defocus: parseImodDefocus(fixture('ts01_v3.defocus')), microscope: { voltage: 200 } });
    expect(t).toHaveLength(10);
    expect(t[0]!.angle).toBe(-60);
    expect(t[0]!.dose).toBe(87.5);
    expect(t[0]!.ctf).toMatchObject({ defocus: 40123, defocus2: 39817, astigmatismAngle: -42.15, voltage: 200 });
    expect(t[9]!.ctf!.defocus).toBe(39217);
  });
  it('takes the microscope from a CTFFIND4 header and checks the row count', () => {
    const c = parseCtffind(fixture('ts01_ctffind.txt'));
    const t = tiltsFromImod([-3, 0, 3], { defocus: c });
    expect(t[2]!.ctf).toMatchObject({ defocus: 39217, defocus2: 39002, voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.07 });
    expect(t[2]!.ctf!.phaseShift).toBeCloseTo(30, 4);
    expect(() => tiltsFromImod([0, 3], { defocus: c })).toThrow('3 CTFFIND4 rows for 2 tilt angles');
  });
});
