import { TmeError, invalidOption } from '@tme/formats';
import { SEARCH_FLAGS } from './options';

const DEFOCUS_VALUE = /^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(µm|μm|um|nm|å|a)?\s*$/i;
const DEFOCUS_UNIT: Record<string, number> = { 'µm': 1e4, 'μm': 1e4, um: 1e4, nm: 10, 'å': 1, a: 1 };

/**
 * One defocus typed as text, in Å: "3um", "3µm", "3 μm", "3000nm", "30000A", "30000Å", "3e4" (a bare number is Å).
 * A bare number below 1000 Å is refused (3 Å of defocus is a unit mistake, not a tomogram). Undefined: not a value
 * (a file name).
 */
export function parseDefocusValue(text: string): number | undefined {
  const m = DEFOCUS_VALUE.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = m[2]?.toLowerCase();
  const angstrom = value * (unit === undefined ? 1 : (DEFOCUS_UNIT[unit] as number));
  if (!(angstrom > 0)) throw invalidOption(SEARCH_FLAGS.defocus, 'a defocus > 0 (underfocus), e.g. 3um or 30000A', text);
  if (unit === undefined && angstrom < 1000) {
    throw new TmeError('ERR_TME_INVALID_OPTION',
      `Expected a defocus of at least 1000 Å for ${SEARCH_FLAGS.defocus} but received "${text.trim()}" (a bare number is Å): did you mean ${m[1]}um?`);
  }
  return angstrom;
}
