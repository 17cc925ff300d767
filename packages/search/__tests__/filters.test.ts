import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TmeError } from '@tme/formats';
import { buildTemplateFilter, DEFAULT_MICROSCOPE } from '@tme/template';
import { parseDefocusValue, resolveSearchOptions, searchFilters, type SearchInput } from '../src';

const FIXTURES = path.join(__dirname, '..', '..', '..', 'packages', 'template', '__tests__', 'fixtures');
const fixture = (name: string): string => path.join(FIXTURES, name);
const flags = (extra: Partial<SearchInput>): SearchInput => ({ target: 't.mrc', template: 't.mrc', angularStep: 30, ...extra });
/** The filters of a search: its options resolved (the one check), then its metadata read. */
const searchFiltersFrom = (input: SearchInput): ReturnType<typeof searchFilters> => searchFilters(resolveSearchOptions(input));
/** The one line the CLI prints for what `fn` throws. */
function refusal(fn: () => unknown): string {
  try { fn(); } catch (e) { if (e instanceof TmeError) return `tme: ${e.oneLine}`; throw e; }
  throw new Error('expected a refusal');
}

describe('--defocus values', () => {
  it.each([
    ['3um', 30000], ['3µm', 30000], ['3 μm', 30000], ['2.5um', 25000], ['3000nm', 30000], ['30000A', 30000], ['30000Å', 30000],
    ['3e4', 30000], ['30000', 30000], ['1000', 1000],
  ])('%s → %d Å', (text, angstrom) => expect(parseDefocusValue(text)).toBeCloseTo(angstrom, 6));

  it('refuses a bare value below 1000 Å with a hint, and a defocus ≤ 0; a file name is not a value', () => {
    expect(refusal(() => parseDefocusValue('3'))).toBe('tme: Expected a defocus of at least 1000 Å for --defocus but received "3" (a bare number is Å): did you mean 3um?');
    expect(refusal(() => parseDefocusValue('2.5'))).toMatch(/did you mean 2\.5um\?$/);
    expect(refusal(() => parseDefocusValue('-3um'))).toMatch(/^tme: Expected a defocus > 0 .* for --defocus but received "-3um"/);
    expect(parseDefocusValue('ts01_ctffind.txt')).toBeUndefined();
    expect(parseDefocusValue('ts01.defocus')).toBeUndefined();
  });

  it('a defocus with a unit reaches the CTF in Å', () => {
    expect(searchFiltersFrom(flags({ defocus: 35000 })).options.ctf?.ctf.defocus).toBe(35000);
  });
});

