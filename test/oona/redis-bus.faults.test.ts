/**
 * Fault tests of `StreamBus` on `RedisStreamStore`, against a `redis-server` this file
 * starts on a free port in a temp dir (append-only file, fsync always, no RDB) and kills in
 * `afterAll`:
 *
 * - a consumer process SIGKILLed mid-handling: its pending entries are reclaimed and handled
 *   by another consumer of the group; none lost, none handled again after its ack;
 * - Redis SIGKILLed and restarted on the same port and dir: publishes made through the
 *   outage either resolve `published` (and are then stored) or fail with a typed error;
 *   consumers recover; every `published` message is handled;
 * - a malformed entry and a tampered signature land in dead-letter with their reasons while
 *   the consumer keeps going.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { MemoryTelemetrySink } from '../../src/core/telemetry.js';
import { BusMessageType, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { HmacSigner } from '../../src/security/index.js';
import type { Delivery, PublishReceipt } from '../../src/oona/bus.js';
import { EntryField } from '../../src/oona/envelope.js';
import { DeadLetterReason, OonaEvent } from '../../src/oona/names.js';
import type { StreamBusOptions } from '../../src/oona/options.js';
import { RedisStreamStore } from '../../src/oona/redis-stream-store.js';
import type { EntryFields } from '../../src/oona/stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { deadLetters, eventsOf, pendingOf, readAll } from './bus.conformance.js';
import { TEST_TIMINGS, testKeyRing } from './fixtures/bus-options.js';
import { fieldReport } from './fixtures/messages.js';
import { PrivateRedisServer } from '../support/redis-server.js';
import { holdsFor, waitFor } from './fixtures/waits.js';

const RUN = 'run-faults';
/** How long Redis stays down in the restart test, in ms. */
const OUTAGE_MS = 1_500;
/** Deadline of the publishes meant to give up during the outage, in ms. */
const SHORT_DEADLINE_MS = 300;
const GROUP = 'faults';
const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/blocking-consumer.ts');

let server: PrivateRedisServer;
let closers: (() => Promise<void>)[] = [];
let children: ChildProcess[] = [];

beforeAll(async () => {
  server = await PrivateRedisServer.start();
}, 20_000);

afterAll(async () => {
  await server?.dispose();
});

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children = [];
  for (const close of closers.reverse()) await close().catch(() => undefined);
  closers = [];
});

/** A bus on its own store (its own connections), as a separate process would have. */
function openBus(
  streamPrefix: string,
  overrides: Partial<StreamBusOptions> = {},
): { bus: StreamBus; telemetry: MemoryTelemetrySink; store: RedisStreamStore } {
  const telemetry = new MemoryTelemetrySink();
  const store = new RedisStreamStore({ url: server.url });
  const bus = new StreamBus({ store, streamPrefix, keyRing: testKeyRing(), telemetry, ...TEST_TIMINGS, ...overrides });
  closers.push(async () => {
    await bus.close();
    await store.close();
  });
  return { bus, telemetry, store };
}

/** Spawns the blocking consumer; resolves with its stdout lines as they come. */
function spawnBlockingConsumer(streamPrefix: string, consumer: string): { child: ChildProcess; lines: string[]; exited: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, server.url, streamPrefix, GROUP, consumer], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => lines.push(line));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    if (child.signalCode !== 'SIGKILL' && stderr.length > 0) process.stderr.write(`blocking consumer: ${stderr}\n`);
  });
  return { child, lines, exited };
}

