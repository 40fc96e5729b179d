/**
 * `esper events`: reads Nissa's event store (read-only: it never creates, writes or migrates
 * the file) and prints telemetry events or field reports as a table or as JSON lines.
 */
import { loadSettings, type EsperSettings } from '../core/index.js';
import { FieldReportOutcome, TelemetryLevel } from '../leyline/index.js';
import {
  EventOrder,
  EventStore,
  type FieldReportQuery,
  type StoredFieldReport,
  type StoredTelemetryEvent,
  type TelemetryEventQuery,
} from '../nissa/index.js';
import {
  ExitCode,
  helpText,
  parseCommandLine,
  reportFailure,
  UsageError,
  type CliIo,
  type CommandSpec,
  type FlagSpec,
} from './scaffold.js';

const LEVELS: Readonly<Record<string, TelemetryLevel>> = {
  info: TelemetryLevel.INFO,
  warning: TelemetryLevel.WARNING,
  error: TelemetryLevel.ERROR,
  critical: TelemetryLevel.CRITICAL,
};

/** Rows `esper events` prints by default. */
export const DEFAULT_EVENTS_LIMIT = 100;

/** The flags of `esper events`, declared once. */
export const EVENTS_FLAGS = {
  run: { kind: 'string', value: '<id>', help: 'only this training run' },
  seed: { kind: 'string', value: '<id>', help: 'only events naming this seed (attribute seed_id)' },
  source: { kind: 'string', value: '<subsystem>', help: 'only this source subsystem (tamiyo, kasmina, …)' },
  level: { kind: 'string', value: '<level>', help: 'this level or above', choices: Object.keys(LEVELS) },
  event: { kind: 'string', value: '<name>', help: 'only this event name; a trailing * matches a prefix (tamiyo.bsds.*)' },
  since: { kind: 'string', value: '<time>', help: 'from this time on: ISO 8601 (2026-03-01T12:00Z) or an age (30s, 10m, 2h, 1d)' },
  until: { kind: 'string', value: '<time>', help: 'before this time (same forms as --since)' },
  'field-reports': { kind: 'boolean', help: 'list field reports instead of telemetry events' },
  limit: { kind: 'integer', value: '<n>', help: 'at most this many rows', min: 1, max: 1_000_000, default: DEFAULT_EVENTS_LIMIT },
  'oldest-first': { kind: 'boolean', help: 'oldest first (default: newest first)' },
  json: { kind: 'boolean', help: 'one JSON object per line' },
  store: { kind: 'string', value: '<file>', help: 'the event store', defaultText: 'settings nissa.eventStorePath' },
} as const satisfies Readonly<Record<string, FlagSpec>>;

/** The declaration of `esper events`. */
export const EVENTS_COMMAND: CommandSpec<typeof EVENTS_FLAGS> = {
  name: 'esper events',
  summary: "query Nissa's event store: telemetry events and field reports",
  synopsis: '[--run <id>] [--seed <id>] [--source <s>] [--level <level>] [--since <time>] [--field-reports] [options]',
  flags: EVENTS_FLAGS,
  notes: `The store is settings nissa.eventStorePath (ESPER_NISSA_EVENT_STORE_PATH, default
var/nissa/events.db), opened read-only: esper events never creates or changes it, and may
run while Nissa writes it. Times are the events' own (packet timestamp, report issued_at),
shown in UTC.

Exit codes: 0 done (also when nothing matches); 1 the store is missing or cannot be read
(the message names the file); 2 bad flags or settings.`,
};

/** Usage of `esper events`. */
export const EVENTS_HELP = helpText(EVENTS_COMMAND);

const AGE = /^(\d+)(s|m|h|d)$/;
const AGE_UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * A `--since`/`--until` value in ms since the epoch: an age before `nowMs` (`10m`) or an ISO
 * 8601 date or time (a time without a zone is UTC).
 * @throws UsageError naming the flag
 */
export function parseTimeFlag(name: string, text: string, nowMs: number): number {
  const age = AGE.exec(text);
  if (age !== null) return nowMs - Number(age[1]) * (AGE_UNIT_MS[age[2] as string] as number);
  if (ISO.test(text)) {
    const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(text) || !/[T ]/.test(text) ? text : `${text}Z`;
    const ms = Date.parse(zoned.replace(' ', 'T'));
    if (Number.isSafeInteger(ms)) return ms;
  }
  throw new UsageError(`--${name} must be an ISO 8601 time (2026-03-01T12:00Z) or an age (30s, 10m, 2h, 1d), got '${text}'`);
}

/** Runs `esper events` with the arguments after `events`; returns the exit code. */
export function runEvents(
  argv: readonly string[],
  io: CliIo,
  options: { readonly settings?: EsperSettings; readonly nowMs?: number } = {},
): Promise<number> {
  return Promise.resolve(events(argv, io, options));
}

