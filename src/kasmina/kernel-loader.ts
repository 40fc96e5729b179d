/**
 * How a seed's kernel reaches it, always off the step: fetched at once under the
 * kernel-fetch breaker, or requested from Urza over Oona (prefetch), whose answer starts the
 * same fetch; the next `advance` grafts what the load gave. There is no fallback kernel: a
 * load that fails fails the seed's G1.
 */
import { CircuitBreaker, errorLabel, errorMessage, type Clock, type MetricInput } from '../core/index.js';
import { CircuitBreakerState, SeedLifecycleStage, TelemetryLevel } from '../leyline/index.js';
import { siteKeyOf } from '../tezzeret/index.js';
import type { FetchedSeedKernel, KernelFetcher } from './kernel-fetcher.js';
import type { PrefetchCoordinator } from './prefetch.js';
import { SeedEvent, SeedMetric } from './seed-events.js';
import type { KernelLoad, Seed } from './seed.js';

/** Options of {@link KernelLoader}. */
export interface KernelLoaderOptions {
  readonly fetcher: KernelFetcher;
  /** A fetch slower than this counts as a breaker failure, in ms (unless `enforceLatency` is false). */
  readonly latencyBudgetMs: number;
  /** Whether a slow fetch counts against the breaker (`core.latencyBudgets: enforce`). */
  readonly enforceLatency: boolean;
  readonly clock: Clock;
}

/** Loads seed kernels through the fetcher, guarded by the kernel-fetch breaker. */
export class KernelLoader {
  readonly #fetcher: KernelFetcher;
  readonly #latencyBudgetMs: number;
  readonly #enforceLatency: boolean;
  readonly #breaker: CircuitBreaker;

  constructor(options: KernelLoaderOptions) {
    this.#fetcher = options.fetcher;
    this.#latencyBudgetMs = options.latencyBudgetMs;
    this.#enforceLatency = options.enforceLatency;
    this.#breaker = new CircuitBreaker({
      name: 'kasmina.kernel_fetch',
      failureThreshold: 3,
      successThreshold: 2,
      openTimeoutMs: 60_000,
      clock: options.clock,
    });
  }

  /** Fetches the seed's kernel under the breaker (I/O: never inside `advance`). */
  async load(seed: Seed, signal?: AbortSignal): Promise<KernelLoad> {
    if (!this.#breaker.allow()) {
      seed.events.push({
        description: SeedEvent.BREAKER_EVENT,
        level: TelemetryLevel.WARNING,
        attributes: { seed_id: seed.seedId, action: 'denied', breaker: 'kernel_fetch' },
      });
      return { ok: false, error: 'kernel fetch breaker open' };
    }
    let fetched: FetchedSeedKernel;
    try {
      fetched = await this.fetch(seed, signal);
    } catch (error) {
      this.#breaker.recordFailure('fetch_error');
      seed.events.push({
        description: SeedEvent.KERNEL_FETCH_FAILED,
        level: TelemetryLevel.ERROR,
        attributes: { seed_id: seed.seedId, blueprint_id: seed.blueprintId, error: errorMessage(error) },
      });
      return { ok: false, error: `kernel fetch failed: ${errorLabel(error)}` };
    }
    if (this.#enforceLatency && fetched.latencyMs > this.#latencyBudgetMs) this.#breaker.recordFailure('latency_budget_exceeded');
    else this.#breaker.recordSuccess();
    return { ok: true, fetched };
  }

  /** Fetches the seed's kernel, rebuilt under its own variable scope, without the breaker (resume). */
  fetch(seed: Seed, signal?: AbortSignal): Promise<FetchedSeedKernel> {
    return this.#fetcher.fetch(seed.blueprintId, siteKeyOf(seed.site), `kasmina/${seed.seedId}/${seed.commandId}`, {
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /**
   * Asks Urza for the seed's kernel; its answer starts the fetch off the step, and the
   * fetch's result waits in `seed.kernel.loaded` for the next `advance`. A seed that left
   * GERMINATED meanwhile gets nothing (a module that lands is freed); `seed.kernel.loading`
   * settles when all of it is over.
   */
  request(seed: Seed, prefetch: PrefetchCoordinator, trainingRunId: string): void {
    const kernel = seed.kernel;
    const ticket = prefetch.request({ seedId: seed.seedId, blueprintId: seed.blueprintId, trainingRunId });
    kernel.prefetch = ticket;
    kernel.loading = ticket.result
      .then(
        async (): Promise<KernelLoad> => {
          kernel.prefetch = undefined;
          kernel.fetching = true;
          try {
            return await this.load(seed);
          } finally {
            kernel.fetching = false;
          }
        },
        (error: unknown): KernelLoad => {
          kernel.prefetch = undefined;
          return { ok: false, error: `kernel prefetch failed: ${errorLabel(error)}` };
        },
      )
      .then((load) => {
        kernel.loading = undefined;
        if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_GERMINATED) kernel.loaded = load;
        else if (load.ok) load.fetched.module.dispose();
      });
  }

  /** Forces the kernel-fetch breaker OPEN or CLOSED (an operator's CIRCUIT_BREAKER command). */
  force(state: CircuitBreakerState.CIRCUIT_STATE_OPEN | CircuitBreakerState.CIRCUIT_STATE_CLOSED, rationale: string): void {
    if (state === CircuitBreakerState.CIRCUIT_STATE_OPEN) this.#breaker.forceOpen(rationale);
    else this.#breaker.reset();
  }

  /** `kasmina.breaker.state` and `.failures`, then the fetcher's cache and fetch metrics. */
  metrics(): MetricInput[] {
    const breaker = this.#breaker.snapshot();
    return [
      { name: SeedMetric.BREAKER_STATE, value: breaker.state, unit: 'state' },
      { name: SeedMetric.BREAKER_FAILURES, value: breaker.failureCount, unit: 'count' },
      ...this.#fetcher.metrics(),
    ];
  }
}
