/**
 * The Urza prefetch round trip over `StreamBus` on `RedisStreamStore` (the test run's Redis), as
 * two processes would run it: a "Kasmina" bus and an "Urza" bus, each on its own Redis
 * connection, sharing a unique stream prefix (`esper-test:<uuid>:`) whose keys are all
 * deleted after each test. Kasmina asks with `bus.request`, waiting on the reply type it
 * expects (READY and ERROR are different message types). Tests run one at a time with an
 * explicit timeout.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, isMessage } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTelemetrySink } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
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
import { RedisStreamStore } from '../../src/oona/redis-stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { KeyRing } from '../../src/security/index.js';
import { tf } from '../../src/tensor/index.js';
import { type CompiledArtifact } from '../../src/tezzeret/index.js';
import { parseUrzaArtifactRef } from '../../src/urza/artifact-ref.js';
import { UrzaLibrary } from '../../src/urza/library.js';
import { bp005Save, compileBp005, SITE_KEY } from './fixtures/bp005-artifact.js';
import { UrzaPrefetchWorker } from '../../src/urza/prefetch-worker.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';

const REDIS_URL = testRedisUrl();
const TEST_TIMEOUT_MS = 30_000;
const REPLY_TIMEOUT_MS = 10_000;
const RING = new KeyRing([{ keyId: 'k1', secret: Buffer.from('urza-prefetch-redis-secret-0123456789', 'utf8') }]);
const catalog = new KarnCatalog();

let admin: Redis;
let compiled: CompiledArtifact;
let tensorsBefore = 0;
const cleanups: (() => Promise<void>)[] = [];

interface Harness {
  /** Kasmina's side: sends requests, receives replies on its own connection. */
  readonly kasmina: StreamBus;
  readonly library: UrzaLibrary;
  readonly libraryTelemetry: MemoryTelemetrySink;
  readonly worker: UrzaPrefetchWorker;
}

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
  compiled = await compileBp005(catalog);
  tensorsBefore = tf.memory().numTensors;
});

