// Shared jest settings: TypeScript through ts-jest, workspace packages resolved to their sources so tests
// never run against a stale dist/.
const path = require('node:path');
const root = path.resolve(__dirname, '..', '..');

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true, esModuleInterop: true, strict: true }, diagnostics: { warnOnly: false } }],
  },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  testMatch: ['**/__tests__/**/*.test.ts', '**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/build/'],
  moduleNameMapper: {
    '^@tme/native$': path.join(root, 'native', 'index.ts'),
    '^@tme/(formats|rotations|template|engine|search|peaks|export|example|report)$': path.join(root, 'packages', '$1', 'src', 'index.ts'),
  },
};
