import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { JOB_FILES, mergeShardsBySlabs, mergeShards, mergeShardsBytes, writeJob } from '@tme/engine';
import { TmeError } from '@tme/formats';
import { allowedHostMemory } from '../search-flags';
import { bestScoreOf, prepareJobDir } from './match';
import { memorySize } from '../units';

interface MergeFlags { output: string; force?: boolean; quiet?: boolean; memory?: string }


/**
 * `tme merge SHARD… -o JOB`: the job folders of `tme match --shard i/n` → the job folder one whole search writes.
 * Every shard's maps at once where they fit the memory (free memory, capped by --memory); beyond that they are merged
 * slab by slab into the job folder's maps (the same files; not for several templates' shards).
 */
async function runMerge(shards: string[], flags: MergeFlags): Promise<void> {
  const { available, limited } = allowedHostMemory(flags.memory);
  const needed = mergeShardsBytes(shards);
  const dir = path.resolve(flags.output);
  const say = (stats: { rotationCount: number; mean: number; std: number }, best: number, how: string): void => {
    if (flags.quiet) return;
    process.stdout.write(`${dir}: ${shards.length} shards merged${how} (${stats.rotationCount} rotations); best score ${best.toFixed(4)}, `
      + `mean ${stats.mean.toFixed(4)} ± ${stats.std.toFixed(4)}; ${Object.values(JOB_FILES).join(', ')}\n`);
  };
  const room = `${memorySize(available)} ${limited ? '--memory allows' : 'is free'}`;
  if (needed <= available) {
    const merged = mergeShards(shards);
    prepareJobDir(dir, { force: flags.force }, { resumable: false });
    writeJob(dir, merged.result, {
      tmeVersion: merged.tmeVersion, inputs: { ...merged.inputs, command: 'tme merge' }, search: merged.search, anglesTsv: merged.anglesTsv,
    });
    say(merged.result.stats, 'outOfCore' in merged.result ? merged.result.outOfCore.bestScore : bestScoreOf(merged.result.scores.data), '');
    return;
  }
  // The maps are assembled in the job folder: it is made first, and goes again if the merge fails before its files.
  const existed = fs.existsSync(dir);
  prepareJobDir(dir, { force: flags.force }, { resumable: false });
  let merged: ReturnType<typeof mergeShardsBySlabs>;
  try {
    merged = mergeShardsBySlabs(shards, dir, available / 2);
  } catch (err) {
    if (!existed) fs.rmSync(dir, { recursive: true, force: true });
    if (err instanceof TmeError && err.code === 'ERR_TME_UNSUPPORTED') {
      throw new TmeError('ERR_TME_DEVICE_MEMORY', `${err.message} (${memorySize(needed)} needed, ${room}): merge them on a machine with more memory`);
    }
    throw err;
  }
  writeJob(dir, merged.result, {
    tmeVersion: merged.tmeVersion, inputs: { ...merged.inputs, command: 'tme merge' }, search: merged.search, anglesTsv: merged.anglesTsv,
    outOfCore: merged.outOfCore, ...(merged.background ? { background: merged.background } : {}),
  });
  say(merged.result.stats, merged.result.outOfCore.bestScore, ` slab by slab (every shard's maps at once need ${memorySize(needed)}, ${room})`);
}

export function register(program: Command): void {
  program
    .command('merge')
    .description('Join the job folders of tme match --shard i/n into the job folder one whole search writes (the same maps and statistics, bit for bit)')
    .argument('<shards...>', 'the shards\' job folders, in any order')
    .requiredOption('-o, --output <dir>', 'job folder to create')
    .option('--memory <size>', 'host memory the merge may use, e.g. 8G (default: the free memory); shards whose maps do not fit it at once are merged slab by slab')
    .option('--force', 'overwrite the job in the output folder')
    .option('--quiet', 'print nothing but errors')
    .action(async (shards: string[], flags: MergeFlags) => runMerge(shards, flags));
}
