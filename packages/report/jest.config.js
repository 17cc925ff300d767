module.exports = { ...require('@tme/tsconfig/jest-preset.js') };
