/**
 * The store's queries against a model: random events and random filters, and the rows a
 * query returns must be exactly those an in-memory filter, sort and limit of the same events
 * gives.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/index.js';
import { FieldReportOutcome, type TelemetryLevel } from '../../src/leyline/index.js';
import {
  EventOrder,
  EventStore,
  type FieldReportQuery,
  type StoredTelemetryEvent,
  type TelemetryEventQuery,
} from '../../src/nissa/index.js';
import { fieldReport, packet } from './event-store-fixtures.js';

const T0 = Date.UTC(2026, 0, 1);
const RUNS = ['', 'run-a', 'run-b'];
const SEEDS = ['seed-1', 'seed-2', 'Seed-1'];
const SOURCES = ['tamiyo', 'kasmina', 'tolaria'];
// Names with GLOB and LIKE metacharacters, case variants and shared prefixes.
const DESCRIPTIONS = ['a.b', 'a.bc', 'A.b', 'a*b', 'a[b]', 'a?', 'a%_', 'b', 'é.x', ''];

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nissa-events-prop-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const eventArb = fc.record({
  run: fc.constantFrom(...RUNS),
  seed: fc.option(fc.constantFrom(...SEEDS), { nil: undefined }),
  source: fc.constantFrom(...SOURCES),
  level: fc.integer({ min: 0, max: 4 }),
  description: fc.constantFrom(...DESCRIPTIONS),
  timeMs: fc.integer({ min: T0 - 50, max: T0 + 50 }),
  extra: fc.dictionary(fc.constantFrom('k', 'reason', 'step'), fc.string({ maxLength: 4 })),
});

const windowArb = {
  trainingRunId: fc.option(fc.constantFrom(...RUNS, 'run-z'), { nil: undefined }),
  seedId: fc.option(fc.constantFrom(...SEEDS), { nil: undefined }),
  sinceMs: fc.option(fc.integer({ min: T0 - 60, max: T0 + 60 }), { nil: undefined }),
  untilMs: fc.option(fc.integer({ min: T0 - 60, max: T0 + 60 }), { nil: undefined }),
  limit: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
  order: fc.option(fc.constantFrom(EventOrder.NEWEST_FIRST, EventOrder.OLDEST_FIRST), { nil: undefined }),
};

const queryArb = fc.record(
  {
    ...windowArb,
    source: fc.option(fc.constantFrom(...SOURCES), { nil: undefined }),
    minLevel: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    description: fc.option(
      fc.oneof(
        fc.constantFrom(...DESCRIPTIONS),
        fc.constantFrom(...DESCRIPTIONS, 'a', 'a.', 'a[', 'a*', 'A').map((p) => `${p}*`),
      ),
      { nil: undefined },
    ),
  },
  { requiredKeys: [] },
);

/** Drops `undefined` filters (the store's query type has optional, not undefined-valued, keys). */
function defined<T extends object>(query: T): T {
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as T;
}

function inWindow(row: { trainingRunId: string; seedId: string | undefined; timeMs: number }, q: TelemetryEventQuery | FieldReportQuery) {
  return (
    (q.trainingRunId === undefined || row.trainingRunId === q.trainingRunId) &&
    (q.seedId === undefined || row.seedId === q.seedId) &&
    (q.sinceMs === undefined || row.timeMs >= q.sinceMs) &&
    (q.untilMs === undefined || row.timeMs < q.untilMs)
  );
}

function ordered<R extends { seq: number; timeMs: number }>(rows: R[], q: TelemetryEventQuery | FieldReportQuery): R[] {
  const sorted = [...rows].sort((a, b) => a.timeMs - b.timeMs || a.seq - b.seq);
  if (q.order !== EventOrder.OLDEST_FIRST) sorted.reverse();
  return sorted.slice(0, q.limit ?? 1_000);
}

function freshStore(): EventStore {
  n += 1;
  return EventStore.open({ path: path.join(dir, `store-${n}.db`), clock: new FakeClock({ wallMs: T0 }) });
}

