import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, isMessage } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DependencyGuardEvent, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  BusMessageType,
  KernelArtifactErrorSchema,
  KernelArtifactReadySchema,
  KernelErrorCode,
  KernelPrefetchRequestSchema,
  TelemetryLevel,
  type KernelArtifactError,
  type KernelArtifactReady,
  type KernelPrefetchRequest,
} from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { MemoryStreamStore } from '../../src/oona/memory-stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { KeyRing } from '../../src/security/index.js';
import { tf } from '../../src/tensor/index.js';
import { type CompiledArtifact } from '../../src/tezzeret/index.js';
import { parseUrzaArtifactRef } from '../../src/urza/artifact-ref.js';
import { UrzaLibrary } from '../../src/urza/library.js';
import { bp005Save, compileBp005, SITE_KEY } from './fixtures/bp005-artifact.js';
import { UrzaPrefetchWorker } from '../../src/urza/prefetch-worker.js';
import { UrzaRuntime } from '../../src/urza/runtime.js';

const RING = new KeyRing([{ keyId: 'k1', secret: Buffer.from('urza-prefetch-test-secret-0123456789', 'utf8') }]);
const catalog = new KarnCatalog();
let compiled: CompiledArtifact;
let tensorsBefore = 0;

type Answer = KernelArtifactReady | KernelArtifactError;

interface Harness {
  readonly bus: StreamBus;
  readonly library: UrzaLibrary;
  readonly libraryTelemetry: MemoryTelemetrySink;
  readonly workerTelemetry: MemoryTelemetrySink;
  readonly answers: Answer[];
  worker(consumer?: string, options?: { prewarmCacheSize?: number }): Promise<UrzaPrefetchWorker>;
}

const cleanups: (() => Promise<void>)[] = [];
let root: string;

beforeAll(async () => {
  compiled = await compileBp005(catalog);
  tensorsBefore = tf.memory().numTensors;
});

afterAll(() => {
  // Every prewarm disposed the module it loaded.
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urza-prefetch-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(root, { recursive: true, force: true });
});

async function setup(): Promise<Harness> {
  const libraryTelemetry = new MemoryTelemetrySink();
  const workerTelemetry = new MemoryTelemetrySink();
  const library = await UrzaLibrary.open({ rootDir: root, telemetry: libraryTelemetry });
  cleanups.push(() => library.close());
  await library.save(bp005Save(catalog, compiled));
  const bus = new StreamBus({
    store: new MemoryStreamStore(),
    keyRing: RING,
    telemetry: new MemoryTelemetrySink(),
    blockMs: 20,
    reclaimIntervalMs: 20,
    readCount: 1,
  });
  cleanups.push(() => bus.close());
  const answers: Answer[] = [];
  const requester = bus.subscribe({
    group: 'kasmina',
    consumer: 'kasmina-0',
    types: [BusMessageType.KERNEL_PREFETCH_READY, BusMessageType.KERNEL_PREFETCH_ERROR],
    handler: (delivery) => {
      const message = delivery.message;
      if (isMessage(message, KernelArtifactReadySchema) || isMessage(message, KernelArtifactErrorSchema)) {
        answers.push(message);
      }
    },
  });
  await requester.ready;
  return {
    bus,
    library,
    libraryTelemetry,
    workerTelemetry,
    answers,
    async worker(consumer?: string, options: { prewarmCacheSize?: number } = {}) {
      const worker = new UrzaPrefetchWorker({
        bus,
        library,
        catalog,
        telemetry: workerTelemetry,
        prewarmPasses: 4,
        ...options,
        ...(consumer === undefined ? {} : { consumer }),
      });
      cleanups.push(() => worker.close());
      await worker.start();
      return worker;
    },
  };
}

function plainOptions(harness: Harness) {
  return { bus: harness.bus, library: harness.library, catalog, telemetry: harness.workerTelemetry };
}

