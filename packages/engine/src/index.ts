export * from './backend';
export * from './scores';
export * from './padding';
export * from './tiling';
export * from './masks';
export type { FilterFunction, MatchJob, RowFilterFunction, TemplateInput } from './prepare';
export { filterVolumeOutOfCore, planVolumeFilter, type FilteredVolume, type VolumeFilterInput, type VolumeFilterPlan, type VolumeFilterProgress } from './volume-filter';
export {
  matchTemplate, matchTemplateOutOfCore, scoreStatistics, type OutOfCoreMatchResult, type OutOfCoreOutputs, type MatchOptions, type MatchProgress, type MatchResult, type MatchParameters, type ScoreStatistics, type TileSums, type TemplateParameters,
} from './match';
export { estimateJob, type DeviceEstimate, type EstimateOptions, type JobEstimate } from './estimate';
export { BACKGROUNDS, backgroundStatistics, phaseRandomised, rotationStatsMaps, type Background, type BackgroundMaps } from './background';
export { writeJob, readJob, openJob, type JobOnDisk, readBackgroundMap, TEMPLATE_INDEX_FILE, lockJobFolder, BACKGROUND_FILES, type BackgroundRecord, releaseJobLocks, JOB_FILES, JOB_LOCK_FILE, ENGINE_VERSION, type JobRecord, type JobData, type WriteJobOptions } from './job-files';
export { CHECKPOINT_FILE, OUT_OF_CORE_PARTIAL, outOfCoreCheckpointBytes } from './checkpoint';
export { mergeShards, mergeShardsBySlabs, mergeShardsBytes, type MergedShards } from './merge';
export { formatRotationTable, parseRotationTable, ANGLES_HEADER } from './angles';
export { NativeBackend, defaultBackend, nativeAddonBuilt, NATIVE_ADDON_PATH } from './native-backend';
export { ReferenceBackend, type ReferenceBackendOptions } from './reference-backend';
export { TARGET_FILTER_BYTES_PER_GRID_VOXEL, defaultMemoryEstimate, inMemoryBytes, peakCallingBytes, peakSlabMinimumBytes, peakSlabSections, wholeTargetBytes } from './memory-model';
export { toArrayOrder, rotateBox, boxCentre } from './rotate';
export { laplacian, standardise } from './laplace';
export { nextSmoothSize } from './fast-size';
export { listDevices, resolveDevices, devicesLabel, driverManifests, type DeviceListing, type VulkanDriver, type VulkanSetup } from './devices';
export {
  checkJobOptions, checkOutOfCore, filterGridFor, isRegionSource, prepareJob, targetFilterGrid, templateJob, type CheckedJobOptions, type JobOptions, type OptionNames, type PreparedJob,
} from './prepare';
export { templateSupport } from './support';
export { createDiskOrientationScorer, createOrientationScorer, readPaddedBox, type DiskOrientationScorer, type OrientationQuery, type OrientationScorer } from './orientation-scorer';
export { templateView, type TemplateView } from './template-view';
export {
  checkPriors, priorConeAt, withinCone, TEMPLATE_AXES, type PositionPriors, type PriorNames, type TemplateAxis,
} from './priors';
