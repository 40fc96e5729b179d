/**
 * Nissa: observability — Prometheus metrics with the prototype's names, the bus consumer
 * that feeds them, the HTTP server, alerts and SLOs, the event store and the live view.
 * Weatherlight composes it (embedded or its own process); other subsystems import only from
 * this file.
 */
export { COVERAGE_FEATURES, NissaMetrics, type NissaMetricsOptions } from './metrics.js';
export { NISSA_GROUP, NISSA_TYPES, NissaService, type NissaListener, type NissaServiceOptions, type NissaServiceStats } from './service.js';
export { startNissaHttp, type NissaHttp, type NissaHttpOptions } from './http.js';

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
