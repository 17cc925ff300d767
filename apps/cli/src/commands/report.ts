import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { invalidOption, writeFileAtomic } from '@tme/formats';
import { createReport, type CreateReportOptions } from '@tme/report';

interface ReportFlags {
  output?: string;
  picks?: string;
  truth?: string;
  truthDistance?: string;
  png?: boolean;
}

/** The report's own name in a job folder (`tme run` writes it there). */
export const REPORT_FILE = 'report.html';

function size(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${Math.max(1, Math.round(bytes / 1024))} KiB`;
}

/**
 * Writes a job folder's report (atomically) and, with `png`, the slab views next to it (report.html → report.png);
 * returns the one line that says what was written.
 */
export function writeReport(jobDir: string, output: string, options: CreateReportOptions): string {
  const report = createReport(jobDir, options);
  writeFileAtomic(output, report.html);
  let line = `${output} (${size(Buffer.byteLength(report.html))})`;
  if (report.png) {
    const png = output.replace(/\.html?$/i, '') + '.png';
    writeFileAtomic(png, report.png.png);
    line += `; ${png} (slab z ${report.png.zFrom}–${report.png.zTo}, ${report.png.drawn.length} pick${report.png.drawn.length === 1 ? '' : 's'})`;
  }
  return line;
}

/** `tme report JOB`: the job folder as one self-contained HTML page. */
export function runReport(jobDir: string, flags: ReportFlags): void {
  const distance = flags.truthDistance === undefined ? undefined : Number(flags.truthDistance);
  if (distance !== undefined && !(flags.truthDistance?.trim() !== '' && Number.isFinite(distance) && distance > 0)) {
    throw invalidOption('--truth-distance', 'a number of voxels > 0', flags.truthDistance);
  }
  if (distance !== undefined && flags.truth === undefined) throw invalidOption('--truth-distance', 'it only with --truth <tsv>', flags.truthDistance);
  const output = path.resolve(flags.output ?? path.join(jobDir, REPORT_FILE));
  if (fs.existsSync(output) && fs.statSync(output).isDirectory()) throw invalidOption('-o/--output', 'an HTML file name, not a folder', flags.output ?? output);
  const line = writeReport(jobDir, output, {
    ...(flags.picks !== undefined ? { picks: flags.picks } : {}),
    ...(flags.truth !== undefined ? { truth: flags.truth } : {}),
    ...(distance !== undefined ? { truthDistance: distance } : {}),
    ...(flags.png ? { png: {} } : {}),
  });
  process.stdout.write(`tme report: ${line}\n`);
}

export function register(program: Command): void {
  program
    .command('report')
    .description('A job folder as one self-contained HTML page: slices of the tomogram and score map with the picks, the score histogram with its noise model and threshold, the pick table, the orientations, the job')
    .argument('<job>', 'job folder (tme run, or tme match followed by tme peaks)')
    .option('-o, --output <html>', 'the page to write (replaced if it exists); default <job>/report.html')
    .option('--picks <tsv>', 'the picks to show: an orientations TSV; its <name>.details.tsv and <name>.report.json are read when present (default <job>/picks.tsv)')
    .option('--truth <tsv>', 'ground truth (orientations TSV: x, y, z, euler_x, euler_y, euler_z): recall, precision and angular error of the picks')
    .option('--truth-distance <voxels>', 'a pick within this distance of a true particle finds it (default 2)')
    .option('--png', 'also write the slab views as a PNG next to the page (report.html → report.png): the slab with the most picks, tomogram and score map side by side')
    .action((job: string, flags: ReportFlags) => runReport(job, flags));
}
