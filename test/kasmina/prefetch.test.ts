/**
 * The prefetch coordinator over `StreamBus` on `MemoryStreamStore`, answered by a real
 * `UrzaPrefetchWorker` on a real `UrzaLibrary` (ready and error paths) or by nobody
 * (timeout, late answers, cancellation); plus one ready round trip over real Redis
 * (the test run's Redis, unique stream prefix, keys deleted afterwards).
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  AsyncWorker,
  DependencyGuardEvent,
  DependencyViolationError,
  ErrorCode,
  isEsperError,
  MAX_TIMER_MS,
  type EsperError,
  MemoryTelemetrySink,
  type MetricInput,
} from '../../src/core/index.js';
import { KasminaEvent, KasminaMetric } from '../../src/kasmina/names.js';
import { PrefetchCoordinator, type PrefetchCoordinatorOptions, type PrefetchTicket } from '../../src/kasmina/prefetch.js';
import { KernelArtifactReadySchema, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { MemoryStreamStore, RedisStreamStore, StreamBus, type StreamStore } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { UrzaPrefetchWorker } from '../../src/urza/index.js';
import { rejectionOf, waitFor } from '../oona/fixtures/waits.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';
import { thrownBy } from '../support/thrown.js';
import { useBp005Artifact } from './fixtures/hooks.js';

const RING = new KeyRing([{ keyId: 'k1', secret: Buffer.from('kasmina-prefetch-test-secret-0123456789', 'utf8') }]);
const RUN = 'run-kasmina-prefetch';
const REDIS_URL = testRedisUrl();
const bp005 = useBp005Artifact();
const { catalog, cleanups } = bp005;

function newBus(store: StreamStore = new MemoryStreamStore(), streamPrefix = ''): StreamBus {
  const bus = new StreamBus({
    store,
    ownsStore: !(store instanceof MemoryStreamStore),
    streamPrefix,
    keyRing: RING,
    telemetry: new MemoryTelemetrySink(),
    blockMs: 20,
    reclaimIntervalMs: 50,
    readCount: 4,
  });
  cleanups.push(() => bus.close());
  return bus;
}

async function urzaWorker(bus: StreamBus): Promise<UrzaPrefetchWorker> {
  const library = await bp005.library();
  const worker = new UrzaPrefetchWorker({ bus, library, catalog, telemetry: new MemoryTelemetrySink(), prewarmPasses: 2 });
  cleanups.push(() => worker.close());
  await worker.start();
  return worker;
}

interface Harness {
  readonly coordinator: PrefetchCoordinator;
  readonly worker: AsyncWorker;
  readonly telemetry: MemoryTelemetrySink;
}

async function coordinatorOn(bus: StreamBus, overrides: Partial<PrefetchCoordinatorOptions> = {}): Promise<Harness> {
  const worker = new AsyncWorker({ name: 'shared-test-worker', maxConcurrency: 8 });
  cleanups.push(() => worker.close());
  const telemetry = new MemoryTelemetrySink();
  const coordinator = new PrefetchCoordinator({ bus, worker, telemetry, timeoutMs: 10_000, ...overrides });
  cleanups.push(() => coordinator.close());
  await coordinator.start();
  return { coordinator, worker, telemetry };
}

/** The details of the rejection of `ticket`, checked to be a `code` error naming the request, the seed and the blueprint. */
async function rejectionDetails(
  ticket: PrefetchTicket,
  code: ErrorCode,
  seedId: string,
  blueprintId: string,
): Promise<Record<string, unknown>> {
  const error = await rejectionOf(ticket.result);
  expect(isEsperError(error, code)).toBe(true);
  const details = (error as EsperError).details;
  expect(details).toMatchObject({ request_id: ticket.requestId, seed_id: seedId, blueprint_id: blueprintId });
  return details;
}

/** The attributes of the one `description` event, checked to be at `level`. */
function onlyEvent(telemetry: MemoryTelemetrySink, description: string, level: TelemetryLevel): Record<string, string> {
  const events = telemetry.events(description);
  expect(events).toHaveLength(1);
  expect(events[0]?.level).toBe(level);
  return events[0]?.attributes ?? {};
}

function metric(metrics: MetricInput[], name: string, key?: string, value?: string): number | undefined {
  return metrics.find((m) => m.name === name && (key === undefined || m.attributes?.[key] === value))?.value;
}