afterAll(async () => {
  await admin.quit();
  // Every prewarm disposed the module it loaded.
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

afterEach(async () => {
  // Reverse order of creation; every step runs even if one fails.
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
});

function redisBus(streamPrefix: string): StreamBus {
  const store = new RedisStreamStore({ url: REDIS_URL });
  const bus = new StreamBus({
    store,
    ownsStore: true,
    streamPrefix,
    keyRing: RING,
    telemetry: new MemoryTelemetrySink(),
    blockMs: 50,
    readCount: 1,
  });
  cleanups.push(() => bus.close());
  return bus;
}

async function setup(): Promise<Harness> {
  const streamPrefix = `esper-test:${randomUUID()}:`;
  cleanups.push(async () => {
    await deleteKeysWithPrefix(admin, streamPrefix);
  });
  const root = await mkdtemp(path.join(tmpdir(), 'urza-prefetch-redis-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const libraryTelemetry = new MemoryTelemetrySink();
  const library = await UrzaLibrary.open({ rootDir: root, telemetry: libraryTelemetry });
  cleanups.push(() => library.close());
  await library.save(bp005Save(catalog, compiled));
  const urza = redisBus(streamPrefix);
  const kasmina = redisBus(streamPrefix);
  const worker = new UrzaPrefetchWorker({ bus: urza, library, catalog, telemetry: new MemoryTelemetrySink(), prewarmPasses: 3 });
  cleanups.push(() => worker.close());
  await worker.start();
  return { kasmina, library, libraryTelemetry, worker };
}

function request(fields: Partial<KernelPrefetchRequest> = {}): KernelPrefetchRequest {
  return create(KernelPrefetchRequestSchema, {
    requestId: `prefetch-${randomUUID()}`,
    blueprintId: 'BP005',
    trainingRunId: 'run-urza-redis-test',
    seedId: 'seed-0',
    issuedAt: timestampFromMs(Date.now()),
    ...fields,
  });
}

async function askReady(harness: Harness, message: KernelPrefetchRequest): Promise<KernelArtifactReady> {
  const delivery = await harness.kasmina.request(message, {
    replyType: BusMessageType.KERNEL_PREFETCH_READY,
    timeoutMs: REPLY_TIMEOUT_MS,
  });
  if (!isMessage(delivery.message, KernelArtifactReadySchema)) throw new Error(`expected READY, got ${delivery.message.$typeName}`);
  return delivery.message;
}

async function askError(harness: Harness, message: KernelPrefetchRequest): Promise<KernelArtifactError> {
  const delivery = await harness.kasmina.request(message, {
    replyType: BusMessageType.KERNEL_PREFETCH_ERROR,
    timeoutMs: REPLY_TIMEOUT_MS,
  });
  if (!isMessage(delivery.message, KernelArtifactErrorSchema)) throw new Error(`expected ERROR, got ${delivery.message.$typeName}`);
  return delivery.message;
}

async function corruptArtifact(library: UrzaLibrary): Promise<void> {
  const file = path.join(library.options.artifactDir, `${compiled.checksum}.esa`);
  const bytes = await readFile(file);
  bytes[40] = (bytes[40] ?? 0) ^ 0x10;
  await writeFile(file, bytes);
}

describe('UrzaPrefetchWorker over StreamBus on RedisStreamStore', () => {
  it(
    'answers a Kasmina request with KernelArtifactReady carrying the verified checksum, over Redis',
    async () => {
      const harness = await setup();
      const message = request();
      const ready = await askReady(harness, message);
      expect(ready).toMatchObject({
        requestId: message.requestId,
        blueprintId: 'BP005',
        trainingRunId: 'run-urza-redis-test',
        checksum: compiled.checksum,
        guardDigest: compiled.guardDigest,
      });
      expect(parseUrzaArtifactRef(ready.artifactRef)).toEqual({ blueprintId: 'BP005', siteKey: SITE_KEY });
      expect(ready.prewarmP50Ms).toBeGreaterThan(0);
      expect(ready.prewarmP95Ms).toBeGreaterThanOrEqual(ready.prewarmP50Ms);
      expect(harness.worker.stats()).toMatchObject({ hits: 1, misses: 0, errors: 0, invalid: 0 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'answers an unknown blueprint with KernelArtifactError NOT_FOUND (missing_artifact)',
    async () => {
      const harness = await setup();
      const message = request({ blueprintId: 'BP999' });
      const error = await askError(harness, message);
      expect(error.requestId).toBe(message.requestId);
      expect(error.code).toBe(KernelErrorCode.NOT_FOUND);
      expect(error.reason).toMatch(/^missing_artifact: blueprint BP999 is not in Urza/);
      expect(error.trainingRunId).toBe('run-urza-redis-test');
      expect(harness.worker.stats()).toMatchObject({ hits: 0, misses: 1, errors: 0 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'answers a corrupted artifact with KernelArtifactError CHECKSUM_MISMATCH, and the library reports a CRITICAL integrity failure',
    async () => {
      const harness = await setup();
      await corruptArtifact(harness.library);
      const message = request();
      const error = await askError(harness, message);
      expect(error.requestId).toBe(message.requestId);
      expect(error.code).toBe(KernelErrorCode.CHECKSUM_MISMATCH);
      expect(error.reason).toMatch(/^checksum_mismatch: /);
      expect(harness.worker.stats()).toMatchObject({ hits: 0, misses: 0, errors: 1 });
      const events = harness.libraryTelemetry.events('integrity_failure');
      expect(events).toHaveLength(1);
      expect(events[0]?.level).toBe(TelemetryLevel.CRITICAL);
      expect(events[0]?.attributes).toMatchObject({ blueprint_id: 'BP005', site_key: SITE_KEY, reason: 'checksum_mismatch' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'keeps the two failures apart: different codes and different reason words on one bus',
    async () => {
      const harness = await setup();
      const unknown = await askError(harness, request({ blueprintId: 'BP999' }));
      await corruptArtifact(harness.library);
      const corrupted = await askError(harness, request());
      expect(unknown.code).not.toBe(corrupted.code);
      expect([unknown.code, corrupted.code]).toEqual([KernelErrorCode.NOT_FOUND, KernelErrorCode.CHECKSUM_MISMATCH]);
      const reasonWord = (reason: string): string => reason.split(':')[0] ?? '';
      expect([reasonWord(unknown.reason), reasonWord(corrupted.reason)]).toEqual(['missing_artifact', 'checksum_mismatch']);
      expect(harness.worker.stats()).toMatchObject({ hits: 0, misses: 1, errors: 1 });
    },
    TEST_TIMEOUT_MS,
  );
});
