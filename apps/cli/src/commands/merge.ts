import * as path from 'node:path';
import type { Command } from 'commander';
import { JOB_FILES, mergeShards, writeJob } from '@tme/engine';
import { bestScoreOf, prepareJobDir } from './match';

interface MergeFlags { output: string; force?: boolean; quiet?: boolean }

/** `tme merge SHARD… -o JOB`: the job folders of `tme match --shard i/n` → the job folder one whole search writes. */
async function runMerge(shards: string[], flags: MergeFlags): Promise<void> {
  const merged = mergeShards(shards);
  const dir = path.resolve(flags.output);
  prepareJobDir(dir, { force: flags.force });
  writeJob(dir, merged.result, {
    tmeVersion: merged.tmeVersion, inputs: { ...merged.inputs, command: 'tme merge' }, search: merged.search, anglesTsv: merged.anglesTsv,
  });
  if (!flags.quiet) {
    const best = bestScoreOf(merged.result.scores.data);
    process.stdout.write(`${dir}: ${shards.length} shards merged (${merged.result.stats.rotationCount} rotations); best score ${best.toFixed(4)}, `
      + `mean ${merged.result.stats.mean.toFixed(4)} ± ${merged.result.stats.std.toFixed(4)}; ${Object.values(JOB_FILES).join(', ')}\n`);
  }
}

export function register(program: Command): void {
  program
    .command('merge')
    .description('Join the job folders of tme match --shard i/n into the job folder one whole search writes (the same maps and statistics, bit for bit)')
    .argument('<shards...>', 'the shards\' job folders, in any order')
    .requiredOption('-o, --output <dir>', 'job folder to create')
    .option('--force', 'overwrite the job in the output folder')
    .option('--quiet', 'print nothing but errors')
    .action(async (shards: string[], flags: MergeFlags) => runMerge(shards, flags));
}
