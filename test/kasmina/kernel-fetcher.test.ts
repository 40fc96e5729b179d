import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink, type MetricInput } from '../../src/core/index.js';
import { KernelCache } from '../../src/kasmina/kernel-cache.js';
import { KernelFetcher, type KernelFetcherOptions, type KernelSource } from '../../src/kasmina/kernel-fetcher.js';
import { KeyedLocks } from '../../src/kasmina/locks.js';
import { KasminaEvent, KasminaMetric } from '../../src/kasmina/names.js';
import { MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { tf } from '../../src/tensor/index.js';
import { rejectionOf } from '../oona/fixtures/waits.js';
import { thrownBy } from '../support/thrown.js';
import { SITE_KEY } from '../urza/fixtures/bp005-artifact.js';
import { useBp005Artifact } from './fixtures/hooks.js';

const bp005 = useBp005Artifact();
const { catalog } = bp005;

interface Harness {
  readonly fetcher: KernelFetcher;
  readonly cache: KernelCache;
  readonly telemetry: MemoryTelemetrySink;
}

function harness(source: KernelSource, overrides: Partial<KernelFetcherOptions> = {}): Harness {
  const clock = overrides.clock ?? new FakeClock();
  const cache = overrides.cache ?? new KernelCache({ capacity: 4, ttlSeconds: 60, clock });
  const telemetry = new MemoryTelemetrySink();
  const fetcher = new KernelFetcher({
    source,
    cache,
    locks: new KeyedLocks({ clock }),
    catalog,
    clock,
    latencyBudgetMs: 250,
    lockContentionWarnMs: 100,
    telemetry,
    trainingRunId: 'run-fetcher-test',
    ...overrides,
  });
  return { fetcher, cache, telemetry };
}

/** A source that counts loads and can hold them until released. */
class GatedSource implements KernelSource {
  loads = 0;
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => {};
  #started: (() => void) | undefined;

  constructor(readonly inner: KernelSource) {}

  hold(): Promise<void> {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
    return new Promise((resolve) => {
      this.#started = resolve;
    });
  }

  release(): void {
    this.#open();
  }

  async load(blueprintId: string, siteKey: string): ReturnType<KernelSource['load']> {
    this.loads += 1;
    this.#started?.();
    await this.#gate;
    return this.inner.load(blueprintId, siteKey);
  }
}

function metric(metrics: MetricInput[], name: string, stat?: string): number | undefined {
  return metrics.find((m) => m.name === name && (stat === undefined || m.attributes?.['stat'] === stat))?.value;
}

function outputOf(module: { apply(x: tf.Tensor): tf.Tensor }): Float32Array {
  return tf.tidy(() => module.apply(tf.ones([2, 256])).dataSync() as Float32Array);
}

describe('KernelFetcher', () => {
  it('accepts an UrzaLibrary as its KernelSource', async () => {
    const library = await bp005.library();
    const source: KernelSource = library;
    expect(typeof source.load).toBe('function');
  });

  it('gives two seeds of one blueprint distinct modules with distinct variables; the second is a cache hit', async () => {
    const library = await bp005.library();
    const { fetcher, cache } = harness(library);
    const first = await fetcher.fetch('BP005', SITE_KEY, 'kasmina/seed-a');
    const second = await fetcher.fetch('BP005', SITE_KEY, 'kasmina/seed-b');
    try {
      expect(first.cacheHit).toBe(false);
      expect(second.cacheHit).toBe(true);
      expect(first.module).not.toBe(second.module);
      expect(first.module.variables.length).toBeGreaterThan(0);
      const firstVars = new Set(first.module.variables);
      expect(second.module.variables.some((v) => firstVars.has(v))).toBe(false);
      expect(first.module.variables.every((v) => v.name.startsWith('kasmina/seed-a/'))).toBe(true);
      expect(second.module.variables.every((v) => v.name.startsWith('kasmina/seed-b/'))).toBe(true);
      // Same artifact, same weights.
      expect(outputOf(second.module)).toEqual(outputOf(first.module));
      for (const fetched of [first, second]) {
        expect(fetched).toMatchObject({
          checksum: bp005.compiled.checksum,
          guardDigest: bp005.compiled.guardDigest,
          waitedMs: 0,
          overBudget: false,
        });
      }
      // Training one seed never moves the other's weights.
      const trained = first.module.variables[0] as tf.Variable;
      tf.tidy(() => trained.assign(tf.zerosLike(trained)));
      expect(outputOf(second.module)).not.toEqual(outputOf(first.module));
      expect(cache.stats()).toMatchObject({ size: 1, hits: 1, misses: 1 });
      expect(fetcher.stats()).toMatchObject({ fetched: 2, failed: 0, cacheHits: 1 });
    } finally {
      first.module.dispose();
      second.module.dispose();
    }
  });

  it('reports the cache and fetch metrics by their reference names', async () => {
    const library = await bp005.library();
    const { fetcher } = harness(library);
    expect(metric(fetcher.metrics(), KasminaMetric.KERNEL_FETCH_LATENCY_MS)).toBeUndefined();
    const a = await fetcher.fetch('BP005', SITE_KEY, 'metrics/a');
    const b = await fetcher.fetch('BP005', SITE_KEY, 'metrics/b');
    a.module.dispose();
    b.module.dispose();
    const metrics = fetcher.metrics();
    expect(metric(metrics, KasminaMetric.CACHE_KERNEL_SIZE)).toBe(1);
    expect(metric(metrics, KasminaMetric.CACHE_KERNEL_HIT_RATE)).toBe(0.5);
    expect(metric(metrics, KasminaMetric.CACHE_KERNEL_EVICTIONS)).toBe(0);
    expect(metric(metrics, KasminaMetric.CACHE_LOCK_WAIT_MS, 'last')).toBe(0);
    expect(metric(metrics, KasminaMetric.CACHE_LOCK_WAIT_MS, 'max')).toBe(0);
    expect(metric(metrics, KasminaMetric.KERNEL_FETCH_LATENCY_MS)).toBe(b.latencyMs);
    expect(metrics.every((m) => m.unit.length > 0)).toBe(true);
  });

  it('refuses a corrupt artifact with URZA_INTEGRITY_FAILURE and caches nothing', async () => {
    const libraryTelemetry = new MemoryTelemetrySink();
    const library = await bp005.library(libraryTelemetry);
    const file = path.join(library.options.artifactDir, `${bp005.compiled.checksum}.esa`);
    const bytes = await readFile(file);
    bytes[40] = (bytes[40] ?? 0) ^ 0x10;
    await writeFile(file, bytes);

    const { fetcher, cache } = harness(library);
    const error = await rejectionOf(fetcher.fetch('BP005', SITE_KEY, 'corrupt/a'));
    expect(isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)).toBe(true);
    expect(cache.size).toBe(0);
    expect(fetcher.stats()).toMatchObject({ fetched: 0, failed: 1 });
    const events = libraryTelemetry.events('integrity_failure');
    expect(events).toHaveLength(1);
    expect(events[0]?.level).toBe(TelemetryLevel.CRITICAL);
  });

  it('propagates URZA_NOT_FOUND for an unknown blueprint, with no fallback kernel', async () => {
    const library = await bp005.library();
    const { fetcher, cache } = harness(library);
    const error = await rejectionOf(fetcher.fetch('BP999', SITE_KEY, 'missing/a'));
    expect(isEsperError(error, ErrorCode.URZA_NOT_FOUND)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('drops cached bytes that cannot be rebuilt (TEZZERET_ARTIFACT_INVALID)', async () => {
    const garbage: KernelSource = {
      load: () => Promise.resolve({ bytes: new Uint8Array([1, 2, 3, 4]), record: { checksum: 'x', guardDigest: 'y', siteKey: SITE_KEY } }),
    };
    const { fetcher, cache } = harness(garbage);
    const error = await rejectionOf(fetcher.fetch('BP005', SITE_KEY, 'garbage/a'));
    expect(isEsperError(error, ErrorCode.TEZZERET_ARTIFACT_INVALID)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('loads once under contention and raises a HIGH-priority WARNING cache_lock_contention for a long wait', async () => {
    const library = await bp005.library();
    const clock = new FakeClock();
    const source = new GatedSource(library);
    const { fetcher, telemetry } = harness(source, { clock });
    const started = source.hold();
    const first = fetcher.fetch('BP005', SITE_KEY, 'contention/a');
    const second = fetcher.fetch('BP005', SITE_KEY, 'contention/b');
    await started;
    clock.advance(150);
    source.release();
    const [a, b] = await Promise.all([first, second]);
    a.module.dispose();
    b.module.dispose();
    expect(source.loads).toBe(1);
    expect(a).toMatchObject({ cacheHit: false, waitedMs: 0 });
    expect(b).toMatchObject({ cacheHit: true, waitedMs: 150 });

    const events = telemetry.events(KasminaEvent.CACHE_LOCK_CONTENTION);
    expect(events).toHaveLength(1);
    expect(events[0]?.level).toBe(TelemetryLevel.WARNING);
    expect(events[0]?.attributes).toMatchObject({ blueprint_id: 'BP005', site_key: SITE_KEY, waited_ms: '150', threshold_ms: '100' });
    const packet = telemetry.packets[0];
    expect(packet?.priority).toBe(MessagePriority.HIGH);
    expect(packet?.trainingRunId).toBe('run-fetcher-test');
    expect(metric(fetcher.metrics(), KasminaMetric.CACHE_LOCK_WAIT_MS, 'max')).toBe(150);
    expect(fetcher.stats().contentionEvents).toBe(1);
  });

  it('stays quiet for a lock wait at or under the threshold', async () => {
    const library = await bp005.library();
    const clock = new FakeClock();
    const source = new GatedSource(library);
    const { fetcher, telemetry } = harness(source, { clock });
    const started = source.hold();
    const first = fetcher.fetch('BP005', SITE_KEY, 'quiet/a');
    const second = fetcher.fetch('BP005', SITE_KEY, 'quiet/b');
    await started;
    clock.advance(100);
    source.release();
    for (const fetched of await Promise.all([first, second])) fetched.module.dispose();
    expect(telemetry.packets).toHaveLength(0);
  });

  it('reloads from the source once the cached bytes expire, and flags a fetch over its budget', async () => {
    const library = await bp005.library();
    const clock = new FakeClock();
    const source = new GatedSource(library);
    const { fetcher } = harness(source, { clock, cache: new KernelCache({ ttlSeconds: 1, clock }) });
    (await fetcher.fetch('BP005', SITE_KEY, 'ttl/a')).module.dispose();
    clock.advance(1_001);
    const started = source.hold();
    const reload = fetcher.fetch('BP005', SITE_KEY, 'ttl/b');
    await started;
    clock.advance(300);
    source.release();
    const fetched = await reload;
    fetched.module.dispose();
    expect(source.loads).toBe(2);
    expect(fetched).toMatchObject({ cacheHit: false, latencyMs: 300, overBudget: true });
  });

  it('rejects empty ids and scopes, and bad thresholds, naming the field', async () => {
    const library = await bp005.library();
    const { fetcher } = harness(library);
    await expect(fetcher.fetch('', SITE_KEY, 's')).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
      details: { field: 'blueprintId' },
    });
    await expect(fetcher.fetch('BP005', SITE_KEY, '')).rejects.toMatchObject({ details: { field: 'scope' } });
    expect(thrownBy(() => harness(library, { latencyBudgetMs: 0 }), ErrorCode.INVALID_ARGUMENT).details).toMatchObject({
      field: 'latencyBudgetMs',
    });
    expect(thrownBy(() => harness(library, { lockContentionWarnMs: Number.NaN })).details).toMatchObject({ field: 'lockContentionWarnMs' });
  });
});
