module.exports = { ...require('@tme/tsconfig/jest-preset.js'), testMatch: ['**/e2e/**/*.test.ts', '**/accuracy/**/*.test.ts'] };