function events(argv: readonly string[], io: CliIo, options: { readonly settings?: EsperSettings; readonly nowMs?: number }): number {
  let parsed;
  let file: string;
  try {
    parsed = parseCommandLine(EVENTS_COMMAND, argv);
    if (parsed.help) {
      io.stdout.write(EVENTS_HELP);
      return ExitCode.OK;
    }
    const v = parsed.values;
    if (v['field-reports'] && (v.source !== undefined || v.level !== undefined || v.event !== undefined)) {
      throw new UsageError('--source, --level and --event apply to telemetry events, not to --field-reports');
    }
    const nowMs = options.nowMs ?? Date.now();
    const sinceMs = v.since === undefined ? undefined : parseTimeFlag('since', v.since, nowMs);
    const untilMs = v.until === undefined ? undefined : parseTimeFlag('until', v.until, nowMs);
    file = v.store ?? (options.settings ?? loadSettings()).nissa.eventStorePath;
    const window = {
      ...(v.run === undefined ? {} : { trainingRunId: v.run }),
      ...(v.seed === undefined ? {} : { seedId: v.seed }),
      ...(sinceMs === undefined ? {} : { sinceMs }),
      ...(untilMs === undefined ? {} : { untilMs }),
      limit: v.limit,
      order: v['oldest-first'] ? EventOrder.OLDEST_FIRST : EventOrder.NEWEST_FIRST,
    };
    const store = EventStore.openReadOnly(file);
    try {
      if (v['field-reports']) {
        printFieldReports(io, store.queryFieldReports(window satisfies FieldReportQuery), v.json);
      } else {
        const query: TelemetryEventQuery = {
          ...window,
          ...(v.source === undefined ? {} : { source: v.source }),
          ...(v.level === undefined ? {} : { minLevel: LEVELS[v.level] as TelemetryLevel }),
          ...(v.event === undefined ? {} : { description: v.event }),
        };
        printTelemetry(io, store.queryTelemetry(query), v.json);
      }
    } finally {
      store.close();
    }
    return ExitCode.OK;
  } catch (error) {
    return reportFailure(io, EVENTS_COMMAND, error);
  }
}

function iso(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

function levelName(level: number): string {
  return Object.keys(LEVELS).find((name) => LEVELS[name] === level) ?? (level === 0 ? 'unspecified' : String(level));
}

function outcomeName(outcome: number): string {
  return ((FieldReportOutcome[outcome] as string | undefined) ?? String(outcome)).toLowerCase();
}

/** Control characters (a crafted attribute must not move the terminal's cursor) shown as `?`. */
function safe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function cut(text: string, width: number): string {
  const clean = safe(text);
  return clean.length <= width ? clean : `${clean.slice(0, width - 1)}…`;
}

/** Attributes shown in the table: the first three other than seed_id, `k=v`. */
function attributeText(attributes: Readonly<Record<string, string>>): string {
  const shown = Object.entries(attributes)
    .filter(([key]) => key !== 'seed_id')
    .slice(0, 3)
    .map(([key, value]) => `${key}=${cut(value, 24)}`);
  const more = Object.keys(attributes).filter((key) => key !== 'seed_id').length - shown.length;
  return shown.join(' ') + (more > 0 ? ` (+${more})` : '');
}

function table(io: CliIo, header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  io.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

function printTelemetry(io: CliIo, rows: readonly StoredTelemetryEvent[], json: boolean): void {
  if (json) {
    for (const r of rows) {
      io.stdout.write(
        `${JSON.stringify({
          time: iso(r.timeMs),
          receivedAt: iso(r.receivedAtMs),
          level: levelName(r.level),
          priority: r.priority,
          source: r.source,
          run: r.trainingRunId,
          seed: r.seedId ?? null,
          event: r.description,
          eventId: r.eventId,
          packetId: r.packetId,
          attributes: r.attributes,
        })}\n`,
      );
    }
    return;
  }
  if (rows.length === 0) {
    io.stderr.write('esper events: no telemetry events match\n');
    return;
  }
  table(
    io,
    ['TIME', 'LEVEL', 'SOURCE', 'RUN', 'SEED', 'EVENT', 'ATTRIBUTES'],
    rows.map((r) => [
      iso(r.timeMs),
      levelName(r.level),
      cut(r.source, 12),
      cut(r.trainingRunId || '-', 24),
      cut(r.seedId ?? '-', 16),
      cut(r.description, 40),
      attributeText(r.attributes),
    ]),
  );
}

function printFieldReports(io: CliIo, rows: readonly StoredFieldReport[], json: boolean): void {
  if (json) {
    for (const r of rows) {
      io.stdout.write(
        `${JSON.stringify({
          time: iso(r.timeMs),
          receivedAt: iso(r.receivedAtMs),
          reportId: r.reportId,
          commandId: r.commandId,
          run: r.trainingRunId,
          seed: r.seedId,
          blueprint: r.blueprintId,
          outcome: outcomeName(r.outcome),
          observationWindowEpochs: r.observationWindowEpochs,
          policyVersion: r.policyVersion,
          notes: r.notes,
          delta: r.delta,
          followUpActions: r.followUpActions,
          extraMetrics: r.extraMetrics,
        })}\n`,
      );
    }
    return;
  }
  if (rows.length === 0) {
    io.stderr.write('esper events: no field reports match\n');
    return;
  }
  table(
    io,
    ['TIME', 'OUTCOME', 'RUN', 'SEED', 'BLUEPRINT', 'WINDOW', 'LOSS Δ', 'NOTES'],
    rows.map((r) => [
      iso(r.timeMs),
      outcomeName(r.outcome),
      cut(r.trainingRunId || '-', 24),
      cut(r.seedId || '-', 16),
      cut(r.blueprintId || '-', 12),
      `${r.observationWindowEpochs} ep`,
      r.delta['lossDelta'] === undefined ? '-' : r.delta['lossDelta'].toFixed(4),
      cut(r.notes, 60),
    ]),
  );
}
