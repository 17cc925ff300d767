export {
  SEARCH_DEFAULTS, SEARCH_FLAGS, isFiltered, resolveSearchOptions, type MoreTemplate, type SearchInput, type SearchOptions,
} from './options';
export { MICROSCOPE_RULE, searchFilters, type FilterFlags, type SearchFilters } from './filters';
export { looksLikeModel, shapeTemplate, type PreparedTemplate, type TemplateSource } from './template';
export { planSearch, type PlanOptions, type SearchPlan, type TargetMemory } from './plan';
export { searchFromRecord } from './record';
export { parseDefocusValue } from './units';
// What a caller of the search needs of the layers below, so that it depends on this package alone.
export { DEFAULT_MICROSCOPE, type Microscope } from '@tme/template';
export { parseRelionTomograms } from '@tme/template';
export { formatAnglesTsv, type RotationSet } from '@tme/rotations';
export { searchRotations } from './rotations';
