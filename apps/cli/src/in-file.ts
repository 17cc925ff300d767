import { TmeError } from '@tme/formats';

/** Runs `run`; a TmeError it throws without a file (a constant template, an empty mask, a pick at Infinity) is
 *  thrown again naming `file`, so the one-line message says which input is at fault. */
export function inFile<T>(file: string | undefined, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof TmeError && err.file === undefined && file !== undefined) throw new TmeError(err.code, err.message, { file, cause: err });
    throw err;
  }
}
