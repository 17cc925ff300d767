module.exports = { ...require('@tme/tsconfig/jest-preset.js'), setupFiles: ['<rootDir>/test/setup-env.js'], testTimeout: 60000, maxWorkers: 1 };
