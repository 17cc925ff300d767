import * as fs from 'node:fs';
import { TmeError } from '@tme/formats';

/**
 * pyTME users at home: pyTME's flags (match_template.py, postprocess.py) that mean what a tme flag means are read as
 * that flag; the others are answered with one line naming tme's flag, never silently taken or dropped.
 */
interface Alias {
  /** pyTME's spellings. */
  pytme: readonly string[];
  /** tme's flag with the same meaning and unit. */
  tme: string;
  /** The tme commands that take it. */
  commands: readonly string[];
  /** A value written differently (pyTME's relion4 is tme's relion). */
  value?: (text: string) => string;
}

const SEARCH = ['match', 'run', 'estimate'];
const PEAKS = ['peaks', 'run'];

export const PYTME_ALIASES: readonly Alias[] = [
  { pytme: ['-m'], tme: '--target', commands: SEARCH },
  { pytme: ['-i'], tme: '--template', commands: SEARCH },
  { pytme: ['-I'], tme: '--template-mask', commands: SEARCH },
  { pytme: ['-M'], tme: '--target-mask', commands: SEARCH },
  { pytme: ['-a', '--angular-sampling'], tme: '--angular-step', commands: SEARCH },
  { pytme: ['-s'], tme: '--score', commands: SEARCH },
  { pytme: ['-n'], tme: '--threads', commands: SEARCH },
  { pytme: ['--whiten-spectrum'], tme: '--whiten', commands: SEARCH },
  // pyTME inverts the target, tme the template: the same scores (and tme run inverts the subtomograms it exports).
  { pytme: ['--invert-target-contrast'], tme: '--invert-contrast', commands: SEARCH },
  { pytme: ['--num-peaks'], tme: '--number', commands: PEAKS },
  { pytme: ['--n-false-positives'], tme: '--false-alarms', commands: PEAKS },
  { pytme: ['--min-boundary-distance'], tme: '--edge', commands: PEAKS },
  { pytme: ['--output-format'], tme: '--format', commands: ['export'], value: (v) => (v === 'relion4' ? 'relion' : v) },
];

/** pyTME flags whose tme counterpart differs in form or unit: what to type instead. */
export const PYTME_POINTERS: Readonly<Record<string, string>> = {
  '--acceleration-voltage': "tme's --voltage (kV)",
  '--spherical-aberration': "tme's --cs, in mm (pyTME's is Å: 2.7e7 Å = 2.7 mm)",
  '--backend': "tme's --device (auto, gpu, cpu or a device index; see tme devices)",
  '--gpu-indices': "tme's --device 0,1,… (or gpu:all)",
  '--tilt-weighting': "tme's --cosine-weighting (angle) and --dose (Grigorieff's exposure filter)",
  '--wedge-axes': "tme's --tilt-axis (y or x)",
  '--no-flip-phase': "tme's default (a signed CTF; --phase-flip for phase-flipped data): drop it",
};

/** pyTME's `--tilt-angles 60,60`: start and stop as positive stage angles, the range −60…60. */
const PYTME_TILT_RANGE = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/;

/** `argv` (after `tme`) with pyTME's flags in tme's spelling; throws a one-line TmeError for a pointer flag. */
export function translatePytmeFlags(argv: readonly string[]): string[] {
  const command = argv[0];
  if (command === undefined) return [...argv];
  const out = [command];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const alias = PYTME_ALIASES.find((a) => a.pytme.includes(flag) && a.commands.includes(command));
    if (alias) {
      out.push(alias.tme);
      const next = inline ?? (argv[i + 1] !== undefined && !(argv[i + 1] as string).startsWith('-') ? argv[++i] : undefined);
      if (next !== undefined) out.push(alias.value ? alias.value(next) : next);
      continue;
    }
    if (flag === '--tilt-angles' && SEARCH.includes(command)) {
      const value = inline ?? argv[i + 1];
      const m = value === undefined ? null : PYTME_TILT_RANGE.exec(value);
      if (m && !fs.existsSync(value as string)) {
        out.push('--tilt-range', `-${m[1]},${m[2]}`);
        if (inline === undefined) i++;
        continue;
      }
    }
    const pointer = PYTME_POINTERS[flag];
    if (pointer !== undefined && !PYTME_ALIASES.some((a) => a.pytme.includes(flag) && a.commands.includes(command))) {
      throw new TmeError('ERR_TME_INVALID_OPTION', `unknown option '${flag}': pyTME's ${flag} is ${pointer}`);
    }
    out.push(arg);
  }
  return out;
}
