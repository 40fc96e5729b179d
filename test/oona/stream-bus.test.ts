import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, EsperError, FakeClock, isEsperError, MAX_TIMER_MS } from '../../src/core/index.js';
import {
  BusMessageType,
  CommandAckSchema,
  MessagePriority,
  TelemetryLevel,
  type KernelArtifactReady,
  type KernelPrefetchRequest,
} from '../../src/leyline/index.js';
import { HmacSigner } from '../../src/security/index.js';
import type { Delivery, Subscription } from '../../src/oona/bus.js';
import { buildEnvelope, EntryField, encodeBusMessage, openEntry, readDeadLetter, sealEnvelope } from '../../src/oona/envelope.js';
import { MemoryStreamStore } from '../../src/oona/memory-stream-store.js';
import { OonaMetric } from '../../src/oona/names.js';
import type { EntryFields, StreamStore } from '../../src/oona/stream-store.js';

import {
  RING,
  ROGUE,
  setup,
  waitFor,
  readAll,
  pendingOf,
  collect,
  command,
  telemetry,
  fieldReport,
  kernelRequest,
  kernelReady,
  commandId,
  rejectionOf,
  closeBuses,
} from './fixtures/stream-bus-harness.js';

afterEach(closeBuses);

describe('StreamBus store outages', () => {
  it('retries a publish through a short outage', async () => {
    const store = new FlakyStore();
    store.failing = new Set(['add']);
    store.failuresLeft = 3;
    const { bus } = setup({ store });
    expect(await bus.publish(command())).toMatchObject({ status: 'published' });
    expect(await store.inner.length(bus.options.streams.normal)).toBe(1);
  });

  it('fails a publish with OONA_STORE_UNAVAILABLE after its deadline and opens the publish breaker', async () => {
    const store = new FlakyStore();
    store.failing = new Set(['add', 'groups']);
    const { bus, sink } = setup({ store, breakerFailureThreshold: 2, breakerOpenMs: 60_000 });
    const error = await rejectionOf(bus.publish(command(), { deadlineMs: 50 }));
    expect(isEsperError(error, ErrorCode.OONA_STORE_UNAVAILABLE)).toBe(true);
    expect(bus.metrics()).toMatchObject({ publishFailures: 1, publishTimeouts: 0, publishBreaker: 'open' });
    expect(sink.events('breaker_open')[0]?.attributes['breaker']).toBe('oona.publish');
    // While the breaker is open nothing reaches the store, and publishes still wait it out.
    const failuresBefore = store.failuresLeft;
    const again = await rejectionOf(bus.publish(command(), { deadlineMs: 20 }));
    expect(isEsperError(again, ErrorCode.OONA_STORE_UNAVAILABLE)).toBe(true);
    expect(store.failuresLeft).toBe(failuresBefore);
  });

  it('keeps a consumer going through a read outage, reporting it once', async () => {
    const store = new FlakyStore();
    const { bus, sink } = setup({ store });
    const { got, sub } = collect(bus, { types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    store.failing = new Set(['readGroup']);
    store.failuresLeft = 4;
    await bus.publish(command('after-outage'));
    await waitFor(() => got.length === 1, 'the message after the outage');
    expect(commandId(got[0]!)).toBe('after-outage');
    expect(sink.events('store_unavailable')).toHaveLength(1);
  });
});

describe('StreamBus retries and dead-letter', () => {
  it('retries a failing handler with the attempt count, then dead-letters it with the reason', async () => {
    const { bus, store, sink, names } = setup({ maxAttempts: 3 });
    const attempts: Delivery[] = [];
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) => {
        attempts.push(delivery);
        throw new Error(`boom on attempt ${delivery.attempt}`);
      },
    });
    await sub.ready;
    const receipt = await bus.publish(command('doomed'));
    await waitFor(() => bus.metrics().deadLetterTotal === 1, 'the dead-letter');
    expect(attempts.map((d) => d.attempt)).toEqual([1, 2, 3]);
    expect(new Set(attempts.map((d) => d.messageId))).toEqual(new Set([receipt.messageId]));
    expect(bus.metrics()).toMatchObject({
      retriesTotal: 2,
      handlerFailures: 3,
      handledTotal: 0,
      deadLetterByReason: { handler_failed: 1 },
    });
    const [dead] = await readAll(store, names.deadLetter);
    expect(readDeadLetter(dead!.fields)).toEqual({
      reason: 'handler_failed',
      detail: 'boom on attempt 3',
      from: names.normal,
      id: attempts[2]!.entryId,
      group: 'g',
    });
    const opened = openEntry(new HmacSigner(RING), dead!.fields);
    expect(opened.ok && opened.envelope.attempt).toBe(3);
    const [event] = sink.events('dead_letter');
    expect(event?.level).toBe(TelemetryLevel.ERROR);
    expect(event?.attributes).toMatchObject({ reason: 'handler_failed', group: 'g', attempt: '3' });
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'nothing left pending');
  });

  it('acknowledges a message whose retry succeeds', async () => {
    const { bus, store, names } = setup();
    const seen: number[] = [];
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) => {
        seen.push(delivery.attempt);
        if (delivery.attempt === 1) throw new Error('transient');
      },
    });
    await sub.ready;
    await bus.publish(command());
    await waitFor(() => bus.metrics().handledTotal === 1, 'the retried message handled');
    expect(seen).toEqual([1, 2]);
    expect(bus.metrics()).toMatchObject({ retriesTotal: 1, deadLetterTotal: 0 });
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'nothing left pending');
  });
});

