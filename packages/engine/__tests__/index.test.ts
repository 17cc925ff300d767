import * as engine from '../src/index';

describe('public API', () => {
  it('exports exactly these values', () => {
    expect(Object.keys(engine).sort()).toEqual([
      'ANGLES_HEADER', 'BACKGROUNDS', 'BACKGROUND_FILES', 'CHECKPOINT_FILE', 'DEFAULT_PAD_MODE', 'DEFAULT_SCORE', 'ENGINE_VERSION', 'JOB_FILES', 'JOB_LOCK_FILE',
      'NATIVE_ADDON_PATH', 'NativeBackend', 'OUT_OF_CORE_PARTIAL', 'PAD_MODES', 'ReferenceBackend', 'SCORE_NAMES', 'TARGET_FILTER_BYTES_PER_GRID_VOXEL', 'TEMPLATE_AXES', 'TEMPLATE_INDEX_FILE',
      'backgroundStatistics', 'boxCentre', 'checkJobOptions', 'checkOutOfCore', 'checkPriors', 'createDiskOrientationScorer', 'createOrientationScorer', 'defaultBackend', 'defaultMemoryEstimate',
      'devicesLabel', 'driverManifests', 'estimateJob', 'extractRegion', 'filterGridFor', 'filterVolumeOutOfCore', 'formatRotationTable', 'inMemoryBytes', 'inscribedRadius', 'isDeviceList',
      'isRegionSource', 'laplacian', 'listDevices', 'lockJobFolder', 'matchTemplate', 'matchTemplateOutOfCore', 'mergeShards', 'mergeShardsBySlabs', 'mergeShardsBytes', 'nativeAddonBuilt', 'nextSmoothSize', 'openJob', 'outOfCoreCheckpointBytes', 'parseRotationTable',
      'peakCallingBytes', 'peakSlabMinimumBytes', 'peakSlabSections', 'phaseRandomised', 'planScore', 'planTiles', 'planVolumeFilter', 'prepareJob', 'priorConeAt', 'readBackgroundMap', 'readJob', 'readPaddedBox', 'reflectIndex', 'releaseJobLocks', 'resolveDevices',
      'resolvePadMode', 'resolveScore', 'rotateBox', 'rotationStatsMaps', 'scoreStatistics', 'sphereMask', 'standardise', 'targetFilterGrid', 'templateJob',
      'templateSupport', 'templateView', 'toArrayOrder', 'wholeTargetBytes', 'withinCone', 'writeJob',
    ]);
  });
});