describe('PrefetchCoordinator', () => {
  it('resolves a request with Urza’s KernelArtifactReady and counts it', async () => {
    const bus = newBus();
    await urzaWorker(bus);
    const { coordinator, worker } = await coordinatorOn(bus);
    const ticket = coordinator.request({ seedId: 'seed-0', blueprintId: 'BP005', trainingRunId: RUN });
    expect(ticket.requestId).toMatch(/^prefetch-[0-9a-f-]{36}$/);
    expect(coordinator.stats().inflight).toBe(1);
    const ready = await ticket.result;
    expect(ready).toMatchObject({
      requestId: ticket.requestId,
      blueprintId: 'BP005',
      trainingRunId: RUN,
      checksum: bp005.compiled.checksum,
      guardDigest: bp005.compiled.guardDigest,
    });
    expect(coordinator.stats()).toMatchObject({ requested: 1, ready: 1, error: 0, timeout: 0, canceled: 0, late: 0, inflight: 0 });
    const metrics = coordinator.metrics();
    expect(metric(metrics, KasminaMetric.PREFETCH_REQUESTS_TOTAL, 'status', 'requested')).toBe(1);
    expect(metric(metrics, KasminaMetric.PREFETCH_REQUESTS_TOTAL, 'status', 'ready')).toBe(1);
    expect(metric(metrics, KasminaMetric.PREFETCH_REQUESTS_TOTAL, 'status', 'timeout')).toBe(0);
    expect(metric(metrics, KasminaMetric.PREFETCH_INFLIGHT)).toBe(0);
    const latency = (stat: string): number | undefined => metric(metrics, KasminaMetric.PREFETCH_LATENCY_MS, 'stat', stat);
    expect(latency('last')).toBeGreaterThan(0);
    // One ready answer: every quantile of the window is its latency.
    expect(latency('p50')).toBe(latency('last'));
    expect(latency('p95')).toBe(latency('last'));
    expect(coordinator.stats()).toMatchObject({ p50LatencyMs: latency('last'), p95LatencyMs: latency('last') });
    // The wait ran as a task on the shared worker and completed there.
    await waitFor(() => worker.stats().completed === 1, 'the worker task to complete');
  });

  it('rejects with KASMINA_PREFETCH_FAILED and a WARNING prefetch_error when Urza answers with an error', async () => {
    const bus = newBus();
    await urzaWorker(bus);
    const { coordinator, telemetry } = await coordinatorOn(bus);
    const ticket = coordinator.request({ seedId: 'seed-0', blueprintId: 'BP999', trainingRunId: RUN });
    const details = await rejectionDetails(ticket, ErrorCode.KASMINA_PREFETCH_FAILED, 'seed-0', 'BP999');
    expect(details['code']).toBe('NOT_FOUND');
    expect(String(details['reason'])).toMatch(/^missing_artifact: /);
    expect(onlyEvent(telemetry, KasminaEvent.PREFETCH_ERROR, TelemetryLevel.WARNING)).toMatchObject({
      seed_id: 'seed-0',
      blueprint_id: 'BP999',
      request_id: ticket.requestId,
      code: 'NOT_FOUND',
    });
    expect(telemetry.packets[0]?.trainingRunId).toBe(RUN);
    expect(coordinator.stats()).toMatchObject({ requested: 1, ready: 0, error: 1, inflight: 0 });
  });

  it('times out an unanswered request with KASMINA_PREFETCH_TIMEOUT and a CRITICAL prefetch_timeout, then counts a late answer', async () => {
    const bus = newBus();
    const { coordinator, telemetry, worker } = await coordinatorOn(bus, { timeoutMs: 150 });
    const ticket = coordinator.request({ seedId: 'seed-7', blueprintId: 'BP005', trainingRunId: RUN });
    const details = await rejectionDetails(ticket, ErrorCode.KASMINA_PREFETCH_TIMEOUT, 'seed-7', 'BP005');
    expect(details['timeout_ms']).toBe(150);
    expect(onlyEvent(telemetry, KasminaEvent.PREFETCH_TIMEOUT, TelemetryLevel.CRITICAL)).toMatchObject({
      request_id: ticket.requestId,
      seed_id: 'seed-7',
      blueprint_id: 'BP005',
      timeout_ms: '150',
    });
    expect(telemetry.packets[0]?.priority).toBe(MessagePriority.CRITICAL);
    expect(coordinator.stats()).toMatchObject({ requested: 1, timeout: 1, inflight: 0 });
    expect(worker.stats().timedOut).toBe(1);

    // Urza answers after all: counted as late and ignored.
    await bus.publish(
      create(KernelArtifactReadySchema, {
        requestId: ticket.requestId,
        blueprintId: 'BP005',
        trainingRunId: RUN,
        checksum: bp005.compiled.checksum,
      }),
    );
    await waitFor(() => coordinator.stats().late === 1, 'the late answer to be counted');
    expect(coordinator.stats()).toMatchObject({ ready: 0, timeout: 1, late: 1 });
    expect(metric(coordinator.metrics(), KasminaMetric.PREFETCH_REQUESTS_TOTAL, 'status', 'late')).toBe(1);
  });

  it('counts an answer to an unknown request id as late', async () => {
    const bus = newBus();
    const { coordinator } = await coordinatorOn(bus);
    await bus.publish(
      create(KernelArtifactReadySchema, { requestId: `prefetch-${randomUUID()}`, blueprintId: 'BP005', trainingRunId: RUN }),
    );
    await waitFor(() => coordinator.stats().late === 1, 'the unknown answer to be counted');
    expect(coordinator.stats()).toMatchObject({ requested: 0, ready: 0, late: 1 });
  });

  it('cancels one request, a seed’s requests, or all of them with KASMINA_PREFETCH_CANCELLED and INFO prefetch_canceled', async () => {
    const bus = newBus();
    const { coordinator, telemetry } = await coordinatorOn(bus);
    const a1 = coordinator.request({ seedId: 'seed-a', blueprintId: 'BP005', trainingRunId: RUN });
    const a2 = coordinator.request({ seedId: 'seed-a', blueprintId: 'BP006', trainingRunId: RUN });
    const b = coordinator.request({ seedId: 'seed-b', blueprintId: 'BP005', trainingRunId: RUN });
    const c = coordinator.request({ seedId: 'seed-c', blueprintId: 'BP005', trainingRunId: RUN });
    expect(coordinator.stats().inflight).toBe(4);

    expect(coordinator.cancelSeed('seed-a')).toBe(2);
    expect(coordinator.stats().inflight).toBe(2);
    for (const [ticket, blueprintId] of [
      [a1, 'BP005'],
      [a2, 'BP006'],
    ] as const) {
      const details = await rejectionDetails(ticket, ErrorCode.KASMINA_PREFETCH_CANCELLED, 'seed-a', blueprintId);
      expect(details['reason']).toBe('seed_retired');
    }

    expect(coordinator.cancel(b.requestId, 'operator')).toBe(true);
    expect(coordinator.cancel(b.requestId)).toBe(false);
    expect(coordinator.cancel('prefetch-unknown')).toBe(false);
    await expect(b.result).rejects.toMatchObject({ code: ErrorCode.KASMINA_PREFETCH_CANCELLED, details: { reason: 'operator' } });

    expect(coordinator.cancelAll('registry_reset')).toBe(1);
    await expect(c.result).rejects.toMatchObject({ code: ErrorCode.KASMINA_PREFETCH_CANCELLED, details: { reason: 'registry_reset' } });

    const events = telemetry.events(KasminaEvent.PREFETCH_CANCELED);
    expect(events.map((e) => e.attributes['request_id'])).toEqual([a1.requestId, a2.requestId, b.requestId, c.requestId]);
    expect(events.map((e) => e.attributes['reason'])).toEqual(['seed_retired', 'seed_retired', 'operator', 'registry_reset']);
    expect(events.every((e) => e.level === TelemetryLevel.INFO)).toBe(true);
    expect(coordinator.stats()).toMatchObject({ requested: 4, canceled: 4, inflight: 0 });
  });

  it('never turns a dropped ticket’s rejection into an unhandled rejection', async () => {
    const bus = newBus();
    const { coordinator } = await coordinatorOn(bus, { timeoutMs: 50 });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const cancelled = coordinator.request({ seedId: 'seed-x', blueprintId: 'BP005', trainingRunId: RUN });
      coordinator.request({ seedId: 'seed-y', blueprintId: 'BP005', trainingRunId: RUN });
      coordinator.cancel(cancelled.requestId);
      await waitFor(() => coordinator.stats().timeout === 1, 'the second request to time out');
      // Give the runtime its turn to report unhandled rejections.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('refuses a request without training_run_id, blueprint or seed id through the dependency guard (CRITICAL), publishing nothing', async () => {
    const bus = newBus();
    const { coordinator, telemetry } = await coordinatorOn(bus);
    const published = bus.metrics().publishTotal;
    for (const [input, type] of [
      [{ seedId: 'seed-0', blueprintId: 'BP005', trainingRunId: '' }, 'training_run_id'],
      [{ seedId: 'seed-0', blueprintId: '', trainingRunId: RUN }, 'blueprint_id'],
      [{ seedId: ' ', blueprintId: 'BP005', trainingRunId: RUN }, 'seed_id'],
    ] as const) {
      let thrown: unknown;
      try {
        coordinator.request(input);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(DependencyViolationError);
      expect((thrown as DependencyViolationError).dependencyType).toBe(type);
    }
    const violations = telemetry.events(DependencyGuardEvent.VIOLATION);
    expect(violations.map((v) => v.attributes['artifact_type'])).toEqual(['training_run_id', 'blueprint_id', 'seed_id']);
    expect(violations.every((v) => v.level === TelemetryLevel.CRITICAL)).toBe(true);
    expect(violations[0]?.attributes['subsystem']).toBe('kasmina');
    expect(coordinator.stats().requested).toBe(0);
    expect(bus.metrics().publishTotal).toBe(published);
  });

  it('cancels outstanding requests when the shared worker shuts down', async () => {
    const bus = newBus();
    const { coordinator, worker, telemetry } = await coordinatorOn(bus);
    const ticket = coordinator.request({ seedId: 'seed-0', blueprintId: 'BP005', trainingRunId: RUN });
    await worker.close();
    await expect(ticket.result).rejects.toMatchObject({
      code: ErrorCode.KASMINA_PREFETCH_CANCELLED,
      details: { reason: 'worker_shutdown' },
    });
    expect(telemetry.events(KasminaEvent.PREFETCH_CANCELED)).toHaveLength(1);
    expect(coordinator.stats()).toMatchObject({ canceled: 1, inflight: 0 });
    // A closed worker refuses new waits; nothing is published or tracked.
    expect(() => coordinator.request({ seedId: 'seed-1', blueprintId: 'BP005', trainingRunId: RUN })).toThrow(
      expect.objectContaining({ code: ErrorCode.WORKER_CLOSED }),
    );
    expect(coordinator.stats()).toMatchObject({ requested: 1, inflight: 0 });
  });

  it('close() cancels everything, stops the subscription, is idempotent, and refuses later requests', async () => {
    const bus = newBus();
    const { coordinator, telemetry } = await coordinatorOn(bus);
    const ticket = coordinator.request({ seedId: 'seed-0', blueprintId: 'BP005', trainingRunId: RUN });
    const first = coordinator.close();
    expect(coordinator.close()).toBe(first);
    await first;
    expect(coordinator.state).toBe('closed');
    await expect(ticket.result).rejects.toMatchObject({
      code: ErrorCode.KASMINA_PREFETCH_CANCELLED,
      details: { reason: 'coordinator_closed' },
    });
    expect(telemetry.events(KasminaEvent.PREFETCH_CANCELED)).toHaveLength(1);
    expect(() => coordinator.request({ seedId: 'seed-0', blueprintId: 'BP005', trainingRunId: RUN })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );
    await expect(coordinator.start()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
  });

  it('rejects bad options, naming the field, and deadlines a timer cannot hold', () => {
    const bus = newBus();
    const worker = new AsyncWorker();
    cleanups.push(() => worker.close());
    const telemetry = new MemoryTelemetrySink();
    const fieldOf = (options: Partial<PrefetchCoordinatorOptions>): unknown =>
      thrownBy(() => new PrefetchCoordinator({ bus, worker, telemetry, timeoutMs: 100, ...options }), ErrorCode.INVALID_ARGUMENT).details[
        'field'
      ];
    expect(fieldOf({ timeoutMs: 0 })).toBe('timeoutMs');
    // Longer than a Node timer holds: it would fire after 1 ms.
    expect(fieldOf({ timeoutMs: MAX_TIMER_MS + 1 })).toBe('timeoutMs');
    expect(fieldOf({ closeTimeoutMs: MAX_TIMER_MS + 1 })).toBe('closeTimeoutMs');
    expect(fieldOf({ consumerGroup: '' })).toBe('consumerGroup');
    expect(fieldOf({ latencyWindowSize: 0 })).toBe('latencyWindowSize');
  });

  it('resolves a request with KernelArtifactReady over real Redis (separate Kasmina and Urza connections)', async () => {
    const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    cleanups.push(() => admin.quit());
    const streamPrefix = `esper-test:${randomUUID()}:`;
    cleanups.push(() => deleteKeysWithPrefix(admin, streamPrefix));
    const urzaBus = newBus(new RedisStreamStore({ url: REDIS_URL }), streamPrefix);
    const kasminaBus = newBus(new RedisStreamStore({ url: REDIS_URL }), streamPrefix);
    await urzaWorker(urzaBus);
    const { coordinator } = await coordinatorOn(kasminaBus, { consumerGroup: `kasmina-prefetch-${RUN}` });
    const ticket = coordinator.request({ seedId: 'seed-0', blueprintId: 'BP005', trainingRunId: RUN });
    const ready = await ticket.result;
    expect(ready).toMatchObject({
      requestId: ticket.requestId,
      blueprintId: 'BP005',
      trainingRunId: RUN,
      checksum: bp005.compiled.checksum,
    });
    expect(coordinator.stats()).toMatchObject({ requested: 1, ready: 1, inflight: 0 });
  }, 30_000);
});
