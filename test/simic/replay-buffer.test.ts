/**
 * ReplayBuffer: capacity, TTL, dedupe, sampling, durability across restarts, compaction,
 * torn-tail recovery, and a fast-check model test (any sequence of adds, restarts and
 * clock advances gives the contents of an in-memory model).
 */
import { appendFile, mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, ErrorCode, FakeClock, isEsperError, loadSettings } from '../../src/core/index.js';
import { REPLAY_LOG_FILE, ReplayBuffer, replayBufferFromSettings, type ReplayBufferOptions } from '../../src/simic/index.js';
import { simicReport } from './fixtures/reports.js';

const HOUR_MS = 3_600_000;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esper-simic-replay-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openBuffer(dir: string, options: ReplayBufferOptions): Promise<ReplayBuffer> {
  const buffer = await ReplayBuffer.open(dir, options);
  cleanups.push(() => buffer.close());
  return buffer;
}

const ids = (buffer: ReplayBuffer): string[] => buffer.reports().map((r) => r.reportId);

describe('ReplayBuffer', () => {
  it('takes its directory, capacity (1024) and TTL (24 h) from the simic settings section', () => {
    const settings = loadSettings({ env: { ESPER_SIMIC_REPLAY_CAPACITY: '16' }, overrides: { storage: { varDir: '/srv/esper' } } });
    const { dir, options } = replayBufferFromSettings(settings);
    expect(dir).toBe(path.join('/srv/esper', 'simic/replay'));
    expect(options).toEqual({ capacity: 16, ttlMs: 24 * HOUR_MS });
    expect(loadSettings({ env: {} }).simic.replayCapacity).toBe(1024);
  });

  it('holds at most capacity reports, evicting the oldest first, and keeps that after a restart', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    const buffer = await openBuffer(dir, { capacity: 2, clock });
    for (const i of [0, 1, 2, 3]) expect(await buffer.add(simicReport(i))).toBe('added');
    expect(ids(buffer)).toEqual(['run-simic:fr-2', 'run-simic:fr-3']);
    expect(buffer.stats()).toMatchObject({ size: 2, added: 4, evicted: 2 });
    await buffer.close();
    const reopened = await openBuffer(dir, { capacity: 2, clock });
    expect(ids(reopened)).toEqual(['run-simic:fr-2', 'run-simic:fr-3']);
    expect(reopened.reports()[0]).toEqual(simicReport(2));
    expect(reopened.recovery).toMatchObject({ records: 4, entries: 2, dropped: 2 });
  });

  it('drops a report once its receipt time is older than the TTL, before and after a restart', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    const buffer = await openBuffer(dir, { ttlMs: HOUR_MS, clock });
    expect(await buffer.add(simicReport(0), { receivedAtMs: clock.wallMs() - 2 * HOUR_MS })).toBe('expired');
    expect(await buffer.add(simicReport(1))).toBe('added');
    clock.advance(HOUR_MS / 2);
    expect(await buffer.add(simicReport(2))).toBe('added');
    clock.advance(HOUR_MS / 2);
    expect(ids(buffer)).toEqual(['run-simic:fr-2']);
    await buffer.close();
    const reopened = await openBuffer(dir, { ttlMs: HOUR_MS, clock });
    expect(ids(reopened)).toEqual(['run-simic:fr-2']);
    clock.advance(HOUR_MS);
    expect(reopened.size).toBe(0);
  });

  it('deduplicates by report id, including concurrent adds and adds after a restart', async () => {
    const dir = await tempDir();
    const buffer = await openBuffer(dir, { clock: new FakeClock() });
    const results = await Promise.all([buffer.add(simicReport(0)), buffer.add(simicReport(0)), buffer.add(simicReport(1))]);
    expect(results).toEqual(['added', 'duplicate', 'added']);
    expect(await buffer.add(simicReport(1))).toBe('duplicate');
    await buffer.close();
    const reopened = await openBuffer(dir, { clock: new FakeClock() });
    expect(await reopened.add(simicReport(0))).toBe('duplicate');
    expect(ids(reopened)).toEqual(['run-simic:fr-0', 'run-simic:fr-1']);
    expect(reopened.stats().logRecords).toBe(2);
  });

  it('samples uniformly without replacement, and returns everything oldest first when n ≥ size', async () => {
    const buffer = await openBuffer(await tempDir(), { clock: new FakeClock() });
    for (let i = 0; i < 10; i += 1) await buffer.add(simicReport(i));
    expect(buffer.sample(20).map((r) => r.reportId)).toEqual(ids(buffer));
    let seed = 1;
    const rng = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const drawn = buffer.sample(4, rng).map((r) => r.reportId);
    expect(drawn).toHaveLength(4);
    expect(new Set(drawn).size).toBe(4);
    expect(drawn.every((id) => ids(buffer).includes(id))).toBe(true);
    expect(buffer.sample(0)).toEqual([]);
  });

  it('compacts its log past the bound and the compacted log reopens to the same contents', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    const buffer = await openBuffer(dir, { capacity: 4, compactAfterRecords: 8, clock });
    for (let i = 0; i < 30; i += 1) await buffer.add(simicReport(i));
    const stats = buffer.stats();
    expect(stats.compactions).toBeGreaterThan(0);
    expect(stats.logRecords).toBeLessThanOrEqual(8);
    const before = buffer.entries();
    await buffer.close();
    const reopened = await openBuffer(dir, { capacity: 4, compactAfterRecords: 8, clock });
    expect(reopened.entries()).toEqual(before);
    expect(ids(reopened)).toEqual([26, 27, 28, 29].map((i) => `run-simic:fr-${i}`));
  });

  it('recovers from a torn tail: the partly written last record is cut, the others kept', async () => {
    const dir = await tempDir();
    const buffer = await openBuffer(dir, { clock: new FakeClock() });
    for (const i of [0, 1, 2]) await buffer.add(simicReport(i));
    await buffer.close();
    const file = path.join(dir, REPLAY_LOG_FILE);
    const { size } = await stat(file);
    await truncate(file, size - 7);
    const reopened = await openBuffer(dir, { clock: new FakeClock() });
    expect(ids(reopened)).toEqual(['run-simic:fr-0', 'run-simic:fr-1']);
    expect(reopened.recovery.log.truncatedTailBytes).toBeGreaterThan(0);
    expect(await reopened.add(simicReport(2))).toBe('added');
  });

  it('refuses a record that is not a replay record, naming the file and offset', async () => {
    const dir = await tempDir();
    const file = path.join(dir, REPLAY_LOG_FILE);
    await writeFile(file, encodeFrame(new Uint8Array([9, 9, 9])));
    await appendFile(file, new Uint8Array(0));
    const error = await ReplayBuffer.open(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.SIMIC_REPLAY_INVALID)).toBe(true);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toContain('offset 0');
  });
});