describe('EventStore queries equal an in-memory filter of the same events', () => {
  it('telemetry events', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 60 }), fc.array(queryArb, { minLength: 1, maxLength: 8 }), (events, queries) => {
        const store = freshStore();
        try {
          // A few events per packet, and every packet sent twice (redelivery).
          const packets = [];
          for (let i = 0; i < events.length; i += 3) {
            const group = events.slice(i, i + 3);
            packets.push(
              ...group.map((e, j) =>
                packet({
                  packetId: `p${i}-${j}`,
                  timeMs: e.timeMs,
                  run: e.run,
                  source: e.source,
                  events: [
                    {
                      description: e.description,
                      level: e.level as TelemetryLevel,
                      attributes: { ...e.extra, ...(e.seed === undefined ? {} : { seed_id: e.seed }) },
                    },
                  ],
                }),
              ),
            );
          }
          store.ingestTelemetry(packets);
          store.ingestTelemetry(packets);
          const model: StoredTelemetryEvent[] = store.queryTelemetry({ order: EventOrder.OLDEST_FIRST, limit: 1_000_000 });
          expect(model).toHaveLength(events.length);
          model.sort((a, b) => a.seq - b.seq);
          model.forEach((row, i) => {
            const e = events[i]!;
            expect(row).toMatchObject({
              trainingRunId: e.run,
              seedId: e.seed,
              source: e.source,
              level: e.level,
              description: e.description,
              timeMs: e.timeMs,
            });
          });
          for (const raw of queries) {
            const q = defined(raw);
            const expected = ordered(
              model.filter(
                (row) =>
                  inWindow(row, q) &&
                  (q.source === undefined || row.source === q.source) &&
                  (q.minLevel === undefined || row.level >= q.minLevel) &&
                  (q.description === undefined ||
                    (q.description.endsWith('*')
                      ? row.description.startsWith(q.description.slice(0, -1))
                      : row.description === q.description)),
              ),
              q,
            );
            expect(store.queryTelemetry(q)).toEqual(expected);
          }
        } finally {
          store.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('field reports', () => {
    const reportArb = fc.record({
      run: fc.constantFrom(...RUNS),
      seed: fc.constantFrom(...SEEDS),
      blueprint: fc.constantFrom('BP001', 'BP002'),
      outcome: fc.constantFrom(FieldReportOutcome.SUCCESS, FieldReportOutcome.NEUTRAL, FieldReportOutcome.REGRESSION),
      timeMs: fc.integer({ min: T0 - 50, max: T0 + 50 }),
    });
    const reportQueryArb = fc.record(
      {
        ...windowArb,
        blueprintId: fc.option(fc.constantFrom('BP001', 'BP002'), { nil: undefined }),
        outcome: fc.option(fc.constantFrom(FieldReportOutcome.SUCCESS, FieldReportOutcome.REGRESSION), { nil: undefined }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(reportArb, { maxLength: 40 }), fc.array(reportQueryArb, { minLength: 1, maxLength: 8 }), (reports, queries) => {
        const store = freshStore();
        try {
          const sent = reports.map((r, i) =>
            fieldReport({ reportId: `r${i}`, timeMs: r.timeMs, run: r.run, seed: r.seed, blueprint: r.blueprint, outcome: r.outcome }),
          );
          store.ingestFieldReports(sent);
          store.ingestFieldReports(sent.slice(0, 5));
          const model = store.queryFieldReports({ limit: 1_000_000 });
          expect(model).toHaveLength(reports.length);
          for (const raw of queries) {
            const q = defined(raw);
            const expected = ordered(
              model.filter(
                (row) =>
                  inWindow(row, q) &&
                  (q.blueprintId === undefined || row.blueprintId === q.blueprintId) &&
                  (q.outcome === undefined || row.outcome === q.outcome),
              ),
              q,
            );
            expect(store.queryFieldReports(q)).toEqual(expected);
          }
        } finally {
          store.close();
        }
      }),
      { numRuns: 100 },
    );
  });
});
