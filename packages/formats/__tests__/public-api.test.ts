import * as formats from '../src';

// The names the issue makes part of the contract, and the helpers other packages use.
const FUNCTIONS = [
  'readMrc', 'readMrcHeader', 'readMrcSlab', 'readMrcExtendedHeader', 'writeMrc', 'readEm', 'readEmHeader', 'writeEm', 'readStar', 'writeStar',
  'parseStar', 'formatStar', 'formatStarNumber', 'quoteStarValue', 'starBlock', 'starLoopWith', 'starColumn',
  'starNumbers', 'readStructure', 'structureBounds', 'structureChains', 'readVolume', 'writeVolume', 'volumeFormatOf',
  'volumeStatistics', 'mergeStatistics', 'encodeFloat16', 'decodeFloat16', 'decodeMrcHeaderFields',
  'encodeMrcHeaderFields', 'interpretMrcHeader', 'mrcHeaderFieldsFor', 'statisticsWarnings', 'createVolume', 'zeros',
  'voxelCount', 'writeFileAtomic', 'isTmeError', 'invalidOption',
] as const;

test('public API: every contract name is exported as a function', () => {
  const api = formats as unknown as Record<string, unknown>;
  expect(FUNCTIONS.filter((name) => typeof api[name] !== 'function')).toEqual([]);
  expect(typeof formats.TmeError).toBe('function');
  expect(typeof formats.AtomicFileWriter).toBe('function');
  expect(new formats.TmeError('ERR_TME_FORMAT', 'x', { file: 'f.mrc' }).oneLine).toBe('f.mrc: x');
  expect(formats.MRC_HEADER_BYTES).toBe(1024);
  expect(formats.EM_HEADER_BYTES).toBe(512);
  expect(Object.keys(formats.MRC_MODES).map(Number)).toEqual([0, 1, 2, 3, 4, 6, 12, 101]);
  expect(formats.volumeFormatOf('a/b.MRCS')).toBe('mrc');
  expect(formats.volumeFormatOf('b.em')).toBe('em');
  expect(formats.volumeFormatOf('b.tif')).toBeUndefined();
});
