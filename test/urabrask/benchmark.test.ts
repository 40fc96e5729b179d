import { create, fromBinary, isMessage, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  BenchmarkReportSchema,
  BlueprintBenchmarkSchema,
  BusMessageType,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  type BenchmarkReport,
} from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { BENCHMARK_DEFAULTS, benchmarkArtifact, publishBenchmark } from '../../src/urabrask/benchmark.js';

const RING = new KeyRing([{ keyId: 'k1', secret: new TextEncoder().encode('urabrask-benchmark-test-secret-0123') }]);
const SITE = create(SeedSiteDescriptorSchema, { siteId: 'dense-64', kind: SeedSiteKind.DENSE, shape: [64] });
const catalog = new KarnCatalog();
let artifact: CompiledArtifact;
let tensorsBefore = 0;

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
  const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
  artifact = await compiler.compile(catalog.get('BP009'), catalog.defaultParameters('BP009'), SITE, { seed: 7 });
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

describe('benchmarkArtifact', () => {
  it('times the default profiles in order with 0 < p50 ≤ p95 and positive throughput, leaking no tensor', () => {
    const before = tf.memory().numTensors;
    const benchmark = benchmarkArtifact(artifact.bytes, { catalog });
    expect(tf.memory().numTensors).toBe(before);
    expect(benchmark.version).toBe(1);
    expect(benchmark.blueprintId).toBe('BP009');
    expect(benchmark.device).toBe('cpu-wasm-simd');
    expect(benchmark.runtimeVersion).toBe(tf.version_core);
    expect(benchmark.profiles.map((p) => p.name)).toEqual(BENCHMARK_DEFAULTS.profiles.map((p) => p.name));
    for (const profile of benchmark.profiles) {
      expect(profile.p50LatencyMs).toBeGreaterThan(0);
      expect(profile.p95LatencyMs).toBeGreaterThanOrEqual(profile.p50LatencyMs);
      expect(profile.throughputSamplesPerS).toBeGreaterThan(0);
    }
  });

  it('reports higher throughput at batch 64 than at batch 1 for a dense blueprint', () => {
    const benchmark = benchmarkArtifact(artifact.bytes, { catalog, samples: 15 });
    const byName = new Map(benchmark.profiles.map((p) => [p.name, p]));
    expect(byName.get('batch_64')!.throughputSamplesPerS).toBeGreaterThan(byName.get('batch_1')!.throughputSamplesPerS);
  });

  it('keeps custom profiles in the given order and round-trips through protobuf binary', () => {
    const benchmark = benchmarkArtifact(artifact.bytes, {
      catalog,
      profiles: [
        { name: 'b8', batch: 8 },
        { name: 'b2', batch: 2 },
      ],
      samples: 3,
      warmup: 0,
    });
    expect(benchmark.profiles.map((p) => p.name)).toEqual(['b8', 'b2']);
    const decoded = fromBinary(BlueprintBenchmarkSchema, toBinary(BlueprintBenchmarkSchema, benchmark));
    expect(decoded).toEqual(benchmark);
  });

  it('rejects no profiles, duplicate names, a zero batch and zero samples', () => {
    const bad = [
      { profiles: [] },
      {
        profiles: [
          { name: 'a', batch: 1 },
          { name: 'a', batch: 2 },
        ],
      },
      { profiles: [{ name: 'a', batch: 0 }] },
      { samples: 0 },
    ];
    for (const options of bad) {
      let error: unknown;
      try {
        benchmarkArtifact(artifact.bytes, { catalog, ...options });
      } catch (caught) {
        error = caught;
      }
      expect(isEsperError(error) && error.code === ErrorCode.INVALID_ARGUMENT).toBe(true);
    }
  });
});

describe('publishBenchmark', () => {
  it('publishes BenchmarkReport on the bus for a subscriber to receive', async () => {
    const bus = new StreamBus({
      store: new MemoryStreamStore(),
      keyRing: RING,
      telemetry: new MemoryTelemetrySink(),
      blockMs: 20,
      reclaimIntervalMs: 20,
    });
    const events: BenchmarkReport[] = [];
    try {
      const subscription = bus.subscribe({
        group: 'tamiyo',
        consumer: 'tamiyo-0',
        types: [BusMessageType.BENCHMARK_REPORT],
        handler: (delivery) => {
          if (isMessage(delivery.message, BenchmarkReportSchema)) events.push(delivery.message);
        },
      });
      await subscription.ready;
      const benchmark = benchmarkArtifact(artifact.bytes, { catalog, samples: 2, warmup: 1 });
      await publishBenchmark(bus, benchmark);
      const start = Date.now();
      while (events.length < 1) {
        if (Date.now() - start > 10_000) throw new Error('BenchmarkReport not delivered within 10 s');
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(events[0]!.benchmark).toEqual(benchmark);
    } finally {
      await bus.close();
    }
  });
});
