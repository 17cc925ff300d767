/**
 * The one error class of tme. Every package throws it (or lets the native layer's coded errors through as it),
 * so that callers branch on a stable `code`, never on message text.
 */
export const TME_ERROR_CODES = [
  /** A file's content is not what its format allows (bad magic, truncated data, impossible header fields). */
  'ERR_TME_FORMAT',
  /** A file cannot be read or written (missing, permissions, disk full). */
  'ERR_TME_IO',
  /** An option or argument has the wrong type or is out of range. */
  'ERR_TME_INVALID_OPTION',
  /** Valid input that tme does not handle (e.g. MRC mode 4 complex data). */
  'ERR_TME_UNSUPPORTED',
  /** Inputs that are each valid but do not fit together (voxel sizes, shapes). */
  'ERR_TME_MISMATCH',
  /** An output exists and --force was not given. */
  'ERR_TME_EXISTS',
  /** No usable compute device. */
  'ERR_TME_NO_DEVICE',
  /** The work does not fit the device's (or host's) memory. */
  'ERR_TME_DEVICE_MEMORY',
  /** An FFT plan could not be made. */
  'ERR_TME_FFT_PLAN',
  /** A shape the FFT or the device cannot handle. */
  'ERR_TME_UNSUPPORTED_SIZE',
  /** The work was cancelled through an AbortSignal. */
  'ERR_TME_CANCELLED',
  /** The native addon could not be loaded. */
  'ERR_TME_NATIVE_LOAD',
  /** A device or driver call failed while working. */
  'ERR_TME_DEVICE',
  /** A bug: an invariant of tme itself was broken. */
  'ERR_TME_INTERNAL',
] as const;

export type TmeErrorCode = (typeof TME_ERROR_CODES)[number];

export interface TmeErrorOptions {
  /** The file the problem is about, shown first in one-line messages. */
  file?: string;
  cause?: unknown;
}

export class TmeError extends Error {
  readonly code: TmeErrorCode;
  readonly file: string | undefined;

  constructor(code: TmeErrorCode, message: string, options: TmeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TmeError';
    this.code = code;
    this.file = options.file;
  }

  /** `file: message`, or the message alone: the form the CLI prints after `tme: `. */
  get oneLine(): string {
    const text = this.message.replace(/\s*\n\s*/g, ' ');
    return this.file !== undefined && !text.startsWith(this.file) ? `${this.file}: ${text}` : text;
  }
}

/** True when `err` is a TmeError (or a native error carrying a tme code), optionally one of `codes`. */
export function isTmeError(err: unknown, ...codes: TmeErrorCode[]): err is TmeError {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !(TME_ERROR_CODES as readonly string[]).includes(code)) return false;
  return codes.length === 0 || codes.includes(code as TmeErrorCode);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `"${value}" of type string`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${String(value)} of type ${typeof value}`;
  }
  if (value === null) return 'null';
  // A flag that was not given (options hold undefined for it).
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `a value of type ${typeof value}`;
}

/** The house form of an option error: "Expected integer ≥ 1 for numPeaks but received 0 of type number". */
export function invalidOption(name: string, expected: string, actual: unknown, file?: string): TmeError {
  return new TmeError('ERR_TME_INVALID_OPTION', `Expected ${expected} for ${name} but received ${describe(actual)}`, { file });
}

/**
 * Runs `run`; a TmeError it throws without a file (a constant template, an empty mask, a pick at Infinity) is thrown
 * again naming `file`, so the one-line message says which input is at fault.
 */
export function inFile<T>(file: string | undefined, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof TmeError && err.file === undefined && file !== undefined) throw new TmeError(err.code, err.message, { file, cause: err });
    throw err;
  }
}
