/**
 * Nissa: observability — Prometheus metrics with the prototype's names, the bus consumer
 * that feeds them, and the HTTP server. Weatherlight composes it (embedded or its own
 * process).
 */
export { COVERAGE_FEATURES, NissaMetrics, type NissaMetricsOptions } from './metrics.js';
export { NISSA_GROUP, NISSA_TYPES, NissaService, type NissaListener, type NissaServiceOptions, type NissaServiceStats } from './service.js';
export { startNissaHttp, type NissaHttp, type NissaHttpOptions } from './http.js';
