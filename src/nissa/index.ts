/**
 * Nissa: observability — Prometheus metrics with the prototype's names, the bus consumer
 * that feeds them, the HTTP server, alerts and SLOs, the event store and the live view.
 * Weatherlight composes it (embedded or its own process); other subsystems import only from
 * this file.
 */
export { COVERAGE_FEATURES, NissaMetrics, type NissaMetricsOptions } from './metrics.js';
export { NISSA_GROUP, NISSA_TYPES, NissaService, type NissaListener, type NissaServiceOptions, type NissaServiceStats } from './service.js';
export { startNissaHttp, type NissaHttp, type NissaHttpOptions } from './http.js';
export { createNissa, type Nissa, type NissaDeps } from './create-nissa.js';

// Alerts and SLOs.
export * from './alerts/index.js';
export {
  defaultSlos,
  SloKey,
  slosFromSettings,
  SloTracker,
  type DefaultSloInputs,
  type SloDefinition,
  type SloStatus,
  type SloTrackerOptions,
  type SloTrackerStats,
  type SloWindowStatus,
} from './slo.js';

// The event store.
export {
  DEFAULT_EVENT_MAX_ROWS,
  DEFAULT_EVENT_RETENTION_HOURS,
  EventStore,
  eventStoreOptionsFromSettings,
  PRUNE_CHUNK_ROWS,
  resolveEventStoreOptions,
  type EventStoreCounts,
  type EventStoreOptions,
  type IngestResult,
  type PrunedRows,
  type PruneResult,
  type ResolvedEventStoreOptions,
} from './events/event-store.js';
export { DEFAULT_QUERY_LIMIT, EventOrder, MAX_QUERY_LIMIT, type FieldReportQuery, type TelemetryEventQuery } from './events/query.js';
export { SEED_ID_ATTRIBUTE, type StoredFieldReport, type StoredTelemetryEvent } from './events/rows.js';
export { EVENT_STORE_SCHEMA_VERSION } from './events/schema.js';
export { EventStoreFailure } from './events/storage-error.js';

// The live view.
export {
  RUN_BOARD_DEFAULTS,
  RunBoard,
  resolveRunBoardOptions,
  type ResolvedRunBoardOptions,
  type RunBoardChange,
  type RunBoardListener,
  type RunBoardOptions,
} from './view/board.js';
export { registerViewRoutes, VIEW_ROUTES_DEFAULTS, type FleetView, type ViewRoutes, type ViewRoutesOptions } from './view/routes.js';
export {
  CurveName,
  type AlertEvent as ViewAlert,
  type AlertSeverity,
  type CommandView,
  type CurveDelta,
  type CurvePoint,
  type FleetDelta,
  type ModeView,
  type RunBoardStats,
  type RunDelta,
  type RunEventView,
  type RunSummary,
  type SeedFate,
  type SeedLaneView,
  type StageInterval,
} from './view/view-types.js';
export type { LiveMessage } from './view/live-stream.js';

// Reports of a run: report.html and TensorBoard event files.
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
