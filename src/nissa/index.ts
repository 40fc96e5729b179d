/** Nissa: observability (event store, metrics, alerts, live view). Other subsystems import only this file. */
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