type Op =
  | { readonly kind: 'add'; readonly id: number; readonly ageMs: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'restart' }
  | { readonly kind: 'tear' };

const CAPACITY = 5;
const TTL_MS = 1_000;

/** The in-memory model: an ordered list of { id, receivedAtMs }. */
class Model {
  entries: { id: string; receivedAtMs: number }[] = [];
  prune(nowMs: number): void {
    this.entries = this.entries.filter((e) => e.receivedAtMs > nowMs - TTL_MS);
  }
  add(id: string, receivedAtMs: number, nowMs: number): 'added' | 'duplicate' | 'expired' {
    this.prune(nowMs);
    if (this.entries.some((e) => e.id === id)) return 'duplicate';
    if (receivedAtMs <= nowMs - TTL_MS) return 'expired';
    this.entries.push({ id, receivedAtMs });
    while (this.entries.length > CAPACITY) this.entries.shift();
    return 'added';
  }
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      id: fc.integer({ min: 0, max: 11 }),
      ageMs: fc.integer({ min: 0, max: 1_500 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 700 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tear' as const }) },
);

describe('ReplayBuffer against an in-memory model', () => {
  it('any sequence of adds, restarts, clock advances and torn tails gives the model contents', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
        const dir = await mkdtemp(path.join(tmpdir(), 'esper-simic-model-'));
        const clock = new FakeClock();
        const options = { capacity: CAPACITY, ttlMs: TTL_MS, clock, compactAfterRecords: 8, fsync: 'per-record' as const };
        let buffer = await ReplayBuffer.open(dir, options);
        const model = new Model();
        try {
          for (const op of ops) {
            if (op.kind === 'add') {
              const nowMs = clock.wallMs();
              const expected = model.add(`r-${op.id}`, nowMs - op.ageMs, nowMs);
              const report = simicReport(op.id);
              report.reportId = `r-${op.id}`;
              expect(await buffer.add(report, { receivedAtMs: nowMs - op.ageMs })).toBe(expected);
            } else if (op.kind === 'advance') {
              clock.advance(op.ms);
            } else {
              await buffer.close();
              if (op.kind === 'tear') {
                // A crash mid-append leaves a partial frame after the last durable record.
                await appendFile(path.join(dir, REPLAY_LOG_FILE), encodeFrame(new Uint8Array(40)).subarray(0, 17));
              }
              buffer = await ReplayBuffer.open(dir, options);
            }
            model.prune(clock.wallMs());
            expect(buffer.entries().map((e) => ({ id: e.report.reportId, receivedAtMs: e.receivedAtMs }))).toEqual(model.entries);
          }
        } finally {
          await buffer.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  }, 60_000);
});
