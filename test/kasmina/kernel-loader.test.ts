/**
 * How kernels reach seeds: fetched at once under the kernel-fetch breaker, or requested from
 * Urza over Oona and fetched when the answer comes — never inside `advance`.
 */
import { describe, expect, it } from 'vitest';
import { AsyncWorker, FakeClock, MemoryTelemetrySink } from '../../src/core/index.js';
import { KasminaMetric, SeedEvent } from '../../src/kasmina/index.js';
import { SeedLifecycleStage, TelemetryLevel } from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { UrzaPrefetchWorker } from '../../src/urza/index.js';
import { catalog, RING, type KasminaHarness } from './fixtures/harness.js';
import { germinateCommand, setup } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

/** `kasmina.prefetch.inflight` on the last global packet. */
function inflight(h: KasminaHarness): number | undefined {
  const global = h.telemetry.packets.filter((p) => p.packetId.startsWith('kasmina-global-')).at(-1);
  return global?.metrics.find((m) => m.name === KasminaMetric.PREFETCH_INFLIGHT)?.value;
}

describe('kernels fetched at once', () => {
  it('a fetch that fails opens the kernel-fetch breaker after three failures: later germinations are denied without a fetch', async () => {
    const { h, context } = await setup(cleanups);
    // BP002 fits the sites but is not in this library: every fetch fails. Each seed is culled
    // (G1) and its site's embargo (5 steps) is over by the next germination, 10 steps later.
    const seeds = [
      ['a', 'hidden1'],
      ['b', 'hidden2'],
      ['c', 'hidden1'],
      ['d', 'hidden2'],
    ] as const;
    for (const [index, [seedId, siteId]] of seeds.entries()) {
      await h.kasmina.apply(h.sign(germinateCommand(seedId, siteId, 'BP002')), context(10 * index));
      await h.kasmina.advance(context(10 * index + 9));
    }
    // Three failures open the breaker: the fourth germination never reaches the library.
    expect(h.fetcher.stats().failed).toBe(3);
    const errors = h.telemetry
      .events(SeedEvent.GATE_EVENT)
      .filter((e) => e.attributes['passed'] === 'false')
      .map((e) => e.attributes['kernel_error']);
    expect(errors).toEqual([
      'kernel fetch failed: ESPER_URZA_NOT_FOUND',
      'kernel fetch failed: ESPER_URZA_NOT_FOUND',
      'kernel fetch failed: ESPER_URZA_NOT_FOUND',
      'kernel fetch breaker open',
    ]);
    expect(h.telemetry.events(SeedEvent.BREAKER_EVENT).at(-1)?.attributes['action']).toBe('denied');
  });
});

describe('kernels through a prefetch', () => {
  it('a prefetch nobody answers raises CRITICAL prefetch_timeout and the seed fails G1; reset cancels inflight prefetches', async () => {
    const clock = new FakeClock({ wallMs: Date.now() });
    const busTelemetry = new MemoryTelemetrySink();
    const bus = new StreamBus({
      store: new MemoryStreamStore(),
      keyRing: RING,
      telemetry: busTelemetry,
      blockMs: 20,
      reclaimIntervalMs: 50,
    });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'kasmina-prefetch-test', maxConcurrency: 8 });
    cleanups.push(() => worker.close().then(() => undefined));
    // Deadline 2 × 75 ms = 150 ms.
    const { h, host, context } = await setup(cleanups, {
      prefetch: { bus, worker },
      clock,
      settings: { kernelLatencyBudgetMs: 75, prefetchTimeoutFactor: 2 },
    });
    const prefetchTelemetry = h.telemetry;
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_GERMINATED);
    const deadline = Date.now() + 5_000;
    let step = 1;
    while (h.kasmina.stageOf('s1') === SeedLifecycleStage.SEED_STAGE_GERMINATED && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      await h.kasmina.advance(context(step));
      step += 1;
    }
    const timeout = prefetchTelemetry.events('prefetch_timeout');
    expect(timeout).toHaveLength(1);
    expect(timeout[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    expect(h.kasmina.seedReports()[0]?.fateReason).toBe('SEED_GATE_G1_GRADIENT_HEALTH: kernel not attached');
    expect(h.telemetry.events(SeedEvent.GATE_EVENT).find((e) => e.attributes['passed'] === 'false')?.attributes['kernel_error']).toBe(
      'kernel prefetch failed: ESPER_KASMINA_PREFETCH_TIMEOUT',
    );
    expect(host.hooks.size).toBe(0);

    // A second request stays inflight until the registry reset cancels it.
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden2')), context(step));
    await h.kasmina.advance(context(step));
    expect(inflight(h)).toBe(1);
    h.kasmina.resetRegistry();
    await h.kasmina.advance(context(step + 1));
    expect(inflight(h)).toBe(0);
    expect(prefetchTelemetry.events('prefetch_canceled').length).toBeGreaterThanOrEqual(1);
    expect(h.telemetry.events(SeedEvent.REGISTRY_RESET)).toHaveLength(1);
  });
});

describe('kernel loads stay off the step', () => {
  it('a prefetch answer starts the kernel load; the next advance grafts it without any fetch inside advance', async () => {
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'kasmina-prefetch-ok', maxConcurrency: 8 });
    cleanups.push(() => worker.close().then(() => undefined));
    const { h, host, context } = await setup(cleanups, { prefetch: { bus, worker } });
    const urza = new UrzaPrefetchWorker({ bus, library: h.library, catalog, telemetry: new MemoryTelemetrySink(), prewarmPasses: 1 });
    cleanups.push(() => urza.close());
    await urza.start();

    let advancing = false;
    const fetchesInAdvance: string[] = [];
    const fetches: string[] = [];
    const fetch = h.fetcher.fetch.bind(h.fetcher);
    h.fetcher.fetch = (blueprintId, siteKey, scope, options) => {
      fetches.push(blueprintId);
      if (advancing) fetchesInAdvance.push(blueprintId);
      return fetch(blueprintId, siteKey, scope, options);
    };
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    expect(fetches).toHaveLength(0); // the answer has not come yet
    const deadline = Date.now() + 10_000;
    let step = 1;
    while (h.kasmina.stageOf('s1') === SeedLifecycleStage.SEED_STAGE_GERMINATED && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      advancing = true;
      await h.kasmina.advance(context(step));
      advancing = false;
      step += 1;
    }
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(host.hooks.has('hidden1')).toBe(true);
    expect(fetches).toEqual(['BP001']);
    expect(fetchesInAdvance).toEqual([]);
  });
});