describe('no flag that silently does nothing', () => {
  it('--cosine-weighting with --tilt-range weights the continuous wedge by cos of each voxel’s tilt', () => {
    const f = searchFiltersFrom(flags({ tiltRange: [-60, 60], cosineWeighting: true }));
    expect(f.options.wedge).toEqual({ tiltRange: [-60, 60], tiltAxis: 'y', cosineWeighting: true });
    const n = 32;
    const filter = buildTemplateFilter(f.options)([n, 1, n], [1, 1, 1]);
    const at = (kz: number, kx: number): number => filter[(((kz % n) + n) % n) * (n / 2 + 1) + kx]!;
    expect(at(5, 5)).toBeCloseTo(Math.SQRT1_2, 6); // 45°
    expect(at(0, 7)).toBe(1);
    expect(at(12, 5)).toBe(0); // 67°: missing
    expect(searchFiltersFrom(flags({ tiltRange: [-60, 60] })).options.wedge?.cosineWeighting).toBe(false);
  });

  it('refuses --cosine-weighting without tilts, --tilt-range with --tilt-angles, --phase-flip or --phase-shift without a defocus', () => {
    expect(refusal(() => searchFiltersFrom(flags({ cosineWeighting: true }))))
      .toBe('tme: Expected a tilt range or angles to weight (--tilt-range or --tilt-angles) for --cosine-weighting but received "neither" of type string');
    expect(refusal(() => searchFiltersFrom(flags({ tiltRange: [-60, 60], tiltAngles: fixture('ts01.rawtlt') }))))
      .toMatch(/^tme: Expected only one of --tilt-range and --tilt-angles/);
    expect(refusal(() => searchFiltersFrom(flags({ tiltRange: [-60, 60], phaseFlip: true }))))
      .toBe('tme: Expected a defocus with --phase-flip (--defocus, or per-tilt defocus in --tilt-angles) for --phase-flip/--defocus but received "no defocus" of type string');
    expect(refusal(() => searchFiltersFrom(flags({ tiltAngles: fixture('ts01.rawtlt'), phaseShift: 90 })))).toMatch(/for --phase-shift\/--defocus/);
    // With a defocus (typed, or per tilt in the metadata) both act.
    expect(searchFiltersFrom(flags({ defocus: 30000, phaseFlip: true })).options.ctf?.flipPhase).toBe(true);
    const mdoc = searchFiltersFrom(flags({ tiltAngles: fixture('ts01.mrc.mdoc'), phaseFlip: true, phaseShift: 90 })).options.tiltWeighting!;
    expect(mdoc.flipPhase).toBe(true);
    expect(mdoc.tilts.map((t) => t.ctf?.phaseShift)).toEqual([90, 90, 90]);
  });
});

describe('microscope values: a typed flag wins over the metadata file, the file over the default', () => {
  it('an mdoc’s voltage is used unless --voltage is typed', () => {
    const fromFile = searchFiltersFrom(flags({ tiltAngles: fixture('ts01_200kV.mrc.mdoc') }));
    expect(fromFile.microscope.microscope).toEqual({ ...DEFAULT_MICROSCOPE, voltage: 200 });
    expect(fromFile.microscope.source).toEqual({ voltage: 'file', sphericalAberration: 'default', amplitudeContrast: 'default' });
    expect(fromFile.options.tiltWeighting!.tilts.map((t) => t.ctf?.voltage)).toEqual([200, 200, 200]);
    const typed = searchFiltersFrom(flags({ tiltAngles: fixture('ts01_200kV.mrc.mdoc'), voltage: 300, sphericalAberration: 0.01 }));
    expect(typed.microscope.source).toEqual({ voltage: 'flag', sphericalAberration: 'flag', amplitudeContrast: 'default' });
    expect(typed.options.tiltWeighting!.tilts[1]!.ctf).toEqual({ voltage: 300, sphericalAberration: 0.01, amplitudeContrast: 0.07, defocus: 39500, phaseShift: 0 });
    // No file value: the default; a single defocus gets the same values.
    expect(searchFiltersFrom(flags({ defocus: 30000 })).options.ctf!.ctf).toEqual({ ...DEFAULT_MICROSCOPE, defocus: 30000, phaseShift: 0 });
  });

  it('a CTFFIND header is a file too; the tilt file comes first', () => {
    // The mdoc says 200 kV, the CTFFIND header 300 kV, Cs 2.7 mm and 7 %: the mdoc's voltage, the header's others.
    const c = searchFiltersFrom(flags({ tiltAngles: fixture('ts01_200kV.mrc.mdoc'), defocus: fixture('ts01_ctffind.txt') }));
    expect(c.microscope.source).toEqual({ voltage: 'file', sphericalAberration: 'file', amplitudeContrast: 'file' });
    expect(c.microscope.microscope.voltage).toBe(200);
    // The CTFFIND defocus replaces the mdoc's, per tilt (defocus 1 and 2 averaged).
    expect(c.options.tiltWeighting!.tilts[0]!.ctf!.defocus).toBeCloseTo((40123.45 + 39817.02) / 2, 6);
  });

  it('Warp: AreAnglesInverted negates the angles; the XML’s optics are the file’s', () => {
    const plain = searchFiltersFrom(flags({ tiltAngles: fixture('TS_01.xml') }));
    const inverted = searchFiltersFrom(flags({ tiltAngles: fixture('TS_01_inverted.xml') }));
    expect(plain.options.tiltWeighting!.tilts.map((t) => t.angle)).toEqual([-3, 0]);
    expect(inverted.options.tiltWeighting!.tilts.map((t) => t.angle)).toEqual([3, 0]);
    expect(inverted.tiltRange).toEqual([0, 3]);
    expect(inverted.microscope.source.amplitudeContrast).toBe('file');
    // Warp's defocus ± delta is averaged: 3.981 µm
    expect(inverted.options.tiltWeighting!.tilts[0]!.ctf!.defocus).toBeCloseTo(39810, 6);
    expect(inverted.options.tiltWeighting!.tilts[0]!.ctf!.defocus2).toBeUndefined();
  });
});

