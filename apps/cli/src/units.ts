/** Bytes as the one-line messages and tables show them: GiB with one decimal. */
export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** A memory size in one-line messages: GiB to one decimal, below 1 GiB whole MiB (so that a small --memory reads as
 *  what it is). */
export function memorySize(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / 2 ** 20)} MiB`;
}
