import { TmeError, type StarFile } from '@tme/formats';

/**
 * A STAR loop as export builds it: labels without the leading underscore and rows of ready-formatted cells. It is
 * handed to @tme/formats' STAR writer; keeping the cells as text fixes the number formatting here, where the
 * meaning of each column is known.
 */
export interface StarLoopTable {
  /** Block name without `data_`, e.g. 'optics', 'particles'. */
  name: string;
  labels: string[];
  rows: string[][];
}

/** The cells of one column by label (for tests and readers of our own tables). */
export function columnOf(table: StarLoopTable, label: string): string[] {
  const i = table.labels.indexOf(label);
  if (i < 0) throw new TmeError('ERR_TME_INTERNAL', `no column ${label} in data_${table.name}`);
  return table.rows.map((r) => r[i] as string);
}

/** The STAR file model of @tme/formats for tables, each block preceded by `# version <version>`. */
export function starFileOf(tables: readonly StarLoopTable[], version: string): StarFile {
  return {
    blocks: tables.map((t) => ({ name: t.name, version, comments: [], pairs: [], loops: [{ labels: [...t.labels], rows: t.rows.map((r) => [...r]) }] })),
  };
}
