import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TmeError, createVolume, writeMrc } from '@tme/formats';
import type { JobRecord } from '@tme/engine';
import {
  SEARCH_DEFAULTS, SEARCH_FLAGS, planSearch, resolveSearchOptions, searchFromRecord, searchRotations, type SearchInput,
} from '../src';

const base: SearchInput = { target: 't.mrc', template: 'x.mrc', angularStep: 30 };

/** The message a bad search is refused with (every refusal is an invalid-option TmeError). */
function refusal(input: Partial<SearchInput>): string {
  try {
    resolveSearchOptions({ ...base, ...input } as SearchInput);
  } catch (e) {
    expect(e).toBeInstanceOf(TmeError);
    expect((e as TmeError).code).toBe('ERR_TME_INVALID_OPTION');
    return (e as TmeError).message;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be refused`);
}

describe('resolveSearchOptions: several templates (moreTemplates)', () => {
  it('resolves each further template\'s file, mask and symmetry, and keeps one template as before', () => {
    const o = resolveSearchOptions({ ...base, moreTemplates: [{ template: 'y.mrc', templateMask: 'ym.mrc', symmetry: 'c6' }, { template: 'z.pdb', maskRadius: 40, symmetry: 'C1' }] }, '/data');
    expect(o.moreTemplates).toEqual([
      { template: '/data/y.mrc', templateMask: '/data/ym.mrc', symmetry: 'C6' }, { template: '/data/z.pdb', maskRadius: 40, symmetry: 'C1' },
    ]);
    expect('moreTemplates' in resolveSearchOptions({ ...base, moreTemplates: [] })).toBe(false);
  });

  it.each([
    [{ shard: { index: 0, count: 2 } }, 'Expected no shard with several templates (--template given 2 times) for --shard but received "0/2"'],
    [{ background: 'rotation-stats' as const }, 'Expected none with several templates (--template given 2 times) for --background but received "rotation-stats"'],
    [{ moreTemplates: [{ template: 'y.mrc', symmetry: 'X7' }] }, 'for --symmetry but received "X7"'],
    [{ moreTemplates: [{ template: 'y.mrc', symmetry: 'C1', maskRadius: -1 }] }, 'Expected a radius > 0 Å for --mask-radius but received -1'],
    [{ moreTemplates: [{ template: 'y.mrc', symmetry: 'C1', templateMask: 'm.mrc' }], maskEllipsoid: [10, 10, 10] as [number, number, number] }, 'Expected only one of --template-mask and --mask-ellipsoid for --template-mask'],
    [{ moreTemplates: [{ template: 'y.mrc', symmetry: 'C2' }], rotations: 'list.tsv' }, 'Expected C1 with --rotations'],
  ])('refuses %j', (input, message) => {
    expect(refusal({ moreTemplates: [{ template: 'y.mrc', symmetry: 'C1' }], ...input })).toContain(message);
  });
});

describe('resolveSearchOptions: the one check of a search, in the words of its flags', () => {
  it.each([
    [{ angularStep: 500 }, 'Expected a number of degrees from 2 to 180 for --angular-step but received 500 of type number'],
    [{ score: 'ncc' }, 'for --score but received "ncc"'],
    [{ padTarget: 'wrap' as never }, 'Expected one of mean, zero, mirror for --pad-target but received "wrap"'],
    [{ rotationMode: 'fourier', defocus: 30000, defocusHandedness: 1 }, "Expected real when the template's filter changes with depth (--defocus-handedness) for --rotation-mode"],
    [{ spectrumPrecision: 'half', device: 'cpu' }, 'Expected single on the CPU (half is for a Vulkan --device: give it by index, gpu or gpu:all) for --spectrum-precision but received "half"'],
    // The default device is the CPU where there is no GPU: half names its device.
    [{ spectrumPrecision: 'half' }, 'Expected single on the CPU (half is for a Vulkan --device: give it by index, gpu or gpu:all) for --spectrum-precision but received "half"'],
    [{ spectrumPrecision: 'double' as never }, 'Expected single or half for --spectrum-precision but received "double"'],
    [{ rotationMode: 'fourier', score: 'flc' }, 'Expected real for the flc score (fourier serves cc, lcc, corr, cam and flc-sphere) for --rotation-mode'],
    [{ threads: 0 }, 'Expected an integer ≥ 1 for --threads but received 0'],
    [{ tile: [0, 10, 10] }, 'for --tile'],
    [{ interpolation: 'nearest' as never }, 'Expected linear or cubic for --interpolation'],
    [{ symmetry: 'X7' }, "for --symmetry but received \"X7\""],
    [{ shard: { index: 3, count: 2 } }, 'for --shard but received "3/2"'],
    [{ tiltRange: [60, -60] }, 'Expected MIN,MAX in degrees with −90 ≤ MIN < MAX ≤ 90 for --tilt-range but received "60,-60"'],
    [{ tiltAxis: 'z' as never }, 'Expected y or x for --tilt-axis'],
    [{ dose: 3 }, 'Expected per-tilt angles as well (--tilt-angles) for --dose'],
    [{ defocus: -3 }, 'for --defocus'],
    [{ amplitudeContrast: 1.5 }, 'Expected a fraction in [0, 1) for --amplitude-contrast'],
    [{ sphericalAberration: -1 }, 'for --cs'],
    [{ lowpass: 20, highpass: 10 }, 'Expected a resolution coarser (larger) than --lowpass 20 Å for --highpass'],
    [{ maskRadius: 0 }, 'Expected a radius > 0 Å for --mask-radius'],
    [{ maskRadius: 10, templateMask: 'm.mrc' }, 'Expected only one of --template-mask and --mask-radius for --mask-radius'],
    [{ templateBox: 31 }, 'Expected an even integer ≥ 4 for --template-box'],
    [{ memoryLimitBytes: -1 }, 'for --memory'],
    [{ rotations: 'set.npy', rotationsConvention: 'relion' }, 'Expected no convention for a .npy rotation list'],
    [{ rotations: 'set.tsv', symmetry: 'C2' }, 'Expected C1 with --rotations'],
    [{ rotationsConvention: 'relion' }, 'Expected it only with --rotations <file> for --rotations-convention'],
    [{ cosineWeighting: true }, 'for --cosine-weighting'],
  ] as Array<[Partial<SearchInput>, string]>)('refuses %j', (input, message) => {
    expect(refusal(input)).toContain(message);
  });

  it('a search needs rotations; a look at its template does not', async () => {
    await expect(planSearch({ target: 't.mrc', template: 'x.mrc' })).rejects
      .toThrow('Expected a number of degrees from 2 to 180 (or a rotation list, --rotations <file>) for --angular-step but received nothing');
    expect(resolveSearchOptions({ target: 't.mrc', template: 'x.mrc' }).angularStep).toBeUndefined();
  });

  it('fills every default once, resolves files against the working folder, canonicalises names', () => {
    const o = resolveSearchOptions({ ...base, score: 'FLCSphericalMask', symmetry: 'c5', defocus: 'ts.defocus' }, '/data/job');
    expect(o).toMatchObject({ ...SEARCH_DEFAULTS, score: 'flc-sphere', symmetry: 'C5', angularStep: 30 });
    expect([o.target, o.template, o.defocus]).toEqual(['/data/job/t.mrc', '/data/job/x.mrc', '/data/job/ts.defocus']);
    // Resolving again changes nothing (what job.json stores is what a later step reads).
    expect(resolveSearchOptions(o, '/elsewhere')).toEqual(o);
  });

  it('every option has a flag, and every flag is distinct', () => {
    // moreTemplates is --template given again (several templates in one pass): the one flag two options share.
    const flags = Object.entries(SEARCH_FLAGS).filter(([k]) => k !== 'moreTemplates').map(([, f]) => f);
    expect(SEARCH_FLAGS.moreTemplates).toBe(SEARCH_FLAGS.template);
    expect(new Set(flags).size).toBe(flags.length);
    expect(flags.every((f) => /^--[a-z-]+$/.test(f))).toBe(true);
  });

  it('tme angles samples the rotations through the same check', () => {
    expect(searchRotations(60, 'C1').count).toBeGreaterThan(10);
    expect(() => searchRotations(1, 'C1')).toThrow('for --angular-step but received 1');
  });
});

describe('planSearch and job.json', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tme-search-'));
    const n = 24;
    const target = new Float32Array(n * n * n).map((_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));
    writeMrc(path.join(dir, 'tomo.mrc'), createVolume(target, [n, n, n], 10));
    const t = 8;
    const templ = new Float32Array(t * t * t).map((_, i) => ((i * 7919) % 13) / 13);
    writeMrc(path.join(dir, 'templ.mrc'), createVolume(templ, [t, t, t], 10));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a plan from relative paths is the same plan from any folder once stored', async () => {
    const here = process.cwd();
    process.chdir(dir);
    let plan;
    try {
      plan = await planSearch({ target: 'tomo.mrc', template: 'templ.mrc', angularStep: 60, tiltRange: [-60, 60] });
    } finally {
      process.chdir(here);
    }
    expect(plan.options.target).toBe(path.join(dir, 'tomo.mrc'));
    expect(plan.job.rotations.length / 9).toBe(plan.rotationCount);
    expect(plan.job.filter).toBeDefined();
    // What job.json stores, read back from elsewhere, plans the same job.
    const record = { search: JSON.parse(JSON.stringify(plan.options)), inputs: {}, parameters: {} } as unknown as JobRecord;
    const again = searchFromRecord(record, '/');
    expect(again).toEqual(plan.options);
    const replanned = await planSearch(again);
    expect(replanned.job.rotations).toEqual(plan.job.rotations);
    expect(replanned.job.template.data).toEqual(plan.job.template.data);
  });

  it('rescoring plans no rotation set: a step of 120° and a shard neither sample nor fail', async () => {
    const input = { target: path.join(dir, 'tomo.mrc'), template: path.join(dir, 'templ.mrc'), angularStep: 120, shard: { index: 0, count: 50 } };
    await expect(planSearch(input)).rejects.toThrow(/at most as many parts as rotations .* for --shard/);
    const rescore = await planSearch(input, { purpose: 'rescore' });
    expect(rescore.job.rotations.length).toBe(9);
    expect(rescore.angularStep).toBe(120);
  });

  it('reads a job.json written before the search was stored (its flags as text), relative to the job folder', () => {
    const legacy = {
      inputs: { target: 'tomo.mrc', template: 'templ.mrc', angularStep: 30, filters: { tiltRange: '-50,60', voltage: '200', defocus: '3um', whiten: true } },
      parameters: { score: 'flc', padTarget: 'mean', interpolation: 'linear', maskRadius: 30 },
    } as unknown as JobRecord;
    const o = searchFromRecord(legacy, dir);
    expect(o).toMatchObject({
      target: path.join(dir, 'tomo.mrc'), score: 'flc', tiltRange: [-50, 60], voltage: 200, defocus: 30000, whiten: true, maskRadius: 30,
    });
    expect(() => searchFromRecord({ inputs: {}, parameters: {} } as unknown as JobRecord, dir))
      .toThrow('does not name its target and template');
  });
});
