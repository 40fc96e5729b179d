/** The event store's SQLite layout (`PRAGMA user_version` {@link EVENT_STORE_SCHEMA_VERSION}). */

/** `PRAGMA user_version` of the layout below; a store with another version is refused. */
export const EVENT_STORE_SCHEMA_VERSION = 1;

/** The tables this layout creates (a database holding other tables only is another program's). */
export const EVENT_STORE_TABLES = ['field_reports', 'telemetry_events'] as const;

/**
 * `seq` is the rowid (insertion order: the retention cap deletes the lowest first);
 * `time_ms` is the event's own time, which queries filter and order by; `received_at_ms`
 * is when Nissa stored it, which the retention window counts from (a producer's wrong clock
 * cannot make rows immortal or expire them on arrival).
 */
export const EVENT_STORE_SCHEMA_SQL = `
CREATE TABLE telemetry_events (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  packet_id TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  training_run_id TEXT NOT NULL,
  source TEXT NOT NULL,
  level INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  description TEXT NOT NULL,
  seed_id TEXT,
  attributes_json TEXT NOT NULL
);
CREATE INDEX telemetry_events_time ON telemetry_events (time_ms);
CREATE INDEX telemetry_events_run_time ON telemetry_events (training_run_id, time_ms);
CREATE INDEX telemetry_events_seed_time ON telemetry_events (seed_id, time_ms) WHERE seed_id IS NOT NULL;
CREATE INDEX telemetry_events_received ON telemetry_events (received_at_ms);
CREATE TABLE field_reports (
  seq INTEGER PRIMARY KEY,
  report_id TEXT NOT NULL UNIQUE,
  command_id TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  training_run_id TEXT NOT NULL,
  seed_id TEXT NOT NULL,
  blueprint_id TEXT NOT NULL,
  outcome INTEGER NOT NULL,
  observation_window_epochs INTEGER NOT NULL,
  policy_version TEXT NOT NULL,
  notes TEXT NOT NULL,
  delta_json TEXT NOT NULL,
  extra_json TEXT NOT NULL
);
CREATE INDEX field_reports_time ON field_reports (time_ms);
CREATE INDEX field_reports_run_time ON field_reports (training_run_id, time_ms);
CREATE INDEX field_reports_received ON field_reports (received_at_ms);
`;
