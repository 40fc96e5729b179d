import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { FieldReportOutcome, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { EVENT_STORE_SCHEMA_VERSION, EventOrder, EventStore, EventStoreFailure, PRUNE_CHUNK_ROWS } from '../../src/nissa/index.js';
import { fieldReport, packet } from './event-store-fixtures.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR_MS = 3_600_000;

let dir: string;
let file: string;
const open: EventStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nissa-events-'));
  file = path.join(dir, 'nested', 'events.db');
});

afterEach(async () => {
  for (const store of open.splice(0)) store.close();
  await rm(dir, { recursive: true, force: true });
});

function writer(options: { clock?: FakeClock; retentionHours?: number; maxRows?: number } = {}): EventStore {
  const store = EventStore.open({ path: file, clock: options.clock ?? new FakeClock({ wallMs: T0 }), ...options });
  open.push(store);
  return store;
}

function reader(at = file): EventStore {
  const store = EventStore.openReadOnly(at);
  open.push(store);
  return store;
}

function expectStoreError(error: unknown, reason: EventStoreFailure, at = file): void {
  expect(isEsperError(error, ErrorCode.NISSA_EVENT_STORE_INVALID)).toBe(true);
  if (!isEsperError(error)) return;
  expect(error.message).toContain(at);
  expect(error.details).toMatchObject({ path: at, reason });
}

