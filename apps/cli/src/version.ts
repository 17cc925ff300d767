// Read once from the package manifest so `tme --version` and job.json always agree with the release.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const VERSION: string = (require('../package.json') as { version: string }).version;
