import * as api from '../src';

// The public surface of @tme/template: a change here is a change for the CLI and the engine wiring.
it('exports exactly the documented functions and tables', () => {
  expect(Object.keys(api).sort()).toEqual([
    'ATOMIC_MASS', 'BUNDLED_MODEL_FILE', 'ComplexFft', 'DEFAULT_MICROSCOPE', 'PENG_1996', 'axisFrequencies', 'bandPassFilter', 'bandPassGain',
    'buildTargetFilter', 'buildTemplateFilter', 'buildTilts', 'bundledModelPath', 'centerOfMass', 'continuousWedgeFilter',
    'cosineEdge', 'criticalExposure', 'ctfFilter', 'ctfModel', 'ctfPhase', 'ctfValue', 'ctffindMicroscope', 'defocusZones', 'distanceTransform',
    'electronWavelength', 'elementKey', 'ellipsoidMask', 'encodePgm', 'erf', 'exposureWeight', 'fftPlan', 'filterPreview',
    'fourierShift', 'halfSpectrumAxes', 'halfSpectrumShape', 'imodDefocusPerView', 'irfftn', 'isFastSize', 'isIdentityFilter', 'lowpassGain',
    'massCenter', 'mdocMicroscope', 'nextFastEvenSize', 'normalizeVolume', 'parseCtffind', 'parseDoseFile', 'parseImodDefocus', 'parseMdoc',
    'parseNumberColumn', 'parseRelionTiltSeries', 'parseRelionTomograms', 'parseTiltAngles', 'parseWarpXml',
    'prepareTemplate', 'previewImage', 'radialFilter', 'radialPowerSpectrum', 'reboxVolume', 'relionMicroscope', 'resampleVolume', 'resizeSpectrum', 'resolveMicroscope', 'rfftn',
    'rollVolume', 'sampleProfile', 'scatteringAtZero', 'selectRelionTomogram', 'signedIndex', 'simulateDensity', 'sphereMask', 'subsetAtoms', 'templateFromModel', 'thresholdMask',
    'tiltWeightingFilter', 'tiltsFromImod', 'tiltsFromMdoc', 'tiltsFromRelion', 'tiltsFromWarp', 'toGrayscale', 'uniqueAngles',
    'warpMicroscope', 'whiteningFilter', 'whiteningProfile', 'zoneRanges',
  ]);
  expect(require('node:fs').existsSync(api.bundledModelPath())).toBe(true);
});
