/**
 * Nissa: observability. So far, the reports a run leaves for people — `report.html` and
 * TensorBoard scalar event files (written in TypeScript, no TensorFlow).
 */
export type { ReportArm, ReportEpoch, ReportSeed, ReportStage, RunReportData } from './report/report-data.js';
export { loadReportAssets, REPORT_ASSET_PATHS, type ReportAssets } from './report/report-assets.js';
export { renderReportHtml, writeReportHtml } from './report/report-html.js';
export { renderSwimlaneSvg, STAGE_COLOURS, stageSpans, type StageSpan } from './report/swimlane-svg.js';
export { EPOCH_SCALAR_TAGS, writeRunReports, type RunReportFiles } from './run-reports.js';
export { decodeEvent, encodeEvent, EVENT_FILE_VERSION, type ScalarValue, type TfEvent } from './tensorboard/event-proto.js';
export {
  openScalarWriter,
  parseScalarEvents,
  readScalarEvents,
  type ScalarEvent,
  type ScalarEventFile,
  type ScalarWriter,
  type ScalarWriterOptions,
} from './tensorboard/scalar-writer.js';
export { frameRecord, maskedCrc32c, readRecords, TFRECORD_OVERHEAD_BYTES, type TfRecord } from './tensorboard/tfrecord.js';