describe('RELION 5 tomograms.star as --tilt-angles', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-relion5-tilts-'));
    // RELION's layout: rlnTomoTiltSeriesStarFile is relative to the project folder above the tomograms.star.
    fs.mkdirSync(path.join(dir, 'Tomograms', 'job007', 'tilt_series'), { recursive: true });
    fs.copyFileSync(fixture('tomograms.star'), path.join(dir, 'Tomograms', 'job007', 'tomograms.star'));
    fs.copyFileSync(fixture('TS_01.star'), path.join(dir, 'Tomograms', 'job007', 'tilt_series', 'TS_01.star'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const star = (): string => path.join(dir, 'Tomograms', 'job007', 'tomograms.star');

  it('angles, pre-exposure doses, U/V-averaged defocus and optics flow into the per-tilt filter as an mdoc’s do', () => {
    const f = searchFiltersFrom(flags({ tiltAngles: star(), target: '/data/rec_TS_01.mrc' }));
    expect(f.tomoName).toBe('TS_01');
    expect(f.tiltRange).toEqual([-3, 3]);
    expect(f.microscope).toEqual({
      microscope: { voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.1 },
      source: { voltage: 'file', sphericalAberration: 'file', amplitudeContrast: 'file' },
    });
    const tilts = f.options.tiltWeighting!.tilts;
    expect(tilts.map((t) => t.angle)).toEqual([0, 3, -3]);
    expect(tilts.map((t) => t.dose)).toEqual([0, 3, 6]);
    expect(tilts[2]!.ctf).toEqual({ voltage: 300, sphericalAberration: 2.7, amplitudeContrast: 0.1, defocus: (39433 + 39120.5) / 2, phaseShift: 0 });
    // A typed value still wins.
    expect(searchFiltersFrom(flags({ tiltAngles: star(), tomoName: 'TS_01', amplitudeContrast: 0.07 })).options.tiltWeighting!.tilts[0]!.ctf!.amplitudeContrast).toBe(0.07);
    // A tilt-series STAR alone: its tilts, no optics.
    const series = searchFiltersFrom(flags({ tiltAngles: fixture('TS_01.star') }));
    expect(series.options.tiltWeighting!.tilts.map((t) => t.dose)).toEqual([0, 3, 6]);
    expect(series.microscope.source.voltage).toBe('default');
  });

  it('chooses by --tomo-name, else by the target file; refuses listing the names', () => {
    expect(refusal(() => searchFiltersFrom(flags({ tiltAngles: star(), target: 'lamella.mrc' }))))
      .toBe(`tme: ${star()}: lists 2 tomograms (TS_01, TS_02) and none is the target lamella.mrc: choose one with --tomo-name`);
    expect(refusal(() => searchFiltersFrom(flags({ tiltAngles: star(), tomoName: 'TS_02' }))))
      .toBe(`tme: ${star()}: cannot find the tilt-series STAR Tomograms/job007/tilt_series/TS_02.star it names (looked in the folders above it and beside it)`);
  });
});
