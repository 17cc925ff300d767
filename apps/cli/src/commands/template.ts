import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { TmeError, invalidOption, writeMrc } from '@tme/formats';
import { templateView } from '@tme/engine';
import { SEARCH_DEFAULTS, planSearch } from '@tme/search';
import { addFilterOptions, addTemplateOptions, searchInput, type SearchFlags } from '../search-flags';
import { createFolder } from './match';

/** The template's and the filters' flags (what `addTemplateOptions` and `addFilterOptions` define), and the score. */
type TemplateFlags = Omit<SearchFlags, 'symmetry' | 'device' | 'tile' | 'padTarget' | 'interpolation' | 'rotationMode' | 'spectrumPrecision' | 'background'> & {
  output: string;
  force?: boolean;
  quiet?: boolean;
};

const FILES = { template: 'template.mrc', matched: 'matched.mrc', mask: 'mask.mrc', filter: 'filter.mrc' } as const;

/**
 * `tme template`: the template a search with these flags would match, written for a look before a long run — shaped
 * for the target (box, voxel size, contrast; simulated from a model), its mask, the filter, and the template as the
 * loop correlates it (filtered, normalised under the mask). Nothing is matched.
 */
export async function runTemplate(flags: TemplateFlags): Promise<void> {
  // One template is looked at; several (a search's repeated --template) are looked at one command each.
  if (Array.isArray(flags.template) && flags.template.length > 1) {
    throw invalidOption('--template', 'one template (tme template writes one; run it once per template)', flags.template.join(' '));
  }
  const dir = path.resolve(flags.output);
  // What only a search over rotations uses keeps its defaults; the template is looked at on the CPU.
  const D = SEARCH_DEFAULTS;
  const search: SearchFlags = {
    symmetry: D.symmetry, device: 'cpu', tile: D.tile, padTarget: D.padTarget, interpolation: D.interpolation, rotationMode: D.rotationMode, spectrumPrecision: D.spectrumPrecision,
    background: D.background,
    ...flags,
  };
  const plan = await planSearch(searchInput(search), {
    purpose: 'rescore',
    onWarning: (message, file) => { if (!flags.quiet) process.stderr.write(`tme: warning: ${file}: ${message}\n`); },
  });
  const written = Object.values(FILES).map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  if (written.length > 0 && !flags.force) throw new TmeError('ERR_TME_EXISTS', `holds ${path.basename(written[0] as string)}; use --force to replace it`, { file: dir });
  const view = templateView(plan.job);
  createFolder(dir);
  for (const f of Object.values(FILES)) fs.rmSync(path.join(dir, f), { force: true });
  writeMrc(path.join(dir, FILES.template), plan.template);
  writeMrc(path.join(dir, FILES.mask), view.mask);
  writeMrc(path.join(dir, FILES.matched), view.matched);
  if (view.filter) writeMrc(path.join(dir, FILES.filter), view.filter);
  if (!flags.quiet) {
    const box = [...plan.template.shape].reverse().join('×');
    const source = plan.templateSource.kind === 'model' ? `simulated from ${plan.templateSource.atoms} atoms` : 'from the map';
    let inside = 0;
    for (const v of view.mask.data) inside += v;
    process.stdout.write(`${dir}: template ${box} voxels at ${plan.template.voxelSize[2].toFixed(2)} Å (${source}); mask ${inside.toFixed(0)} voxels; `
      + `${view.filter ? `filter on ${[...view.filter.shape].reverse().join('×')}` : 'no filter'} → ${Object.values(FILES).filter((f) => f !== FILES.filter || view.filter).join(', ')}\n`);
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('template')
    .description('Write the template a search with these flags would match (shaped for the target, its mask, the filter, and the template filtered and normalised as the search correlates it), to look at before a long run')
    .requiredOption('--target <file>', 'the tomogram the search is for: its voxel size, size and (with --whiten) spectrum')
    .option('--score <name>', 'the score: lcc and cam preprocess the template (Laplacian, standardisation)', SEARCH_DEFAULTS.score);
  addTemplateOptions(cmd);
  addFilterOptions(cmd)
    .requiredOption('-o, --output <dir>', `folder to write ${Object.values(FILES).join(', ')} into`)
    .option('--force', 'replace those files')
    .option('--quiet', 'print nothing but errors')
    .action(async (flags: TemplateFlags) => runTemplate(flags));
}
