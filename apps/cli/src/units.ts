/** Bytes as the one-line messages and tables show them: GiB with one decimal. */
export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}
