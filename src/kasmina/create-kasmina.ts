/**
 * Kasmina builds itself: {@link createKasmina} turns the `kasmina` settings and the
 * collaborators other subsystems own into a ready executor with its kernel cache, locks,
 * fetcher, memory governor and (optionally) prefetch coordinator, and one `close()` for all
 * of it.
 */
import { closeOnce, runCleanup, systemClock, type AsyncWorker, type Clock, type EsperSettings, type TelemetrySink } from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import type { Bus } from '../oona/index.js';
import type { CommandVerifier } from '../security/index.js';
import type { HostModel } from '../tolaria/index.js';
import { KasminaExecutor } from './executor.js';
import { KernelCache } from './kernel-cache.js';
import { KernelFetcher, type KernelSource } from './kernel-fetcher.js';
import { KeyedLocks } from './locks.js';
import { MemoryGovernor } from './memory.js';
import { PrefetchCoordinator } from './prefetch.js';

/** Kasmina's settings: the `kasmina` section of `EsperSettings`. */
export type KasminaSettings = EsperSettings['kasmina'];

/** What Kasmina is given; none of it is closed by Kasmina. */
export interface KasminaDeps {
  /** The host seeds grow in. */
  readonly host: HostModel;
  readonly trainingRunId: string;
  readonly telemetry: TelemetrySink;
  /** Which blueprints exist and which sites they fit; rebuilds modules from artifacts. */
  readonly catalog: KarnCatalog;
  /** Where verified kernel artifacts are loaded from (Urza's library). */
  readonly kernels: KernelSource;
  /** Verifies every command before Kasmina acts on it (its nonce ledger is the run's). */
  readonly verifier: CommandVerifier;
  /**
   * Ask Urza's prefetch worker for each kernel over this bus, waiting on this worker,
   * instead of fetching at once (the distributed path). The consumer group is
   * `kasmina-prefetch-<training run id>`.
   */
  readonly prefetch?: { readonly bus: Bus; readonly worker: AsyncWorker };
  /** Whether latency budgets fail gates (settings `core.latencyBudgets`). @default 'enforce' */
  readonly latencyBudgets?: 'enforce' | 'observe';
  /** @default systemClock */
  readonly clock?: Clock;
}

/** A built Kasmina. */
export interface Kasmina extends AsyncDisposable {
  /** Tolaria's executor. */
  readonly executor: KasminaExecutor;
  /** The kernel fetcher (its stats and metrics). */
  readonly fetcher: KernelFetcher;
  /**
   * Closes what {@link createKasmina} created, in reverse order: the executor (final
   * packets, seeds terminated or culled), the prefetch coordinator, the kernel cache. Every
   * step runs even if one fails; it rejects with the failure, or an `AggregateError` of all
   * of them when several failed. Idempotent (the first call's promise).
   */
  close(): Promise<void>;
}

/**
 * Builds Kasmina from its settings: kernel cache (`kernelCacheCapacity`,
 * `kernelCacheTtlSeconds`), per-blueprint locks, kernel fetcher (`kernelLatencyBudgetMs`,
 * `lockContentionWarnMs`), memory governor (`gcEveryEpochs`), prefetch coordinator
 * (deadline `prefetchTimeoutFactor × kernelLatencyBudgetMs`, started before this
 * resolves) and the executor with the lifecycle settings.
 * @throws EsperError `INVALID_ARGUMENT` for settings a part refuses; the prefetch
 *   subscription's errors.
 */
export async function createKasmina(settings: KasminaSettings, deps: KasminaDeps): Promise<Kasmina> {
  const clock = deps.clock ?? systemClock;
  const cache = new KernelCache({ capacity: settings.kernelCacheCapacity, ttlSeconds: settings.kernelCacheTtlSeconds, clock });
  const fetcher = new KernelFetcher({
    source: deps.kernels,
    cache,
    locks: new KeyedLocks({ clock }),
    catalog: deps.catalog,
    clock,
    latencyBudgetMs: settings.kernelLatencyBudgetMs,
    lockContentionWarnMs: settings.lockContentionWarnMs,
    telemetry: deps.telemetry,
    trainingRunId: deps.trainingRunId,
  });
  const memory = new MemoryGovernor({ cache, gcEveryEpochs: settings.gcEveryEpochs, clock });
  let prefetch: PrefetchCoordinator | undefined;
  try {
    if (deps.prefetch !== undefined) {
      prefetch = new PrefetchCoordinator({
        bus: deps.prefetch.bus,
        worker: deps.prefetch.worker,
        telemetry: deps.telemetry,
        timeoutMs: settings.prefetchTimeoutFactor * settings.kernelLatencyBudgetMs,
        consumerGroup: `kasmina-prefetch-${deps.trainingRunId}`,
        clock,
      });
      await prefetch.start();
    }
    const executor = new KasminaExecutor({
      host: deps.host,
      trainingRunId: deps.trainingRunId,
      verifier: deps.verifier,
      catalog: deps.catalog,
      fetcher,
      telemetry: deps.telemetry,
      settings: { ...settings, ...(deps.latencyBudgets === undefined ? {} : { latencyBudgets: deps.latencyBudgets }) },
      memory,
      clock,
      ...(prefetch === undefined ? {} : { prefetch }),
    });
    const coordinator = prefetch;
    const close = closeOnce(() =>
      runCleanup('kasmina', [() => executor.close(), coordinator !== undefined && (() => coordinator.close()), () => cache.clear()]),
    );
    return { executor, fetcher, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await prefetch?.close();
    throw error;
  }
}