/** What `fn` throws (the test fails if it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

async function sha256(at: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(at))
    .digest('hex');
}

describe('EventStore ingest', () => {
  it('creates the file and its directory, in WAL mode, at the current schema version', () => {
    writer().close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(EVENT_STORE_SCHEMA_VERSION);
    db.close();
  });

  it('stores one row per event with its packet context, seed id and attributes', () => {
    const store = writer();
    const result = store.ingestTelemetry(
      [
        packet({
          packetId: 'p1',
          timeMs: T0 - 5_000,
          source: 'kasmina',
          run: 'run-7',
          priority: MessagePriority.CRITICAL,
          events: [
            { eventId: 'e1', description: 'gate_failure', level: TelemetryLevel.WARNING, attributes: { seed_id: 'seed-3', gate: 'G2' } },
            { description: 'isolation_violation', level: TelemetryLevel.CRITICAL },
          ],
        }),
      ],
      T0,
    );
    expect(result).toEqual({ inserted: 2, duplicates: 0 });
    const rows = store.queryTelemetry({ order: EventOrder.OLDEST_FIRST });
    expect(rows).toEqual([
      {
        seq: 1,
        eventId: 'e1',
        packetId: 'p1',
        receivedAtMs: T0,
        timeMs: T0 - 5_000,
        trainingRunId: 'run-7',
        source: 'kasmina',
        level: TelemetryLevel.WARNING,
        priority: MessagePriority.CRITICAL,
        description: 'gate_failure',
        seedId: 'seed-3',
        attributes: { seed_id: 'seed-3', gate: 'G2' },
      },
      expect.objectContaining({ seq: 2, eventId: 'p1:evt-2', seedId: undefined, attributes: {}, level: TelemetryLevel.CRITICAL }),
    ]);
  });

  it('does not duplicate rows when a packet is redelivered', () => {
    const store = writer();
    const sent = packet({ packetId: 'p1', timeMs: T0, events: [{ description: 'a' }, { description: 'b', eventId: 'fixed' }] });
    expect(store.ingestTelemetry([sent])).toEqual({ inserted: 2, duplicates: 0 });
    expect(store.ingestTelemetry([sent, sent])).toEqual({ inserted: 0, duplicates: 4 });
    expect(store.counts().telemetryEvents).toBe(2);
  });

  it('stores field reports once each, with the delta by field name', () => {
    const store = writer();
    const reports = [
      fieldReport({ reportId: 'r1', timeMs: T0 - 1_000, seed: 'seed-1', lossDelta: -0.5, counterfactual: 0.125 }),
      fieldReport({ reportId: 'r2', timeMs: T0, seed: 'seed-2', outcome: FieldReportOutcome.REGRESSION }),
    ];
    expect(store.ingestFieldReports(reports, T0)).toEqual({ inserted: 2, duplicates: 0 });
    expect(store.ingestFieldReports([reports[0]!], T0)).toEqual({ inserted: 0, duplicates: 1 });
    const [newest, oldest] = store.queryFieldReports();
    expect(newest).toMatchObject({ reportId: 'r2', outcome: FieldReportOutcome.REGRESSION, seedId: 'seed-2' });
    expect(newest!.delta).not.toHaveProperty('counterfactualContribution');
    expect(oldest).toEqual({
      seq: 1,
      reportId: 'r1',
      commandId: 'cmd-r1',
      receivedAtMs: T0,
      timeMs: T0 - 1_000,
      trainingRunId: 'run-1',
      seedId: 'seed-1',
      blueprintId: 'BP001',
      outcome: FieldReportOutcome.SUCCESS,
      observationWindowEpochs: 3,
      policyVersion: 'policy-7',
      notes: 'grew well',
      delta: expect.objectContaining({ lossDelta: -0.5, riskScore: 0.5, counterfactualContribution: 0.125, paramDelta: 0 }) as unknown,
      followUpActions: [{ actionType: 'watch', rationale: 'new seed' }],
      extraMetrics: [],
    });
    expect(store.queryFieldReports({ seedId: 'seed-2' }).map((r) => r.reportId)).toEqual(['r2']);
    expect(store.queryFieldReports({ outcome: FieldReportOutcome.SUCCESS }).map((r) => r.reportId)).toEqual(['r1']);
  });

  it('ingests at a measured rate (100,000 events in batches of 500)', () => {
    const store = writer();
    const batches = Array.from({ length: 200 }, (_, b) =>
      Array.from({ length: 50 }, (_, p) =>
        packet({
          packetId: `b${b}-p${p}`,
          timeMs: T0 + b * 1_000 + p,
          run: `run-${p % 3}`,
          events: Array.from({ length: 10 }, (_, e) => ({
            description: e % 2 === 0 ? 'seed_stage_changed' : 'tamiyo.decision',
            level: (1 + (e % 4)) as TelemetryLevel,
            attributes: { seed_id: `seed-${e}`, step: String(b * 50 + p) },
          })),
        }),
      ),
    );
    const started = performance.now();
    let inserted = 0;
    for (const batch of batches) inserted += store.ingestTelemetry(batch).inserted;
    const seconds = (performance.now() - started) / 1000;
    const rate = Math.round(inserted / seconds);
    console.info(`event store ingest: ${inserted} events in ${seconds.toFixed(2)} s = ${rate} events/s`);
    expect(inserted).toBe(100_000);
    expect(rate).toBeGreaterThan(10_000);
    const queryStarted = performance.now();
    expect(store.queryTelemetry({ trainingRunId: 'run-1', seedId: 'seed-3', minLevel: TelemetryLevel.ERROR, limit: 100 })).toHaveLength(
      100,
    );
    console.info(`event store query (run + seed + level, 100 rows of 100,000): ${(performance.now() - queryStarted).toFixed(1)} ms`);
  });
});

describe('EventStore queries', () => {
  it('filters by run, seed, source, minimum level, description and time, newest first by default', () => {
    const store = writer();
    store.ingestTelemetry([
      packet({
        packetId: 'a',
        timeMs: T0,
        source: 'kasmina',
        run: 'r1',
        events: [{ description: 'x.one', attributes: { seed_id: 's1' } }],
      }),
      packet({
        packetId: 'b',
        timeMs: T0 + 10,
        source: 'tamiyo',
        run: 'r1',
        events: [{ description: 'x.two', level: TelemetryLevel.ERROR }],
      }),
      packet({
        packetId: 'c',
        timeMs: T0 + 20,
        source: 'tamiyo',
        run: 'r2',
        events: [{ description: 'x*[odd]?', level: TelemetryLevel.CRITICAL }],
      }),
    ]);
    const ids = (query: Parameters<EventStore['queryTelemetry']>[0]): string[] => store.queryTelemetry(query).map((r) => r.packetId);
    expect(ids({})).toEqual(['c', 'b', 'a']);
    expect(ids({ order: EventOrder.OLDEST_FIRST, limit: 2 })).toEqual(['a', 'b']);
    expect(ids({ trainingRunId: 'r1' })).toEqual(['b', 'a']);
    expect(ids({ seedId: 's1' })).toEqual(['a']);
    expect(ids({ source: 'tamiyo' })).toEqual(['c', 'b']);
    expect(ids({ minLevel: TelemetryLevel.ERROR })).toEqual(['c', 'b']);
    expect(ids({ description: 'x.two' })).toEqual(['b']);
    expect(ids({ description: 'x.*' })).toEqual(['b', 'a']);
    expect(ids({ description: 'x*[*' })).toEqual(['c']);
    expect(ids({ description: 'X.*' })).toEqual([]);
    expect(ids({ sinceMs: T0 + 10 })).toEqual(['c', 'b']);
    expect(ids({ untilMs: T0 + 10 })).toEqual(['a']);
    expect(ids({ sinceMs: T0 + 10, untilMs: T0 + 20, trainingRunId: 'r1', source: 'tamiyo' })).toEqual(['b']);
  });

  it('refuses a bad filter naming it', () => {
    const store = writer();
    for (const [query, field] of [
      [{ limit: 0 }, 'limit'],
      [{ limit: 1.5 }, 'limit'],
      [{ sinceMs: Number.NaN }, 'sinceMs'],
      [{ order: 'sideways' }, 'order'],
    ] as const) {
      const error = thrown(() => store.queryTelemetry(query as never));
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((error as Error).message).toContain(field);
    }
  });
});

describe('EventStore retention', () => {
  it('deletes rows received before the retention window, and says how many', () => {
    const clock = new FakeClock({ wallMs: T0 });
    const store = writer({ clock, retentionHours: 2 });
    store.ingestTelemetry([packet({ packetId: 'old', timeMs: T0, events: [{ description: 'a' }, { description: 'b' }] })]);
    store.ingestFieldReports([fieldReport({ reportId: 'r-old', timeMs: T0 })]);
    clock.advance(HOUR_MS);
    store.ingestTelemetry([packet({ packetId: 'new', timeMs: T0 - 99 * HOUR_MS, events: [{ description: 'c' }] })]);
    clock.advance(HOUR_MS + 1);
    expect(store.prune()).toEqual({
      cutoffMs: T0 + 1,
      telemetryEvents: { expired: 2, overCap: 0, remaining: 1 },
      fieldReports: { expired: 1, overCap: 0, remaining: 0 },
    });
    // Retention counts from receipt: the packet stamped 99 h ago but received 1 h ago stays.
    expect(store.queryTelemetry().map((r) => r.packetId)).toEqual(['new']);
    expect(store.prune().telemetryEvents).toEqual({ expired: 0, overCap: 0, remaining: 1 });
  });

  it('keeps at most maxRows per table, deleting the oldest first in bounded transactions', () => {
    const store = writer({ maxRows: 5 });
    const total = PRUNE_CHUNK_ROWS * 2 + 7;
    const packets = Array.from({ length: total }, (_, i) => packet({ packetId: `p${i}`, timeMs: T0 - i, events: [{ description: 'e' }] }));
    store.ingestTelemetry(packets);
    store.ingestFieldReports(Array.from({ length: 7 }, (_, i) => fieldReport({ reportId: `r${i}`, timeMs: T0 })));
    const result = store.prune();
    expect(result.telemetryEvents).toEqual({ expired: 0, overCap: total - 5, remaining: 5 });
    expect(result.fieldReports).toEqual({ expired: 0, overCap: 2, remaining: 5 });
    // Oldest by insertion, not by event time (the last packets carry the earliest stamps).
    expect(store.queryTelemetry({ order: EventOrder.OLDEST_FIRST }).map((r) => r.packetId)).toEqual(
      Array.from({ length: 5 }, (_, i) => `p${total - 1 - i}`),
    );
    expect(store.queryFieldReports({ order: EventOrder.OLDEST_FIRST }).map((r) => r.reportId)).toEqual(['r2', 'r3', 'r4', 'r5', 'r6']);
  });

  it('refuses options out of range naming the field', () => {
    const error = thrown(() => EventStore.open({ path: file, maxRows: 0 }));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as Error).message).toContain('maxRows');
    expect(existsSync(file)).toBe(false);
  });
});

describe('EventStore files it cannot use', () => {
  it('names the file when it is not SQLite, writable or read-only, and leaves it as it was', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, 'this is not a database '.repeat(200));
    const before = await sha256(file);
    expectStoreError(
      thrown(() => writer()),
      EventStoreFailure.CORRUPT,
    );
    expectStoreError(
      thrown(() => reader()),
      EventStoreFailure.CORRUPT,
    );
    expect(await sha256(file)).toBe(before);
  });

  it('names the file when another program owns it or another schema version wrote it', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    const foreign = new Database(file);
    foreign.exec('CREATE TABLE notes (id INTEGER)');
    foreign.close();
    expectStoreError(
      thrown(() => writer()),
      EventStoreFailure.FOREIGN_DATABASE,
    );
    expectStoreError(
      thrown(() => reader()),
      EventStoreFailure.FOREIGN_DATABASE,
    );

    await rm(file);
    writer().close();
    open.splice(0);
    const newer = new Database(file);
    newer.pragma(`user_version = ${EVENT_STORE_SCHEMA_VERSION + 1}`);
    newer.close();
    for (const attempt of [() => writer(), () => reader()]) {
      const error = thrown(attempt);
      expectStoreError(error, EventStoreFailure.SCHEMA_VERSION);
      expect((error as Error).message).toContain(`schema version ${EVENT_STORE_SCHEMA_VERSION + 1}`);
    }
  });

  it('reports a truncated store as corrupt, naming the file', async () => {
    const store = writer();
    store.ingestTelemetry(
      Array.from({ length: 2_000 }, (_, i) => packet({ packetId: `p${i}`, timeMs: T0, events: [{ description: 'x'.repeat(200) }] })),
    );
    store.close();
    const { size } = await stat(file);
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, Math.floor(size / 2)));
    const error = thrown(() => {
      const r = reader();
      r.queryTelemetry({ limit: 1_000_000 });
    });
    expectStoreError(error, EventStoreFailure.CORRUPT);
    expectStoreError(
      thrown(() => writer()),
      EventStoreFailure.CORRUPT,
    );
  });

  it('read-only: a missing file is an error and is not created; an empty database is not a store', async () => {
    expectStoreError(
      thrown(() => reader()),
      EventStoreFailure.MISSING,
    );
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.dirname(file))).toBe(false);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '');
    expectStoreError(
      thrown(() => reader()),
      EventStoreFailure.FOREIGN_DATABASE,
    );
    expectStoreError(
      thrown(() => reader(path.dirname(file))),
      EventStoreFailure.UNREADABLE,
      path.dirname(file),
    );
  });

  it('read-only: queries leave the store unchanged and writes are refused', async () => {
    const store = writer();
    store.ingestTelemetry([packet({ packetId: 'p', timeMs: T0, events: [{ description: 'x' }] })]);
    store.close();
    const before = await sha256(file);
    const view = reader();
    expect(view.queryTelemetry()).toHaveLength(1);
    expect(view.counts()).toEqual({ telemetryEvents: 1, fieldReports: 0 });
    for (const write of [() => view.ingestTelemetry([]), () => view.ingestFieldReports([]), () => view.prune()]) {
      expect(isEsperError(thrown(write), ErrorCode.INVALID_STATE)).toBe(true);
    }
    view.close();
    expect(await sha256(file)).toBe(before);
  });

  it('close is idempotent and later calls are refused', () => {
    const store = writer();
    store.close();
    store.close();
    expect(
      isEsperError(
        thrown(() => store.queryTelemetry()),
        ErrorCode.INVALID_STATE,
      ),
    ).toBe(true);
  });
});

describe('EventStore with a writer and readers at once', () => {
  it('a reader sees committed batches while the writer keeps writing', () => {
    const store = writer();
    store.ingestTelemetry([packet({ packetId: 'p0', timeMs: T0, events: [{ description: 'x' }] })]);
    const view = reader();
    expect(view.counts().telemetryEvents).toBe(1);
    for (let i = 1; i <= 20; i += 1) {
      store.ingestTelemetry([packet({ packetId: `p${i}`, timeMs: T0 + i, events: [{ description: 'x' }] })]);
      expect(view.queryTelemetry({ limit: 1 })[0]?.packetId).toBe(`p${i}`);
    }
    store.prune();
  });

  it('a writer in another process and a reader here do not block each other', async () => {
    writer().close();
    open.splice(0);
    const script = `
      import { EventStore } from './src/nissa/index.js';
      import { create } from '@bufbuild/protobuf';
      import { TelemetryPacketSchema, TelemetryEventSchema } from './src/leyline/index.js';
      const store = EventStore.open({ path: process.argv[1] });
      for (let b = 0; b < 200; b += 1) {
        store.ingestTelemetry(Array.from({ length: 50 }, (_, p) => create(TelemetryPacketSchema, {
          packetId: 'b' + b + 'p' + p, sourceSubsystem: 'tolaria', trainingRunId: 'run-x',
          events: [create(TelemetryEventSchema, { description: 'step', level: 1 })],
        })));
      }
      store.close();
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], {
      cwd: path.resolve(import.meta.dirname, '../..'),
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const view = reader();
    let reads = 0;
    let last = 0;
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      const n = view.counts().telemetryEvents;
      expect(n).toBeGreaterThanOrEqual(last);
      expect(n % 50).toBe(0); // a batch is seen whole or not at all
      last = n;
      view.queryTelemetry({ trainingRunId: 'run-x', limit: 10 });
      reads += 1;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(await exited, stderr).toBe(0);
    expect(view.counts().telemetryEvents).toBe(10_000);
    expect(reads).toBeGreaterThan(1);
  });
});
