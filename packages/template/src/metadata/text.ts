import { TmeError } from '@tme/formats';

/** Non-empty, non-comment lines (comments start with # or ;), trimmed. */
export function dataLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#') && !l.startsWith(';'));
}

/** A finite number or a format error naming the file and line. */
export function toNumber(token: string | undefined, what: string, file: string | undefined, line: number): number {
  const v = token === undefined ? NaN : Number(token);
  if (!Number.isFinite(v)) {
    throw new TmeError('ERR_TME_FORMAT', `Line ${line}: expected a number for ${what} but found "${token ?? ''}"`, { file });
  }
  return v;
}

export interface ParseOptions {
  /** Shown in error messages. */
  file?: string;
}
