import * as native from '../index';

// The public surface of @tme/native, pinned: adding or removing an export is a decision, not an accident.
it('exports exactly these names', () => {
  expect(Object.keys(native).sort()).toEqual([
    'benchFftPair', 'chooseDevice', 'estimateMatchMemory', 'fftForward', 'fftInverse', 'fftPlanes', 'filterColumns', 'filterVolume', 'hostMemory', 'isFastSize',
    'isNativeAvailable', 'listDevices', 'loadBinding', 'nativeVersions', 'nextFastShape', 'nextFastSize',
    'pickDevice', 'releaseKeptSetup', 'runMatch', 'scoreOrientations', 'vulkanError', 'vulkanRuntime',
  ]);
  expect(native.isNativeAvailable()).toBe(true);
  expect(native.nativeVersions()).toMatchObject({ napi: 8, fftw: expect.stringMatching(/^fftw-3\./) });
});
