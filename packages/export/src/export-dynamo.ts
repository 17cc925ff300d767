import { writeFileAtomic } from '@tme/formats';
import { formatDynamoTable, type DynamoTableOptions } from './dynamo-table';
import { prepareOutputs, type OutputOptions } from './output-folder';
import { validatePicks, type ExportPick } from './pick';
import type { ExportSummary } from './export-relion';

export interface ExportDynamoOptions extends OutputOptions, DynamoTableOptions {}

/** Dynamo: OUTDIR/picks.tbl. */
export function exportDynamo(picks: readonly ExportPick[], options: ExportDynamoOptions): ExportSummary {
  validatePicks(picks);
  const [tbl] = prepareOutputs(options, ['picks.tbl']) as [string];
  writeFileAtomic(tbl, formatDynamoTable(picks, options));
  return { written: picks.length, padded: 0, skipped: 0, files: [tbl] };
}
