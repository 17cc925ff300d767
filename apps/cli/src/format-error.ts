import { isTmeError } from '@tme/formats';

/** One line, `tme: FILE: problem`; the stack only with --debug. */
export function formatError(err: unknown, debug: boolean): string {
  let line: string;
  if (isTmeError(err)) {
    const e = err as { oneLine?: string; message: string; file?: string };
    line = e.oneLine ?? (e.file ? `${e.file}: ${e.message}` : e.message);
  } else if (err instanceof Error) {
    line = `internal error: ${err.message}`;
  } else {
    line = `internal error: ${String(err)}`;
  }
  const text = `tme: ${line.replace(/\s*\n\s*/g, ' ')}`;
  return debug && err instanceof Error && err.stack ? `${text}\n${err.stack}` : text;
}

/** 2 for bad usage (options), 1 for everything else (bad input, runtime failure). */
export function exitCodeFor(err: unknown): number {
  if (isTmeError(err, 'ERR_TME_INVALID_OPTION')) return 2;
  if (isTmeError(err, 'ERR_TME_CANCELLED')) return 130;
  return 1;
}