function request(fields: Partial<KernelPrefetchRequest> = {}): KernelPrefetchRequest {
  return create(KernelPrefetchRequestSchema, {
    requestId: `prefetch-${randomUUID()}`,
    blueprintId: 'BP005',
    trainingRunId: 'run-urza-test',
    seedId: 'seed-0',
    issuedAt: timestampFromMs(Date.now()),
    ...fields,
  });
}

async function answerTo(harness: Harness, requestId: string, timeoutMs = 10_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = harness.answers.find((a) => a.requestId === requestId);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no answer to ${requestId} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function ask(harness: Harness, fields: Partial<KernelPrefetchRequest> = {}): Promise<Answer> {
  const message = request(fields);
  await harness.bus.publish(message);
  return answerTo(harness, message.requestId);
}

function asError(answer: Answer): KernelArtifactError {
  if (!isMessage(answer, KernelArtifactErrorSchema)) throw new Error(`expected an error, got ${answer.$typeName}`);
  return answer;
}

describe('UrzaPrefetchWorker', () => {
  it('answers a request with KernelArtifactReady carrying the verified checksum and measured prewarm', async () => {
    const harness = await setup();
    const worker = await harness.worker();
    const answer = await ask(harness);
    expect(isMessage(answer, KernelArtifactReadySchema)).toBe(true);
    const ready = answer as KernelArtifactReady;
    expect(ready).toMatchObject({
      blueprintId: 'BP005',
      trainingRunId: 'run-urza-test',
      checksum: compiled.checksum,
      guardDigest: compiled.guardDigest,
    });
    expect(ready.prewarmP50Ms).toBeGreaterThan(0);
    expect(ready.prewarmP95Ms).toBeGreaterThanOrEqual(ready.prewarmP50Ms);
    console.log(
      `urza prefetch prewarm (BP005 dense 256, 4 passes): p50 ${ready.prewarmP50Ms.toFixed(3)} ms, p95 ${ready.prewarmP95Ms.toFixed(3)} ms`,
    );
    expect(worker.stats()).toMatchObject({ hits: 1, misses: 0, errors: 0, invalid: 0 });

    // The reference resolves through the runtime to the same artifact.
    const ref = parseUrzaArtifactRef(ready.artifactRef);
    expect(ref).toEqual({ blueprintId: 'BP005', siteKey: SITE_KEY });
    const fetched = await new UrzaRuntime({ library: harness.library, catalog }).fetchKernel(ref.blueprintId, ref.siteKey, {
      scope: 'kasmina-seed-0',
    });
    fetched.module.dispose();
    expect(fetched.checksum).toBe(ready.checksum);
  });

  it('prewarms an artifact once per checksum: a repeat is answered with its timings, off the module rebuild', async () => {
    const harness = await setup();
    const worker = await harness.worker();
    const first = (await ask(harness)) as KernelArtifactReady;
    const again = (await ask(harness)) as KernelArtifactReady;
    expect(isMessage(again, KernelArtifactReadySchema)).toBe(true);
    expect(again.requestId).not.toBe(first.requestId);
    expect([again.checksum, again.prewarmP50Ms, again.prewarmP95Ms]).toEqual([first.checksum, first.prewarmP50Ms, first.prewarmP95Ms]);
    expect(worker.stats()).toMatchObject({ hits: 2, prewarms: 1 });

    // Without the cache every request loads and prewarms the artifact.
    const uncached = await setup();
    const plain = await uncached.worker(undefined, { prewarmCacheSize: 0 });
    await ask(uncached);
    await ask(uncached);
    expect(plain.stats()).toMatchObject({ hits: 2, prewarms: 2 });
    expect(() => new UrzaPrefetchWorker({ ...plainOptions(uncached), prewarmCacheSize: -1 })).toThrow(/prewarmCacheSize/);
  });

  it('answers an unknown blueprint with NOT_FOUND', async () => {
    const harness = await setup();
    const worker = await harness.worker();
    const error = asError(await ask(harness, { blueprintId: 'BP999' }));
    expect(error.code).toBe(KernelErrorCode.NOT_FOUND);
    expect(error.reason).toMatch(/^missing_artifact: blueprint BP999 is not in Urza/);
    expect(error.trainingRunId).toBe('run-urza-test');
    expect(worker.stats()).toMatchObject({ hits: 0, misses: 1 });
  });

  it('answers a corrupted artifact with CHECKSUM_MISMATCH, and the library reports the CRITICAL integrity failure', async () => {
    const harness = await setup();
    const worker = await harness.worker();
    const file = path.join(harness.library.options.artifactDir, `${compiled.checksum}.esa`);
    const bytes = await readFile(file);
    bytes[40] = (bytes[40] ?? 0) ^ 0x10;
    await writeFile(file, bytes);

    const error = asError(await ask(harness));
    expect(error.code).toBe(KernelErrorCode.CHECKSUM_MISMATCH);
    expect(error.reason).toMatch(/^checksum_mismatch: /);
    expect(worker.stats()).toMatchObject({ hits: 0, errors: 1 });
    const events = harness.libraryTelemetry.events('integrity_failure');
    expect(events).toHaveLength(1);
    expect(events[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(events[0]?.attributes).toMatchObject({ blueprint_id: 'BP005', site_key: SITE_KEY, reason: 'checksum_mismatch' });
  });

  it('answers a request without a training run id with INVALID_REQUEST and a dependency-guard violation', async () => {
    const harness = await setup();
    const worker = await harness.worker();
    const error = asError(await ask(harness, { trainingRunId: '' }));
    expect(error.code).toBe(KernelErrorCode.INVALID_REQUEST);
    expect(error.reason).toBe('invalid_request: missing training_run_id');
    expect(worker.stats()).toMatchObject({ hits: 0, invalid: 1 });
    const violations = harness.workerTelemetry.events(DependencyGuardEvent.VIOLATION);
    expect(violations).toHaveLength(1);
    expect(violations[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(violations[0]?.attributes).toMatchObject({ subsystem: 'urza', artifact_type: 'training_run_id' });
  });

  it('refuses to guess between several site artifacts unless the seed names one', async () => {
    const harness = await setup();
    await harness.library.save(bp005Save(catalog, compiled, 'dense:256:b'));
    await harness.worker();
    const ambiguous = asError(await ask(harness, { seedId: 'seed-0' }));
    expect(ambiguous.code).toBe(KernelErrorCode.INVALID_REQUEST);
    expect(ambiguous.reason).toMatch(/^ambiguous: /);
    const named = await ask(harness, { seedId: 'dense:256:b' });
    expect(isMessage(named, KernelArtifactReadySchema)).toBe(true);
    expect(parseUrzaArtifactRef((named as KernelArtifactReady).artifactRef).siteKey).toBe('dense:256:b');
  });

  it('shares one group between two workers: every request answered exactly once, both workers busy', async () => {
    const harness = await setup();
    const a = await harness.worker('urza-prefetch-a');
    const b = await harness.worker('urza-prefetch-b');
    const requests = Array.from({ length: 10 }, () => request());
    for (const r of requests) await harness.bus.publish(r);
    await Promise.all(requests.map((r) => answerTo(harness, r.requestId, 15_000)));
    expect(harness.answers.every((answer) => isMessage(answer, KernelArtifactReadySchema))).toBe(true);
    expect(new Set(harness.answers.map((answer) => answer.requestId)).size).toBe(harness.answers.length);
    expect(a.stats().hits + b.stats().hits).toBe(requests.length);
    expect(a.stats().hits).toBeGreaterThan(0);
    expect(b.stats().hits).toBeGreaterThan(0);
  });

  it('starts once and closes idempotently', async () => {
    const harness = await setup();
    const worker = await harness.worker();
    expect(worker.state).toBe('running');
    await expect(worker.start()).rejects.toThrow(/cannot start/);
    const first = worker.close();
    expect(worker.close()).toBe(first);
    await first;
    expect(worker.state).toBe('closed');
  });
});
