/**
 * SimicIngestor: field reports from the bus (MemoryStreamStore) and from a run's WAL land
 * in the replay buffer once each, and the WAL is read without being modified.
 */
import { mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { ReplayBuffer, SimicIngestor } from '../../src/simic/index.js';
import { FieldReportStore } from '../../src/tamiyo/index.js';
import { TEST_TIMINGS, testKeyRing } from '../oona/fixtures/bus-options.js';
import { simicReport } from './fixtures/reports.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esper-simic-ingest-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openBuffer(dir: string): Promise<ReplayBuffer> {
  const buffer = await ReplayBuffer.open(dir, { clock: new FakeClock({ wallMs: Date.UTC(2026, 0, 1, 12) }) });
  cleanups.push(() => buffer.close());
  return buffer;
}

/** Polls `condition` until it holds or `deadlineMs` passes. */
async function until(condition: () => boolean, deadlineMs = 5_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('SimicIngestor', () => {
  it('adds every field report from the bus once, acknowledging a redelivered copy as a duplicate', async () => {
    const store = new MemoryStreamStore();
    const bus = new StreamBus({ ...TEST_TIMINGS, store, keyRing: testKeyRing(), telemetry: new MemoryTelemetrySink() });
    cleanups.push(async () => {
      await bus.close();
      await store.close();
    });
    const buffer = await ReplayBuffer.open(await tempDir());
    cleanups.push(() => buffer.close());
    const seen: string[] = [];
    const ingestor = new SimicIngestor({ buffer, bus, consumer: 'c1', onIngested: (r, result) => seen.push(`${r.reportId}:${result}`) });
    cleanups.push(() => ingestor.close());
    await ingestor.start();
    expect(ingestor.state).toBe('running');
    for (const i of [0, 1, 2]) await bus.publish(simicReport(i));
    await bus.publish(simicReport(1)); // a second publish of the same report (new message id)
    await until(() => seen.length === 4);
    expect(buffer.reports().map((r) => r.reportId)).toEqual([0, 1, 2].map((i) => `run-simic:fr-${i}`));
    expect(buffer.reports()[2]).toEqual(simicReport(2));
    expect(ingestor.stats()).toEqual({ added: 3, duplicates: 1, expired: 0 });
    await ingestor.close();
    expect(ingestor.state).toBe('stopped');
  });

  it("imports a run's field-report WAL read-only, leaving its torn tail in place, and skips reports already held", async () => {
    const dir = await tempDir();
    const walPath = path.join(dir, 'field-reports.wal');
    const wal = await FieldReportStore.open(walPath);
    for (const i of [0, 1, 2]) await wal.append(simicReport(i));
    await wal.close();
    const { size } = await stat(walPath);
    await truncate(walPath, size - 5);
    const buffer = await openBuffer(path.join(dir, 'replay'));
    const ingestor = new SimicIngestor({ buffer, bus: { subscribe: () => expect.fail('no bus here') }, consumer: 'wal' });
    const first = await ingestor.ingestWal(walPath);
    expect(first).toMatchObject({ records: 2, added: 2, duplicates: 0, expired: 0 });
    expect(first.tornTailBytes).toBeGreaterThan(0);
    expect((await stat(walPath)).size).toBe(size - 5);
    expect(await ingestor.ingestWal(walPath)).toMatchObject({ records: 2, added: 0, duplicates: 2 });
    expect(buffer.reports()).toEqual([simicReport(0), simicReport(1)]);
    // Receipt time of a WAL report is its issued_at.
    expect(buffer.entries()[0]!.receivedAtMs).toBe(Date.UTC(2026, 0, 1));
  });

  it('refuses a WAL record that is not a FieldReport, naming the file and offset', async () => {
    const dir = await tempDir();
    const walPath = path.join(dir, 'bad.wal');
    await writeFile(walPath, encodeFrame(new Uint8Array([0xff, 0xff, 0xff])));
    const ingestor = new SimicIngestor({
      buffer: await openBuffer(path.join(dir, 'replay')),
      bus: { subscribe: () => expect.fail() },
      consumer: 'wal',
    });
    const error = await ingestor.ingestWal(walPath).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.SIMIC_REPLAY_INVALID)).toBe(true);
    expect((error as Error).message).toContain(walPath);
  });
});