describe.sequential('StreamBus on a private redis-server (faults)', { timeout: 40_000 }, () => {
  it('reclaims and handles the entries of a consumer killed mid-handling: none lost, none handled again after its ack', async () => {
    const prefix = `esper-fault:${randomUUID()}:`;
    const { bus, store } = openBus(prefix);
    const streams = bus.options.streams;
    await store.ensureGroup(streams.emergency, GROUP, '$');
    await store.ensureGroup(streams.fieldReports, GROUP, '$');
    const before: PublishReceipt[] = [];
    for (let i = 0; i < 5; i += 1) before.push(await bus.publish(fieldReport(RUN)));

    const doomed = spawnBlockingConsumer(prefix, 'doomed');
    await waitFor(() => doomed.lines.some((l) => l.startsWith('handling ')), 'the child to start handling', 20_000);
    // The child read the whole batch and blocks on its first entry: all five are pending.
    expect(await pendingOf(store, streams.fieldReports, GROUP)).toBe(5);
    const startedInChild = doomed.lines.filter((l) => l.startsWith('handling ')).map((l) => l.slice('handling '.length));
    expect(startedInChild).toEqual([before[0]?.messageId]);
    doomed.child.kill('SIGKILL');
    await doomed.exited;

    const handled = new Map<string, number>();
    const ackedAt = new Map<string, number>();
    const afterAck: string[] = [];
    await bus.subscribe({
      group: GROUP,
      consumer: 'rescuer',
      types: [BusMessageType.FIELD_REPORT],
      handler: (d: Delivery) => {
        if (ackedAt.has(d.messageId)) afterAck.push(d.messageId);
        handled.set(d.messageId, (handled.get(d.messageId) ?? 0) + 1);
      },
    }).ready;
    const after: PublishReceipt[] = [];
    for (let i = 0; i < 3; i += 1) after.push(await bus.publish(fieldReport(RUN)));
    const all = [...before, ...after].map((r) => r.messageId);

    await waitFor(() => all.every((id) => handled.has(id)), 'every message to be handled by the rescuer', 15_000);
    await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'every ack');
    for (const id of all) ackedAt.set(id, Date.now());
    expect(bus.metrics().reclaimedTotal).toBeGreaterThanOrEqual(5);
    await holdsFor(TEST_TIMINGS.reclaimIdleMs + 3 * TEST_TIMINGS.reclaimIntervalMs, () => {
      expect(afterAck).toEqual([]);
      expect([...handled.values()].every((n) => n === 1)).toBe(true);
    });
    expect([...handled.keys()].sort()).toEqual([...all].sort());
  });

  it('rides out a Redis SIGKILL and restart: every publish that resolved published is handled, the rest fail typed', async () => {
    const prefix = `esper-fault:${randomUUID()}:`;
    const publisher = openBus(prefix, { publishDeadlineMs: 5_000, breakerOpenMs: 100 });
    const consumer = openBus(prefix, { breakerOpenMs: 100 });
    const handled = new Map<string, number>();
    await consumer.bus.subscribe({
      group: GROUP,
      consumer: 'survivor',
      types: [BusMessageType.FIELD_REPORT],
      handler: (d) => {
        handled.set(d.messageId, (handled.get(d.messageId) ?? 0) + 1);
      },
    }).ready;

    type Phase = 'up' | 'down' | 'restarted';
    type Outcome = { phase: Phase; deadlineMs: number; receipt?: PublishReceipt; error?: unknown; tookMs: number };
    const phases: Phase[] = [];
    const outcomes: Promise<Outcome>[] = [];
    let phase: Phase = 'up';
    const count = (p: Phase): number => phases.filter((x) => x === p).length;
    // A paced stream of publishes, each awaited on its own, so several are in flight
    // whenever Redis goes away.
    // Every fourth publish has a deadline shorter than the outage, so both outcomes occur.
    const pacer = setInterval(() => {
      const at = phase;
      const deadlineMs = phases.length % 4 === 3 ? SHORT_DEADLINE_MS : 8_000;
      phases.push(at);
      const startedAt = performance.now();
      outcomes.push(
        publisher.bus.publish(fieldReport(RUN), { deadlineMs }).then(
          (receipt): Outcome => ({ phase: at, deadlineMs, receipt, tookMs: performance.now() - startedAt }),
          (error: unknown): Outcome => ({ phase: at, deadlineMs, error, tookMs: performance.now() - startedAt }),
        ),
      );
    }, 15);
    try {
      await waitFor(() => handled.size >= 20, '20 messages handled before the outage', 15_000);
      await server.kill();
      phase = 'down';
      const downAt = performance.now();
      // Longer than the store's reconnect window, so publishes see it fail and retry.
      await waitFor(() => performance.now() - downAt >= OUTAGE_MS, 'the outage to last', 15_000);
      await server.restart();
      phase = 'restarted';
      await waitFor(() => count('restarted') >= 25, 'publishes after the restart', 15_000);
    } finally {
      clearInterval(pacer);
    }
    const settled = await Promise.all(outcomes);

    const published = settled.filter((o) => o.receipt?.status === 'published');
    const failed = settled.filter((o) => o.error !== undefined);
    for (const o of failed) {
      expect(isEsperError(o.error, ErrorCode.OONA_STORE_UNAVAILABLE) || isEsperError(o.error, ErrorCode.OONA_PUBLISH_TIMEOUT)).toBe(true);
    }
    expect(settled.every((o) => o.error !== undefined || o.receipt?.status === 'published')).toBe(true);
    // Publishes started during the outage waited it out when their deadline outlasted it,
    // and failed typed when it did not.
    expect(published.filter((o) => o.phase === 'down').length).toBeGreaterThan(0);
    expect(failed.filter((o) => o.phase === 'down' && o.deadlineMs === SHORT_DEADLINE_MS).length).toBeGreaterThan(0);
    expect(failed.every((o) => o.deadlineMs === SHORT_DEADLINE_MS)).toBe(true);
    expect(published.filter((o) => o.phase === 'restarted').length).toBeGreaterThan(0);

    const ids = published.map((o) => (o.receipt as PublishReceipt).messageId);
    await waitFor(() => ids.every((id) => handled.has(id)), `all ${ids.length} published messages to be handled`, 30_000);
    const lost = ids.filter((id) => !handled.has(id));
    expect(lost).toEqual([]);
    const streams = consumer.bus.options.streams;
    await waitFor(async () => (await pendingOf(consumer.store, streams.fieldReports, GROUP)) === 0, 'every ack after the restart', 15_000);
  });

  it('gives up a publish at its deadline with OONA_STORE_UNAVAILABLE while Redis is down', async () => {
    const prefix = `esper-fault:${randomUUID()}:`;
    const { bus } = openBus(prefix, { breakerOpenMs: 100 });
    expect((await bus.publish(fieldReport(RUN))).status).toBe('published');
    await server.kill();
    try {
      const deadlineMs = 300;
      const started = performance.now();
      const error = await bus.publish(fieldReport(RUN), { deadlineMs }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const tookMs = performance.now() - started;
      expect(isEsperError(error, ErrorCode.OONA_STORE_UNAVAILABLE)).toBe(true);
      // The deadline bounds the whole publish, including a store call still queued for a
      // reconnect; the slack covers timer and scheduling delays on a loaded machine.
      expect(tookMs).toBeLessThan(deadlineMs + 250);
      expect(bus.metrics().publishFailures).toBe(1);
    } finally {
      await server.restart();
    }
  });

  it('dead-letters a malformed entry and a tampered signature with their reasons while the consumer keeps going', async () => {
    const prefix = `esper-fault:${randomUUID()}:`;
    const { bus, store, telemetry } = openBus(prefix);
    const streams = bus.options.streams;
    const seen: string[] = [];
    await bus.subscribe({
      group: GROUP,
      consumer: 'steady',
      types: [BusMessageType.FIELD_REPORT],
      handler: (d) => void seen.push(d.messageId),
    }).ready;
    const first = await bus.publish(fieldReport(RUN), { priority: MessagePriority.NORMAL });
    await waitFor(() => seen.length === 1, 'the first message');
    const entry = (await readAll(store, streams.fieldReports)).find((e) => first.status === 'published' && e.id === first.entryId);
    const fields = entry?.fields as EntryFields;
    const signature = Uint8Array.from(fields[EntryField.SIGNATURE] as Uint8Array);
    signature[0] = (signature[0] as number) ^ 0xff;
    // Correctly signed bytes that are no BusEnvelope: the signature passes, decoding fails.
    const garbage = new Uint8Array([0x0a, 0xff, 0xff, 0x03]);
    const malformedId = await store.add(streams.fieldReports, {
      [EntryField.ENVELOPE]: garbage,
      [EntryField.SIGNATURE]: new HmacSigner(testKeyRing()).mac('test', garbage),
      [EntryField.KEY_ID]: new TextEncoder().encode('test'),
    });
    const tamperedId = await store.add(streams.fieldReports, { ...fields, [EntryField.SIGNATURE]: signature });
    const last = await bus.publish(fieldReport(RUN));
    await waitFor(() => seen.includes(last.messageId), 'the message after the bad entries');
    expect(seen).toEqual([first.messageId, last.messageId]);

    const letters = await deadLetters(store, streams.deadLetter);
    expect(letters.map((l) => [l.id, l.reason])).toEqual([
      [malformedId, DeadLetterReason.MALFORMED],
      [tamperedId, DeadLetterReason.BAD_SIGNATURE],
    ]);
    const critical = eventsOf(telemetry, OonaEvent.SIGNATURE_INVALID);
    expect(critical).toHaveLength(1);
    expect(eventsOf(telemetry, OonaEvent.MESSAGE_MALFORMED)).toHaveLength(1);
    expect(critical.every(({ event }) => event.level === TelemetryLevel.CRITICAL)).toBe(true);
  });
});
