/**
 * Queries of the event store: the filters a caller may give, checked eagerly, and the SQL
 * they become (parameters only; no caller text is ever spliced into SQL).
 */
import { optionChecks } from '../../core/index.js';

/** Order of query results by event time (ties by insertion order). */
export const EventOrder = {
  NEWEST_FIRST: 'newest_first',
  OLDEST_FIRST: 'oldest_first',
} as const;

/** Union of {@link EventOrder} values. */
export type EventOrder = (typeof EventOrder)[keyof typeof EventOrder];

/** Rows a query returns when it sets no `limit`. */
export const DEFAULT_QUERY_LIMIT = 1_000;
/** The largest `limit` a query may ask for. */
export const MAX_QUERY_LIMIT = 1_000_000;

/** Filters common to both tables. Times are the event's own (packet timestamp, report `issued_at`). */
interface TimeWindowQuery {
  readonly trainingRunId?: string;
  readonly seedId?: string;
  /** Earliest event time, inclusive, ms since the epoch. */
  readonly sinceMs?: number;
  /** Latest event time, exclusive, ms since the epoch. */
  readonly untilMs?: number;
  /** At most this many rows. @default 1000 (at most {@link MAX_QUERY_LIMIT}) */
  readonly limit?: number;
  /** @default "newest_first" */
  readonly order?: EventOrder;
}

/** A query of telemetry events; every filter given must hold. */
export interface TelemetryEventQuery extends TimeWindowQuery {
  /** The packet's source subsystem. */
  readonly source?: string;
  /** Events at this level or above (a `TelemetryLevel`). */
  readonly minLevel?: number;
  /** The event name exactly, or a prefix when it ends in `*` (`tamiyo.bsds.*`). */
  readonly description?: string;
}

/** A query of field reports; every filter given must hold. */
export interface FieldReportQuery extends TimeWindowQuery {
  readonly blueprintId?: string;
  /** A `FieldReportOutcome`. */
  readonly outcome?: number;
}

/** A `WHERE … ORDER BY … LIMIT ?` clause and its parameters. */
export interface QuerySql {
  readonly tail: string;
  readonly params: readonly (string | number)[];
}

class Clauses {
  readonly where: string[] = [];
  readonly params: (string | number)[] = [];

  add(sql: string, ...params: (string | number)[]): void {
    this.where.push(sql);
    this.params.push(...params);
  }

  tail(query: TimeWindowQuery, limit: number): QuerySql {
    const direction = query.order === EventOrder.OLDEST_FIRST ? 'ASC' : 'DESC';
    const where = this.where.length === 0 ? '' : `WHERE ${this.where.join(' AND ')} `;
    return { tail: `${where}ORDER BY time_ms ${direction}, seq ${direction} LIMIT ?`, params: [...this.params, limit] };
  }
}

function common(owner: string, query: TimeWindowQuery): { clauses: Clauses; limit: number } {
  const check = optionChecks(owner);
  const clauses = new Clauses();
  if (query.trainingRunId !== undefined) clauses.add('training_run_id = ?', query.trainingRunId);
  if (query.seedId !== undefined) clauses.add('seed_id = ?', query.seedId);
  if (query.sinceMs !== undefined) clauses.add('time_ms >= ?', check.integer('sinceMs', query.sinceMs));
  if (query.untilMs !== undefined) clauses.add('time_ms < ?', check.integer('untilMs', query.untilMs));
  if (query.order !== undefined) check.oneOf('order', query.order, Object.values(EventOrder));
  const limit = check.integer('limit', query.limit ?? DEFAULT_QUERY_LIMIT, { min: 1, max: MAX_QUERY_LIMIT });
  return { clauses, limit };
}

/** `description GLOB ?` pattern matching `prefix` followed by anything (GLOB is case-sensitive, unlike LIKE). */
function globPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[]/g, (c) => `[${c}]`)}*`;
}

/**
 * The SQL tail of a telemetry event query.
 * @throws EsperError `INVALID_ARGUMENT` naming a bad filter (`limit`, `sinceMs`, …)
 */
export function telemetryQuerySql(query: TelemetryEventQuery): QuerySql {
  const { clauses, limit } = common('TelemetryEventQuery', query);
  if (query.source !== undefined) clauses.add('source = ?', query.source);
  if (query.minLevel !== undefined) {
    clauses.add('level >= ?', optionChecks('TelemetryEventQuery').integer('minLevel', query.minLevel, { min: 0 }));
  }
  if (query.description !== undefined) {
    if (query.description.endsWith('*')) clauses.add('description GLOB ?', globPrefix(query.description.slice(0, -1)));
    else clauses.add('description = ?', query.description);
  }
  return clauses.tail(query, limit);
}

/**
 * The SQL tail of a field report query.
 * @throws EsperError `INVALID_ARGUMENT` naming a bad filter
 */
export function fieldReportQuerySql(query: FieldReportQuery): QuerySql {
  const { clauses, limit } = common('FieldReportQuery', query);
  if (query.blueprintId !== undefined) clauses.add('blueprint_id = ?', query.blueprintId);
  if (query.outcome !== undefined) {
    clauses.add('outcome = ?', optionChecks('FieldReportQuery').integer('outcome', query.outcome, { min: 0 }));
  }
  return clauses.tail(query, limit);
}
