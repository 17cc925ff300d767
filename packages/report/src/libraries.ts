import * as fs from 'node:fs';
import * as path from 'node:path';

/** A browser build inlined into every report: the page loads nothing from anywhere. */
export interface BrowserLibrary {
  name: string;
  version: string;
  /** The minified UMD build (defines a global: d3, Plot). */
  text: string;
}

/** The files, in load order (Plot's UMD build needs the global d3). */
const LIBRARIES = [
  { name: 'd3', dist: 'dist/d3.min.js' },
  { name: '@observablehq/plot', dist: 'dist/plot.umd.min.js' },
] as const;

/** A dependency's folder, found where require would look (their `exports` hide package.json and dist/ from
 * require.resolve). */
function packageFolder(name: string): string {
  for (const dir of require.resolve.paths(name) ?? []) {
    if (fs.existsSync(path.join(dir, name, 'package.json'))) return path.join(dir, name);
  }
  throw new Error(`@tme/report: ${name} is not installed (a dependency of @tme/report)`);
}

let cached: BrowserLibrary[] | undefined;

/**
 * d3 and Observable Plot, read from node_modules. The portable bundle has no node_modules: its build
 * (apps/cli/scripts/bundle.js) replaces this module with one that holds the same list as text.
 */
export function browserLibraries(): BrowserLibrary[] {
  cached ??= LIBRARIES.map(({ name, dist }) => {
    const folder = packageFolder(name);
    return {
      name,
      version: (JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8')) as { version: string }).version,
      text: fs.readFileSync(path.join(folder, dist), 'utf8'),
    };
  });
  return cached;
}
