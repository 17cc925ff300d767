import { readReportSource, type ReadReportOptions } from './read-job-folder';
import { renderReportHtml } from './page';
import type { ReportData } from './report-data';
import { renderSlabPng, type SlabPng, type SlabPngOptions } from './slab-png';

export * from './report-data';
export { readReportSource, parseDetailsTsv, zAxisDirection, type ReadReportOptions, type ReportSource } from './read-job-folder';
export { renderReportHtml } from './page';
export { renderSlabPng, busiestSlice, plasma, type SlabPng, type SlabPngOptions } from './slab-png';
export { previewVolume, previewBin, binVolume, sampleQuantiles, PREVIEW_VOXELS, type VolumePreview, type PreviewOptions } from './volume-preview';
export { browserLibraries, type BrowserLibrary } from './libraries';
export { REPORT_READ_BYTES, scoreHistogramOfSections, sectionsOfMrc, sectionsOfVolume, type SectionSource } from './sections';

export interface CreateReportOptions extends ReadReportOptions {
  /** Also draw the slab views as a PNG (undefined: no PNG; {}: the defaults of renderSlabPng). */
  png?: SlabPngOptions;
}

export interface Report {
  html: string;
  png?: SlabPng;
  data: ReportData;
}

/** A job folder → the self-contained HTML report (and, when asked, the PNG of its slab views). */
export function createReport(jobDir: string, options: CreateReportOptions = {}): Report {
  const source = readReportSource(jobDir, options);
  const html = renderReportHtml(source.data);
  return {
    html, data: source.data,
    ...(options.png ? { png: renderSlabPng(source.data, source, options.png) } : {}),
  };
}
