import * as path from 'node:path';
import { TmeError } from '@tme/formats';
import type { JobRecord } from '@tme/engine';
import { parseDefocusValue } from './units';
import { resolveSearchOptions, type SearchInput, type SearchOptions } from './options';

/**
 * The search a finished job ran, from its job.json: the stored SearchOptions (checked again: a hand-edited file is
 * input like any other), or, for a job written before tme stored them, rebuilt from the inputs and flags it recorded.
 * Relative paths in an old job are taken from the job folder `dir`, not the caller's working folder.
 */
export function searchFromRecord(record: JobRecord, dir: string): SearchOptions {
  const file = path.join(dir, 'job.json');
  const where = (fn: () => SearchOptions): SearchOptions => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TmeError && err.file === undefined) throw new TmeError(err.code, err.message, { file, cause: err });
      throw err;
    }
  };
  if (record.search !== undefined) return where(() => resolveSearchOptions(record.search as unknown as SearchInput, dir));
  return where(() => resolveSearchOptions(legacySearch(record, file), dir));
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};
/** A defocus or dose as an old job recorded it: a number (with a unit for defocus), or a file. */
const valueOrFile = (v: unknown, unitless: (s: string) => number | undefined): number | string | undefined => {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string' || v === '') return undefined;
  return unitless(v) ?? v;
};

function legacySearch(record: JobRecord, file: string): SearchInput {
  const inputs = (record.inputs ?? {}) as Record<string, unknown>;
  const params = record.parameters;
  const target = text(inputs['target']);
  const template = text(inputs['template']);
  if (target === undefined || template === undefined) {
    throw new TmeError('ERR_TME_FORMAT', 'job.json does not name its target and template (was it written by tme match?)', { file });
  }
  const f = (inputs['filters'] ?? {}) as Record<string, unknown>;
  const range = text(f['tiltRange'])?.split(',').map(Number);
  return {
    target, template, templateMask: text(inputs['templateMask']),
    maskRadius: inputs['templateMask'] ? undefined : num(params.maskRadius), targetMask: text(inputs['targetMask']),
    angularStep: num(inputs['angularStep']), score: params.score, padTarget: params.padTarget as SearchInput['padTarget'], interpolation: params.interpolation as SearchInput['interpolation'],
    tomoName: text(inputs['tomoName']),
    tiltRange: range && range.length === 2 ? [range[0] as number, range[1] as number] : undefined,
    tiltAxis: f['tiltAxis'] === 'x' ? 'x' : 'y', tiltAngles: text(f['tiltAngles']),
    dose: valueOrFile(f['dose'], num),
    defocus: valueOrFile(f['defocus'], parseDefocusValue),
    voltage: num(f['voltage']), sphericalAberration: num(f['cs']), amplitudeContrast: num(f['amplitudeContrast']),
    phaseShift: num(f['phaseShift']), phaseFlip: f['phaseFlip'] === true, cosineWeighting: f['cosineWeighting'] === true,
    lowpass: num(f['lowpass']), highpass: num(f['highpass']), whiten: f['whiten'] === true,
    invertContrast: f['invertContrast'] === true, resample: f['resample'] === true,
    modelResolution: num(f['modelResolution']), modelBfactor: num(f['modelBfactor']) ?? 0, templateBox: num(f['templateBox']),
  };
}
