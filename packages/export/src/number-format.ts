import { formatStarNumber } from '@tme/formats';

/**
 * Fixed-point text for a table cell: `digits` decimals, no exponent, no "-0.000000" (RELION's number form, shared
 * with @tme/formats; Dynamo and point2model read it too).
 */
export function fixed(value: number, digits = 6): string {
  return formatStarNumber(value, digits);
}

/** The shortest fixed-point text up to `digits` decimals: 300 → "300", 2.7 → "2.7" (for user-given constants). */
export function integerOrFixed(value: number, digits = 6): string {
  if (Number.isInteger(value)) return String(value);
  const text = fixed(value, digits).replace(/0+$/, '').replace(/\.$/, '');
  return text === '-0' ? '0' : text;
}