describe('StreamBus entry verification', () => {
  const signer = new HmacSigner(RING);
  const rogue = new HmacSigner(ROGUE);
  const utf8 = new TextEncoder();

  function sealedCommand(id: string, by = signer, keyId = 'k1'): Record<string, Uint8Array> {
    const { type, payload } = encodeBusMessage(command(id));
    const envelope = buildEnvelope({
      type,
      payload,
      priority: MessagePriority.NORMAL,
      correlationId: '',
      trainingRunId: 'run-1',
      publishedAtMs: Date.now(),
      attempt: 1,
      messageId: randomUUID(),
    });
    return { ...sealEnvelope(by, keyId, envelope) };
  }

  const tampered = (): EntryFields => {
    const fields = sealedCommand('tampered');
    const signature = new Uint8Array(fields[EntryField.SIGNATURE]!);
    signature[0]! ^= 0x01;
    return { ...fields, [EntryField.SIGNATURE]: signature };
  };
  const unknownKey = (): EntryFields => sealedCommand('rogue', rogue, 'rogue');
  const unsigned = (): EntryFields => ({ [EntryField.ENVELOPE]: sealedCommand('unsigned')[EntryField.ENVELOPE]! });
  const garbage = (): EntryFields => {
    const bytes = Uint8Array.of(0xff, 0xff, 0xff, 0x01);
    return { [EntryField.ENVELOPE]: bytes, [EntryField.SIGNATURE]: signer.mac('k1', bytes), [EntryField.KEY_ID]: utf8.encode('k1') };
  };

  it.each([
    ['a tampered signature', tampered, 'bad_signature', 'signature_invalid', TelemetryLevel.CRITICAL],
    ['an unknown key', unknownKey, 'unknown_key', 'signature_invalid', TelemetryLevel.CRITICAL],
    ['no signature', unsigned, 'missing_signature', 'signature_invalid', TelemetryLevel.CRITICAL],
    ['a malformed envelope', garbage, 'malformed', 'message_malformed', TelemetryLevel.ERROR],
  ] as const)('dead-letters an entry with %s, reports it, and keeps consuming', async (_name, entry, reason, event, level) => {
    const { bus, store, sink, names } = setup();
    const { got, sub } = collect(bus, { types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    const bad = entry();
    const badId = await store.add(names.normal, bad);
    await bus.publish(command('good'));
    await waitFor(() => got.length === 1 && bus.metrics().deadLetterTotal === 1, 'the good message and the dead-letter');
    expect(got.map(commandId)).toEqual(['good']);
    const [dead] = await readAll(store, names.deadLetter);
    expect(readDeadLetter(dead!.fields)).toMatchObject({ reason, from: names.normal, id: badId, group: 'g' });
    for (const name of Object.values(EntryField)) expect(dead!.fields[name]).toEqual(bad[name]);
    expect(bus.metrics().deadLetterByReason).toEqual({ [reason]: 1 });
    const packets = sink.packets.filter((p) => p.events.some((e) => e.description === event));
    expect(packets).toHaveLength(1);
    expect(packets[0]!.events[0]!.level).toBe(level);
    if (level === TelemetryLevel.CRITICAL) expect(packets[0]!.priority).toBe(MessagePriority.CRITICAL);
    expect(packets[0]!.events[0]!.attributes).toMatchObject({ reason, entry_id: badId });
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'the bad entry acknowledged');
  });

  it('dead-letters a tampered entry inside a batch alone and hands the rest of the batch to the handler', async () => {
    const { bus, store, names } = setup({ readCount: 32 });
    for (let i = 0; i < 3; i += 1) await bus.publish(command(`before-${i}`));
    const badId = await store.add(names.normal, tampered());
    for (let i = 0; i < 3; i += 1) await bus.publish(command(`after-${i}`));
    const { got, sub } = collect(bus, { from: 'all', types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await waitFor(() => got.length === 6 && bus.metrics().deadLetterTotal === 1, 'the six good messages and the dead-letter');
    expect(got.map(commandId)).toEqual(['before-0', 'before-1', 'before-2', 'after-0', 'after-1', 'after-2']);
    const dead = await readAll(store, names.deadLetter);
    expect(dead.map((entry) => readDeadLetter(entry.fields))).toEqual([expect.objectContaining({ reason: 'bad_signature', id: badId })]);
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'the whole batch acknowledged');
    expect(bus.metrics()).toMatchObject({ handledTotal: 6, handlerFailures: 0, retriesTotal: 0 });
  });
});

describe('StreamBus reclaim', () => {
  it('handles an entry left pending by a dead consumer once it is idle', async () => {
    const { bus, store, names } = setup({ reclaimIdleMs: 20 });
    await store.ensureGroup(names.normal, 'g', '$');
    await bus.publish(command('orphan'));
    const taken = await store.readGroup('g', 'dead', [names.normal], { count: 10, blockMs: 0 });
    expect(taken).toHaveLength(1);
    const { got, sub } = collect(bus, { consumer: 'live', types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await waitFor(() => got.length === 1, 'the reclaimed entry handled');
    expect(commandId(got[0]!)).toBe('orphan');
    expect(bus.metrics().reclaimedTotal).toBe(1);
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'the reclaimed entry acknowledged');
  });

  it('hands the rest of a stopped consumer’s batch to another consumer, none lost or repeated', async () => {
    const { bus, store, names } = setup({ reclaimIdleMs: 20, readCount: 10 });
    for (const id of ['m1', 'm2', 'm3']) await bus.publish(command(id));
    const handled: string[] = [];
    const first: Subscription = bus.subscribe({
      group: 'g',
      consumer: 'a',
      from: 'all',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) => {
        handled.push(`a:${commandId(delivery)}`);
        void first.close();
      },
    });
    await first.ready;
    await waitFor(() => handled.length === 1, 'a handling its first entry');
    await first.close();
    expect(handled).toEqual(['a:m1']);
    expect(await pendingOf(store, names.normal, 'g')).toBe(2);
    const second = bus.subscribe({
      group: 'g',
      consumer: 'b',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) => {
        handled.push(`b:${commandId(delivery)}`);
      },
    });
    await second.ready;
    await waitFor(() => handled.length === 3, 'the pending entries handled by b');
    expect(handled).toEqual(['a:m1', 'b:m2', 'b:m3']);
    expect(bus.metrics().reclaimedTotal).toBe(2);
  });

  it('dead-letters an entry delivered more than maxAttempts times (delivery_exhausted)', async () => {
    const { bus, store, sink, names } = setup({ reclaimIdleMs: 0, maxAttempts: 2 });
    await store.ensureGroup(names.normal, 'g', '$');
    await bus.publish(command('poison'));
    await store.readGroup('g', 'dead', [names.normal], { count: 10, blockMs: 0 });
    await store.autoClaim(names.normal, 'g', 'dead', 0, 10);
    const { got, sub } = collect(bus, { consumer: 'live', types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await waitFor(() => bus.metrics().deadLetterTotal === 1, 'the dead-letter');
    expect(got).toHaveLength(0);
    const [dead] = await readAll(store, names.deadLetter);
    expect(readDeadLetter(dead!.fields).reason).toBe('delivery_exhausted');
    expect(sink.events('dead_letter')[0]?.attributes['reason']).toBe('delivery_exhausted');
  });
});

describe('StreamBus stopping and acknowledgement batching', () => {
  it('returns from close() after stopTimeoutMs when a handler never settles, leaving its entry to be reclaimed', async () => {
    const { bus, store, names } = setup({ reclaimIdleMs: 50, stopTimeoutMs: 100 });
    await bus.publish(command('stuck'));
    let started = false;
    const stuck = bus.subscribe({
      group: 'g',
      consumer: 'a',
      from: 'all',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: () => {
        started = true;
        return new Promise<void>(() => undefined);
      },
    });
    await waitFor(() => started, 'the handler started');
    const before = performance.now();
    await stuck.close();
    expect(performance.now() - before).toBeLessThan(1_000);
    expect(await pendingOf(store, names.normal, 'g')).toBe(1);
    const { got, sub } = collect(bus, { consumer: 'b', types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await waitFor(() => got.length === 1, 'the stuck entry reclaimed by b');
    expect(commandId(got[0]!)).toBe('stuck');
    expect(got[0]!.attempt).toBe(1);
  });

  it('leaves an entry pending without spending an attempt when its handler fails because of close()', async () => {
    const { bus, store, names } = setup({ reclaimIdleMs: 60_000 });
    await bus.publish(command('aborted'));
    let started = false;
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'a',
      from: 'all',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) =>
        new Promise<void>((_resolve, reject) => {
          started = true;
          delivery.signal.addEventListener('abort', () => reject(new Error('stopping')), { once: true });
        }),
    });
    await waitFor(() => started, 'the handler started');
    await sub.close();
    expect(await pendingOf(store, names.normal, 'g')).toBe(1);
    expect(bus.metrics().retriesTotal).toBe(0);
    expect(bus.metrics().handlerFailures).toBe(0);
  });

  it('acknowledges a batch of handled entries with one store call per stream', async () => {
    const inner = new MemoryStreamStore();
    let ackCalls = 0;
    const counting = new Proxy(inner, {
      get(target, property) {
        if (property === 'ack') {
          return (stream: string, group: string, ids: readonly string[]) => {
            ackCalls += 1;
            return target.ack(stream, group, ids);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as StreamStore;
    const { bus, names } = setup({ store: counting, readCount: 32 });
    for (let i = 0; i < 20; i += 1) await bus.publish(command(`batch-${i}`));
    const { got, sub } = collect(bus, { consumer: 'a', from: 'all', types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await waitFor(() => got.length === 20, 'all handled');
    await waitFor(async () => (await pendingOf(counting, names.normal, 'g')) === 0, 'all acknowledged');
    expect(ackCalls).toBeLessThanOrEqual(2);
  });

  it('retries the one entry of a batch whose handler failed and acknowledges the rest of the batch', async () => {
    const { bus, store, names } = setup({ readCount: 32 });
    for (let i = 0; i < 10; i += 1) await bus.publish(command(`batch-${i}`));
    const seen: string[] = [];
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      from: 'all',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) => {
        seen.push(`${commandId(delivery)}#${delivery.attempt}`);
        if (commandId(delivery) === 'batch-3' && delivery.attempt === 1) throw new Error('handler failed once');
      },
    });
    await sub.ready;
    await waitFor(() => bus.metrics().handledTotal === 10, 'every message handled');
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'every entry acknowledged');
    // The first batch is all ten entries in order; the retry copy comes after it.
    expect(seen.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `batch-${i}#1`));
    expect(seen.slice(10)).toEqual(['batch-3#2']);
    expect(bus.metrics()).toMatchObject({ handlerFailures: 1, retriesTotal: 1, deadLetterTotal: 0 });
  });
});

describe('StreamBus consumption order and filtering', () => {
  it('handles emergency entries before a backlog of normal ones', async () => {
    const { bus } = setup({ readCount: 4 });
    for (let i = 0; i < 10; i += 1) await bus.publish(command(`n${i}`));
    await bus.publish(command('urgent'), { priority: MessagePriority.CRITICAL });
    const { got, sub } = collect(bus, { from: 'all', types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await waitFor(() => got.length === 11, 'everything handled');
    expect(commandId(got[0]!)).toBe('urgent');
    expect(got.slice(1).map(commandId)).toEqual(Array.from({ length: 10 }, (_, i) => `n${i}`));
  });

  it('handles a CRITICAL message published during a flood before the flood drains', async () => {
    const { bus } = setup({ readCount: 4 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      types: [BusMessageType.TELEMETRY],
      handler: async (delivery) => {
        await gate;
        order.push(delivery.priority === MessagePriority.CRITICAL ? 'critical' : 'normal');
      },
    });
    await sub.ready;
    for (let i = 0; i < 20; i += 1) await bus.publish(telemetry());
    await bus.publish(telemetry(MessagePriority.CRITICAL));
    release();
    await waitFor(() => order.length === 21, 'the flood drained');
    // At most the batch in hand (readCount) is handled before the emergency stream is read again.
    expect(order.indexOf('critical')).toBeLessThanOrEqual(4);
  });

  it('acknowledges and skips entries of types the subscription does not handle', async () => {
    const { bus, store, names } = setup();
    // Commands and their acknowledgements share the normal stream.
    const { got, sub } = collect(bus, { types: [BusMessageType.COMMAND_ACK] });
    await sub.ready;
    await bus.publish(command());
    await bus.publish(create(CommandAckSchema, { commandId: 'c-1', trainingRunId: 'run-1' }));
    await waitFor(() => got.length === 1, 'the acknowledgement');
    expect(got[0]!.type).toBe(BusMessageType.COMMAND_ACK);
    await waitFor(async () => (await pendingOf(store, names.normal, 'g')) === 0, 'the command acknowledged');
    expect(bus.metrics().deadLetterTotal).toBe(0);
  });
});

describe('StreamBus kernel guard', () => {
  it('dead-letters a stale kernel request and one without issued_at (kernel_stale)', async () => {
    const { bus, store, sink, names } = setup({ kernelFreshnessWindowMs: 60_000 });
    const { got, sub } = collect(bus, { types: [BusMessageType.KERNEL_PREFETCH_REQUEST] });
    await sub.ready;
    await bus.publish(kernelRequest('old', Date.now() - 120_000));
    await bus.publish(kernelRequest('unset', null));
    await bus.publish(kernelRequest('fresh'));
    await waitFor(() => got.length === 1 && bus.metrics().deadLetterTotal === 2, 'one handled, two dead-lettered');
    expect((got[0]!.message as KernelPrefetchRequest).requestId).toBe('fresh');
    const reasons = (await readAll(store, names.deadLetter)).map((e) => readDeadLetter(e.fields).reason);
    expect(reasons).toEqual(['kernel_stale', 'kernel_stale']);
    expect(sink.events('kernel_message_rejected')).toHaveLength(2);
    expect(sink.events('kernel_message_rejected')[0]?.level).toBe(TelemetryLevel.WARNING);
  });

  it('dead-letters a replayed request id (kernel_replay) but handles the bus’s own retry', async () => {
    const { bus, store, names } = setup();
    const attempts: number[] = [];
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      types: [BusMessageType.KERNEL_PREFETCH_REQUEST, BusMessageType.KERNEL_PREFETCH_READY],
      handler: (delivery) => {
        attempts.push(delivery.attempt);
        if (delivery.type === BusMessageType.KERNEL_PREFETCH_REQUEST && delivery.attempt === 1) throw new Error('retry me');
      },
    });
    await sub.ready;
    await bus.publish(kernelRequest('r1'));
    await waitFor(() => bus.metrics().handledTotal === 1, 'the retried request handled');
    await bus.publish(kernelRequest('r1'));
    await bus.publish(kernelReady('r1'));
    await bus.publish(kernelReady('r1'));
    await waitFor(() => bus.metrics().deadLetterTotal === 2, 'both replays dead-lettered');
    expect(attempts).toEqual([1, 2, 1]);
    const dead = (await readAll(store, names.deadLetter)).map((e) => readDeadLetter(e.fields));
    expect(dead.map((d) => [d.reason, d.from])).toEqual([
      ['kernel_replay', names.kernelRequests],
      ['kernel_replay', names.kernelReady],
    ]);
    expect(bus.metrics().deadLetterByReason).toEqual({ kernel_replay: 2 });
  });
});

describe('StreamBus request/reply', () => {
  it('round-trips a request to a responder on another bus sharing the store', async () => {
    const { bus: requester, store, names } = setup();
    const { bus: responder } = setup({ store });
    const sub = responder.subscribe({
      group: 'urza',
      consumer: 'w1',
      types: [BusMessageType.KERNEL_PREFETCH_REQUEST],
      handler: async (delivery) => {
        const request = delivery.message as KernelPrefetchRequest;
        await responder.reply(delivery, kernelReady(request.requestId));
      },
    });
    await sub.ready;
    const reply = await requester.request(kernelRequest('req-1'), {
      replyType: BusMessageType.KERNEL_PREFETCH_READY,
      timeoutMs: 5_000,
    });
    expect(reply.type).toBe(BusMessageType.KERNEL_PREFETCH_READY);
    expect((reply.message as KernelArtifactReady).requestId).toBe('req-1');
    expect(reply.trainingRunId).toBe('run-1');
    expect(reply.correlationId).not.toBe('');
    const replyGroups = async () => (await store.groups(names.kernelReady)).filter((g) => g.name.startsWith('reply-')).length;
    expect(await replyGroups()).toBe(1);
    await requester.close();
    expect(await replyGroups()).toBe(0);
    expect(await store.length(names.kernelReady)).toBe(1);
  });

  it('fails with OONA_REQUEST_TIMEOUT when nobody answers', async () => {
    const { bus } = setup();
    const started = performance.now();
    const error = await rejectionOf(
      bus.request(kernelRequest('lonely'), { replyType: BusMessageType.KERNEL_PREFETCH_READY, timeoutMs: 80 }),
    );
    expect(isEsperError(error, ErrorCode.OONA_REQUEST_TIMEOUT)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(75);
  });

  it('refuses a request timeout or publish deadline no Node timer can hold, naming the field', async () => {
    const { bus } = setup();
    const tooLong = MAX_TIMER_MS + 1;
    for (const [call, field] of [
      [() => bus.request(kernelRequest('far'), { replyType: BusMessageType.KERNEL_PREFETCH_READY, timeoutMs: tooLong }), 'timeoutMs'],
      [() => bus.publish(command(), { deadlineMs: tooLong }), 'deadlineMs'],
    ] as const) {
      const error = await rejectionOf(call());
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((error as EsperError).details['field']).toBe(field);
    }
  });

  it('ignores replies for other correlation ids and answers concurrent requests separately', async () => {
    const { bus } = setup();
    const sub = bus.subscribe({
      group: 'echo',
      consumer: 'e',
      types: [BusMessageType.KERNEL_PREFETCH_REQUEST],
      handler: async (delivery) => {
        const request = delivery.message as KernelPrefetchRequest;
        // A stray answer with no correlation id first, then the real one.
        await bus.publish(kernelReady(`stray-${request.requestId}`));
        await bus.reply(delivery, kernelReady(request.requestId));
      },
    });
    await sub.ready;
    const replies = await Promise.all(
      ['x', 'y', 'z'].map((id) => bus.request(kernelRequest(id), { replyType: BusMessageType.KERNEL_PREFETCH_READY, timeoutMs: 5_000 })),
    );
    expect(replies.map((r) => (r.message as KernelArtifactReady).requestId)).toEqual(['x', 'y', 'z']);
  });
});

describe('StreamBus housekeeping', () => {
  it('trims by age but never an entry some group has not received or acknowledged', async () => {
    const clock = new FakeClock();
    const store = new MemoryStreamStore({ clock });
    const { bus, names } = setup({ store, clock, retentionMs: 1_000 });
    await store.ensureGroup(names.normal, 'slow', '0');
    for (let i = 0; i < 5; i += 1) await bus.publish(command(`c${i}`));
    for (let i = 0; i < 3; i += 1) await bus.publish(telemetry());
    await store.add(names.deadLetter, { reason: new TextEncoder().encode('old') });
    const read = await store.readGroup('slow', 's', [names.normal], { count: 2, blockMs: 0 });
    await store.ack(names.normal, 'slow', [read[0]!.id]);
    clock.advance(10_000);

    const first = await bus.housekeeping();
    expect(first).toMatchObject({ normal: 1, telemetry: 3, emergency: 0 });
    expect(first.deadLetter).toBeUndefined();
    expect(await store.length(names.normal)).toBe(4);
    expect(await store.length(names.deadLetter)).toBe(1);

    // Acknowledged but a later entry still undelivered: trimmed up to the last delivered one.
    await store.ack(names.normal, 'slow', [read[1]!.id]);
    expect((await bus.housekeeping()).normal).toBe(0);
    const rest = await store.readGroup('slow', 's', [names.normal], { count: 10, blockMs: 0 });
    await store.ack(
      names.normal,
      'slow',
      rest.map((e) => e.id),
    );
    expect((await bus.housekeeping()).normal).toBe(4);
  });

  it('keeps everything a group created from the start has not read yet', async () => {
    const clock = new FakeClock();
    const store = new MemoryStreamStore({ clock });
    const { bus, names } = setup({ store, clock, retentionMs: 1 });
    await store.ensureGroup(names.fieldReports, 'late', '0');
    for (let i = 0; i < 3; i += 1) await bus.publish(fieldReport());
    clock.advance(60_000);
    expect((await bus.housekeeping()).fieldReports).toBe(0);
    expect(await store.length(names.fieldReports)).toBe(3);
  });
});

describe('StreamBus lifecycle', () => {
  it('closes idempotently, refuses calls after close, and leaves an injected store open', async () => {
    const { bus, store, names } = setup();
    const { sub } = collect(bus, { types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    const closing = bus.close();
    expect(bus.close()).toBe(closing);
    expect(bus.state).toBe('closing');
    await closing;
    expect(bus.state).toBe('closed');
    for (const call of [
      () => bus.publish(command()),
      () => bus.request(command(), { replyType: BusMessageType.FIELD_REPORT, timeoutMs: 10 }),
      () => bus.housekeeping(),
      async () => bus.subscribe({ group: 'g', consumer: 'c', types: [BusMessageType.FIELD_REPORT], handler: () => undefined }),
    ]) {
      expect(isEsperError(await rejectionOf(call()), ErrorCode.OONA_CLOSED)).toBe(true);
    }
    expect(await store.length(names.normal)).toBe(0);
  });

  it('closes a store it owns, through Symbol.asyncDispose too', async () => {
    const { bus, store, names } = setup({ ownsStore: true });
    await bus[Symbol.asyncDispose]();
    expect(isEsperError(await rejectionOf(store.length(names.normal)), ErrorCode.OONA_CLOSED)).toBe(true);
  });

  it('lets the handler in flight finish and acknowledges it before close resolves', async () => {
    const { bus, store, names } = setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered = false;
    let aborted = false;
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: async (delivery) => {
        entered = true;
        await gate;
        aborted = delivery.signal.aborted;
      },
    });
    await sub.ready;
    await bus.publish(command());
    await waitFor(() => entered, 'the handler running');
    let closed = false;
    const closing = bus.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const closedBeforeRelease = closed;
    release();
    await closing;
    expect(closedBeforeRelease).toBe(false);
    expect(aborted).toBe(true);
    expect(bus.metrics().handledTotal).toBe(1);
    expect(await pendingOf(store, names.normal, 'g')).toBe(0);
  });

  it('aborts a publish waiting on back-pressure with OONA_CLOSED', async () => {
    const { bus } = setup({ maxBacklog: 1, depthRefreshMs: 0 });
    await bus.publish(command());
    const waiting = rejectionOf(bus.publish(command(), { deadlineMs: 60_000 }));
    await bus.close();
    expect(isEsperError(await waiting, ErrorCode.OONA_CLOSED)).toBe(true);
  });

  it('closes a subscription through close() idempotently and through its signal', async () => {
    const { bus, store, names } = setup();
    const { sub } = collect(bus, { types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    expect(sub.close()).toBe(sub.close());
    await sub.close();
    const controller = new AbortController();
    const { got, sub: viaSignal } = collect(bus, {
      group: 'g2',
      types: [BusMessageType.ADAPTATION_COMMAND],
      signal: controller.signal,
    });
    await viaSignal.ready;
    controller.abort();
    await viaSignal.close();
    await bus.publish(command());
    const groups = await store.groups(names.normal);
    expect(groups.find((g) => g.name === 'g2')).toMatchObject({ lag: 1, pending: 0 });
    expect(got).toHaveLength(0);
  });

  it('closes a subscription at the end of its `await using` scope', async () => {
    const { bus, store, names } = setup();
    {
      await using sub = collect(bus, { group: 'scoped', types: [BusMessageType.ADAPTATION_COMMAND] }).sub;
      await sub.ready;
    }
    await bus.publish(command());
    expect((await store.groups(names.normal)).find((g) => g.name === 'scoped')).toMatchObject({ lag: 1, pending: 0 });
  });

  it('validates subscribe options naming the field', () => {
    const { bus } = setup();
    const handler = (): void => undefined;
    const fieldOf = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (error) {
        expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
        return (error as EsperError).details['field'];
      }
      return undefined;
    };
    expect(fieldOf(() => bus.subscribe({ group: '', consumer: 'c', types: [BusMessageType.TELEMETRY], handler }))).toBe('group');
    expect(fieldOf(() => bus.subscribe({ group: 'g', consumer: 'c', types: [], handler }))).toBe('types');
    expect(fieldOf(() => bus.subscribe({ group: 'g', consumer: 'c', types: [BusMessageType.UNSPECIFIED], handler }))).toBe('types');
  });
});

describe('StreamBus metrics', () => {
  it('reports counters, depths and latencies as oona.* metric points with units', async () => {
    const { bus, sink } = setup();
    const { got, sub } = collect(bus, { types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    await bus.publish(command());
    await waitFor(() => got.length === 1 && bus.metrics().handledTotal === 1, 'one message handled');
    const metrics = bus.metrics();
    expect(metrics.publishLatency.samples).toBe(1);
    expect(metrics.handleLatency.samples).toBe(1);
    expect(metrics.depth.normal).toBeGreaterThanOrEqual(0);
    expect(metrics).toMatchObject({ publishBreaker: 'closed', consumeBreaker: 'closed', emergencyTokens: 120 });
    const points = bus.metricPoints();
    const byName = (name: string) => points.filter((p) => p.name === name);
    expect(byName(OonaMetric.PUBLISH_TOTAL)).toEqual([{ name: 'oona.publish_total', value: 1, unit: 'count' }]);
    expect(byName(OonaMetric.QUEUE_DEPTH)[0]?.attributes).toEqual({ stream: 'normal' });
    expect(byName(OonaMetric.PUBLISH_LATENCY_MS).map((p) => [p.unit, p.attributes])).toEqual([
      ['ms', { stat: 'p50' }],
      ['ms', { stat: 'p99' }],
    ]);
    for (const name of [
      'oona.publish_shed',
      'oona.emergency_published',
      'oona.emergency_demoted',
      'oona.dead_letter_total',
      'oona.reclaimed_total',
      'oona.retries_total',
      'oona.handle_latency_ms',
    ]) {
      expect(byName(name).length, name).toBeGreaterThan(0);
    }
    expect(sink.events('bus_started')).toHaveLength(1);
  });
});

/** A store whose chosen operations fail with OONA_STORE_UNAVAILABLE a number of times. */
class FlakyStore implements StreamStore {
  readonly inner = new MemoryStreamStore();
  failing = new Set<string>();
  failuresLeft = Number.POSITIVE_INFINITY;

  #gate(operation: string): void {
    if (this.failing.has(operation) && this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      throw new EsperError(ErrorCode.OONA_STORE_UNAVAILABLE, `${operation}: connection refused`);
    }
  }

  async add(stream: string, fields: EntryFields) {
    this.#gate('add');
    return this.inner.add(stream, fields);
  }
  async ensureGroup(stream: string, group: string, start: '$' | '0') {
    this.#gate('ensureGroup');
    return this.inner.ensureGroup(stream, group, start);
  }
  async destroyGroup(stream: string, group: string) {
    return this.inner.destroyGroup(stream, group);
  }
  async readGroup(...args: Parameters<StreamStore['readGroup']>) {
    this.#gate('readGroup');
    return this.inner.readGroup(...args);
  }
  async ack(stream: string, group: string, ids: readonly string[]) {
    this.#gate('ack');
    return this.inner.ack(stream, group, ids);
  }
  async autoClaim(...args: Parameters<StreamStore['autoClaim']>) {
    this.#gate('autoClaim');
    return this.inner.autoClaim(...args);
  }
  async groups(stream: string) {
    this.#gate('groups');
    return this.inner.groups(stream);
  }
  async length(stream: string) {
    return this.inner.length(stream);
  }
  async trimBefore(stream: string, minId: string) {
    return this.inner.trimBefore(stream, minId);
  }
  async deleteStreams(streams: readonly string[]) {
    return this.inner.deleteStreams(streams);
  }
  async close() {
    return this.inner.close();
  }
  async [Symbol.asyncDispose]() {
    return this.inner.close();
  }
}
