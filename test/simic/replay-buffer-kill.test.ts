/**
 * Acceptance (issue 15): SIGKILL of Simic during ingestion loses no acknowledged report.
 * A child process ingests field reports from the test run's Redis into its replay buffer
 * while the test publishes them; it is SIGKILLed mid-ingestion twice, then restarted until
 * every report is in. After each kill, every report the bus holds as acknowledged by group
 * `simic` (delivered and no longer pending) is in the buffer on disk; at the end all N are
 * there, each once (the log holds N records: redeliveries were deduplicated, not written).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTelemetrySink } from '../../src/core/index.js';
import { RedisStreamStore, StreamBus } from '../../src/oona/index.js';
import { compareEntryIds } from '../../src/oona/stream-store.js';
import { ReplayBuffer, SIMIC_CONSUMER_GROUP } from '../../src/simic/index.js';
import { TEST_TIMINGS, testKeyRing } from '../oona/fixtures/bus-options.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';
import { simicReport } from './fixtures/reports.js';

const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/ingest-child.ts');
const N = 300;
const RUN = 'run-kill';

interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  /** Report ids the child wrote as durably ingested (added or duplicate). */
  readonly ingested: string[];
  ready: boolean;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(url: string, prefix: string, dir: string, consumer: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, prefix, dir, consumer], {
    cwd: path.resolve(import.meta.dirname, '../..'),
  });
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const child: Child = {
    process: proc,
    ingested: [],
    ready: false,
    stderr: () => stderr,
    exited: new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stderr }))),
  };
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const [word, id] = line.split(' ');
    if (word === 'ready') child.ready = true;
    else if (word === 'ingested' && id !== undefined) child.ingested.push(id);
  });
  return child;
}

/** Polls `condition` (no sleeps for async work) until it holds, failing at the deadline. */
async function until(what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 30_000, child?: Child): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}${child === undefined ? '' : ` (ingested ${child.ingested.length}, stderr: ${child.stderr()})`}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let redis: Redis;
let prefix: string;
let dir: string;
let bus: StreamBus;
let store: RedisStreamStore;
const children: Child[] = [];

beforeAll(async () => {
  redis = new Redis(testRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  prefix = `esper-simic-kill:${randomUUID()}:`;
  dir = await mkdtemp(path.join(tmpdir(), 'esper-simic-kill-'));
  store = new RedisStreamStore({ url: testRedisUrl() });
  bus = new StreamBus({ store, streamPrefix: prefix, keyRing: testKeyRing(), telemetry: new MemoryTelemetrySink(), ...TEST_TIMINGS });
});

afterAll(async () => {
  for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  await bus.close();
  await store.close();
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
});

/** Entry ids of the field-report stream acknowledged by group `simic`: delivered, not pending. */
async function acknowledgedEntries(stream: string): Promise<Set<string>> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  const fields = groups.map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [String(g[2 * i]), g[2 * i + 1]])));
  const group = fields.find((g) => g.name === SIMIC_CONSUMER_GROUP);
  if (group === undefined) return new Set();
  const lastDelivered = String(group['last-delivered-id']);
  const pending = (await redis.xpending(stream, SIMIC_CONSUMER_GROUP, '-', '+', 100_000)) as [string, ...unknown[]][];
  const pendingIds = new Set(pending.map((p) => p[0]));
  const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
  return new Set(entries.map(([id]) => id).filter((id) => compareEntryIds(id, lastDelivered) <= 0 && !pendingIds.has(id)));
}

/** Report ids in the buffer on disk (opened after the child is dead), and its log's record count. */
async function bufferOnDisk(): Promise<{ ids: string[]; records: number }> {
  const buffer = await ReplayBuffer.open(dir);
  try {
    return { ids: buffer.reports().map((r) => r.reportId), records: buffer.recovery.records };
  } finally {
    await buffer.close();
  }
}

describe.sequential('replay buffer under SIGKILL', { timeout: 120_000 }, () => {
  it('SIGKILL of the ingesting process loses no acknowledged report, and restarts ingest every report exactly once', async () => {
    const url = testRedisUrl();
    const stream = bus.options.streams.fieldReports;
    const reportOfEntry = new Map<string, string>();
    const first = start(url, prefix, dir, `simic-${children.length}`);
    children.push(first);
    await until('the first child to subscribe', () => first.ready);
    const publishAll = (async () => {
      for (let i = 0; i < N; i += 1) {
        const receipt = await bus.publish(simicReport(i, RUN));
        if (receipt.status !== 'published') throw new Error(`report ${i} was ${receipt.status}`);
        expect(receipt.stream).toBe('fieldReports');
        reportOfEntry.set(receipt.entryId, simicReport(i, RUN).reportId);
      }
    })();
    let killsMidIngestion = 0;
    const acknowledgedAtKills: number[] = [];
    for (const [round, killAfter] of [40, 60].entries()) {
      const child = round === 0 ? first : start(url, prefix, dir, `simic-${round}`);
      if (round > 0) children.push(child);
      await until(
        `child ${children.indexOf(child)} to ingest ${killAfter} reports`,
        () => child.ingested.length >= killAfter,
        30_000,
        child,
      );
      child.process.kill('SIGKILL');
      const exit = await child.exited;
      expect(exit.signal).toBe('SIGKILL');
      const acked = [...(await acknowledgedEntries(stream))].map((entryId) => reportOfEntry.get(entryId));
      // Mid-ingestion: reports published or still to come were not yet acknowledged.
      if (acked.length < N) killsMidIngestion += 1;
      const onDisk = await bufferOnDisk();
      const held = new Set(onDisk.ids);
      expect(acked.length).toBeGreaterThan(0);
      for (const id of acked) expect(id !== undefined && held.has(id), `acknowledged report ${id} is in the buffer`).toBe(true);
      for (const id of child.ingested) expect(held.has(id), `ingested report ${id} is in the buffer`).toBe(true);
      expect(new Set(onDisk.ids).size).toBe(onDisk.ids.length);
      acknowledgedAtKills.push(acked.length);
    }
    expect(killsMidIngestion).toBe(2);
    await publishAll;

    // Restart until every report is in and nothing is pending.
    const last = start(url, prefix, dir, `simic-${children.length}`);
    children.push(last);
    await until('every report to be acknowledged', async () => (await acknowledgedEntries(stream)).size === N);
    last.process.stdin.write('stop\n');
    const exit = await last.exited;
    expect(exit.code, exit.stderr).toBe(0);

    const final = await bufferOnDisk();
    expect(final.ids).toHaveLength(N);
    expect(new Set(final.ids)).toEqual(new Set(Array.from({ length: N }, (_, i) => simicReport(i, RUN).reportId)));
    // Each report was written once: redelivered copies were deduplicated, not appended.
    expect(final.records).toBe(N);
    process.stdout.write(`simic kill test: acknowledged at kills ${acknowledgedAtKills.join(', ')} of ${N}\n`);
  });
});
