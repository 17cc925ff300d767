import type { Command } from 'commander';
import { register as registerInfo } from './info';
import { register as registerConvert } from './convert';
import { register as registerExport } from './export';
import { register as registerMatch } from './match';
import { register as registerMerge } from './merge';
import { register as registerDevices } from './devices';
import { register as registerAngles } from './angles';
import { register as registerPeaks } from './peaks';
import { register as registerRun } from './run';
import { register as registerBatch } from './batch';
import { register as registerSlurm } from './slurm';
import { register as registerExample } from './example';
import { register as registerEstimate } from './estimate';
import { register as registerTemplate } from './template';
import { register as registerReport } from './report';

/** Each command lives in its own module and adds itself to the program; this list is the only registry. */
export function registerCommands(program: Command): void {
  registerInfo(program);
  registerConvert(program);
  registerMatch(program);
  registerMerge(program);
  registerDevices(program);
  registerPeaks(program);
  registerExport(program);
  registerAngles(program);
  registerRun(program);
  registerBatch(program);
  registerSlurm(program);
  registerEstimate(program);
  registerTemplate(program);
  registerReport(program);
  registerExample(program);
}
