import * as fs from 'node:fs';
import * as path from 'node:path';
import { TmeError } from '@tme/formats';
import { buildProgram } from '../src/main';
import { PYTME_ALIASES, PYTME_POINTERS, translatePytmeFlags } from '../src/pytme-flags';
import { searchInput, type SearchFlags } from '../src/search-flags';
import { resolveSearchOptions } from '@tme/search';

describe("pyTME's flags", () => {
  it('are read as the tme flag of the same meaning', () => {
    expect(translatePytmeFlags(['match', '-m', 't.mrc', '-i', 'r.mrc', '-I', 'm.mrc', '-M', 'tm.mrc', '-a', '15', '-s', 'FLC', '-n', '4', '--whiten-spectrum', '-o', 'job']))
      .toEqual(['match', '--target', 't.mrc', '--template', 'r.mrc', '--template-mask', 'm.mrc', '--target-mask', 'tm.mrc', '--angular-step', '15', '--score', 'FLC', '--threads', '4', '--whiten', '-o', 'job']);
    expect(translatePytmeFlags(['run', '--angular-sampling=10', '--num-peaks', '50', '--n-false-positives', '1', '--min-boundary-distance', '4']))
      .toEqual(['run', '--angular-step', '10', '--number', '50', '--false-alarms', '1', '--edge', '4']);
    expect(translatePytmeFlags(['export', 'p.tsv', '--output-format', 'relion4'])).toEqual(['export', 'p.tsv', '--format', 'relion']);
  });

  it('--tilt-angles 60,50 (pyTME: start and stop stage angles) is the range −60…50, unless such a file exists', () => {
    expect(translatePytmeFlags(['match', '--tilt-angles', '60,50'])).toEqual(['match', '--tilt-range', '-60,50']);
    expect(translatePytmeFlags(['match', '--tilt-angles', 'ts.tlt'])).toEqual(['match', '--tilt-angles', 'ts.tlt']);
  });

  it('leave other commands alone (tme peaks has no -m)', () => {
    expect(translatePytmeFlags(['peaks', 'job', '-m', 'x'])).toEqual(['peaks', 'job', '-m', 'x']);
  });

  it('that tme spells differently are answered with tme’s flag, in one line', () => {
    expect(() => translatePytmeFlags(['match', '--acceleration-voltage', '300'])).toThrow("unknown option '--acceleration-voltage': pyTME's --acceleration-voltage is tme's --voltage (kV)");
    expect(() => translatePytmeFlags(['match', '--spherical-aberration', '2.7e7'])).toThrow(/tme's --cs, in mm/);
    try {
      translatePytmeFlags(['run', '--gpu-indices', '0,1']);
    } catch (err) {
      expect((err as TmeError).code).toBe('ERR_TME_INVALID_OPTION');
    }
  });

  it('in the README’s table are each a tme flag, an alias or a pointer', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const start = readme.indexOf('| pyTME (');
    const table = readme.slice(start, readme.indexOf('\n\n', start));
    const firstColumns = table.split('\n').slice(2).map((row) => row.split(' | ')[0] ?? '');
    const flags = new Set<string>();
    for (const cell of firstColumns) {
      for (const code of cell.match(/`[^`]+`/g) ?? []) for (const m of code.matchAll(/(?:^|[\s/`])(-{1,2}[A-Za-z][\w-]*)/g)) flags.add(m[1] as string);
    }
    expect(flags.size).toBeGreaterThan(25);
    const tmeFlags = new Set(buildProgram().commands.flatMap((c) => c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined))));
    const known = (f: string): boolean => tmeFlags.has(f) || PYTME_ALIASES.some((a) => a.pytme.includes(f)) || f in PYTME_POINTERS;
    expect([...flags].filter((f) => !known(f))).toEqual([]);
  });
});

describe('the CLI holds no science', () => {
  it('depends on no science package at run time (template, rotations): it reaches them through @tme/search and @tme/export', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).filter((d) => d === '@tme/template' || d === '@tme/rotations')).toEqual([]);
  });

  it('turns flags into a typed search and checks only their spelling: values are the search layer\'s to check', () => {
    const flags: SearchFlags = {
      target: 't.mrc', template: 'x.mrc', angularStep: '500', symmetry: 'C1', score: 'FLC', device: 'auto', tile: 'auto',
      padTarget: 'mean', interpolation: 'linear', rotationMode: 'real', spectrumPrecision: 'single', background: 'none', tiltAxis: 'y', tiltRange: '60,-60',
      defocus: '3um',
    };
    const input = searchInput(flags);
    expect(input).toMatchObject({ angularStep: 500, score: 'FLC', tiltRange: [60, -60], defocus: 30000 });
    expect(() => resolveSearchOptions(input)).toThrow('for --angular-step but received 500');
    expect(() => searchInput({ ...flags, angularStep: 'ten' })).toThrow('Expected a number for --angular-step but received "ten"');
  });
});
