/**
 * Kasmina, the seed executor: Tolaria's `Executor`. Commands go to the dispatcher
 * (`apply`), each optimizer step advances every seed through the seed driver (`advance`),
 * validation passes bring counterfactual contributions (`recordValidation`); the executor
 * state holds the seeds and the checkpointed state, the executor telemetry emits the
 * packets. The lifecycle, its gates and the grafting rules: docs/architecture.md (Kasmina).
 */
import { closeOnce, DependencyGuard, optionChecks, ServiceState, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import { SeedLifecycleStage, TelemetryLevel, type AdaptationCommand, type SeedSiteDescriptor, type SeedState } from '../leyline/index.js';
import type { CommandVerifier } from '../security/index.js';
import type { tf } from '../tensor/index.js';
import type {
  CallOptions,
  ContributionProbe,
  Executor,
  ExecutorContext,
  GradientProbe,
  HostModel,
  ValidationReport,
  ValidationResult,
} from '../tolaria/index.js';
import { CommandDispatcher } from './command-dispatch.js';
import { ExecutorState, MEASURED_STAGES, type SeedReport } from './executor-state.js';
import { ExecutorTelemetry, KASMINA_SOURCE, seedStateOf } from './executor-telemetry.js';
import { IsolationMonitor } from './isolation.js';
import type { KasminaState } from './kasmina-state.js';
import type { KernelFetcher } from './kernel-fetcher.js';
import { KernelLoader } from './kernel-loader.js';
import { stageName, type LifecycleTransition } from './lifecycle.js';
import type { MemoryGovernor } from './memory.js';
import type { PrefetchCoordinator } from './prefetch.js';
import { ParameterRegistry } from './registry.js';
import { resolveLifecycleSettings, SeedDriver, stageLengths, type KasminaLifecycleSettings } from './seed-driver.js';
import { SeedEvent } from './seed-events.js';
import { SeedSlot } from './seed-slot.js';

/** Options of {@link KasminaExecutor}. */
export interface KasminaExecutorOptions {
  /** The host seeds grow in; its variables are registered as host-owned. Required. */
  readonly host: HostModel;
  /** Commands for any other run are dependency violations. Required, not blank. */
  readonly trainingRunId: string;
  /** Verifies every command before anything acts on it. Required. */
  readonly verifier: CommandVerifier;
  /** Knows which blueprints exist and which sites their families fit. Required. */
  readonly catalog: KarnCatalog;
  /** Fetches verified kernels (cache, per-blueprint locks, library). Required. */
  readonly fetcher: KernelFetcher;
  /** Receives every packet. Required. */
  readonly telemetry: TelemetrySink;
  /** Stage lengths, budgets and thresholds (checked: `INVALID_ARGUMENT` names a bad one). Required. */
  readonly settings: KasminaLifecycleSettings;
  /** Asks Urza over Oona for each kernel before fetching it; without it, `apply` fetches at once. */
  readonly prefetch?: PrefetchCoordinator;
  /** Periodic and emergency cache cleanup. */
  readonly memory?: MemoryGovernor;
  /** @default systemClock */
  readonly clock?: Clock;
}

/**
 * Lifecycle of a {@link KasminaExecutor}: `running` from construction; `closing` from
 * `close()` until kernel loads still in flight have settled, then `closed`. Only `running`
 * takes calls.
 */
export type KasminaExecutorState = 'running' | 'closing' | 'closed';

/** Counters of {@link KasminaExecutor}. */
export interface KasminaStats {
  /** Commands verified, guarded and applied. */
  readonly commandsApplied: number;
  readonly gateFailures: number;
  readonly illegalTransitions: number;
  readonly isolationChecks: number;
  readonly isolationViolations: number;
  readonly seedsCulled: number;
  readonly seedsFossilized: number;
  readonly packetsEmitted: number;
}

/** The seed executor. */
export class KasminaExecutor implements Executor {
  readonly #host: HostModel;
  readonly #verifier: CommandVerifier;
  readonly #prefetch: PrefetchCoordinator | undefined;
  readonly #memory: MemoryGovernor | undefined;
  readonly #settings: KasminaLifecycleSettings;
  readonly #sites: ReadonlyMap<string, SeedSiteDescriptor>;
  readonly #registry = new ParameterRegistry();
  readonly #isolation = new IsolationMonitor();
  readonly #state = new ExecutorState();
  readonly #telemetry: ExecutorTelemetry;
  readonly #loader: KernelLoader;
  readonly #driver: SeedDriver;
  readonly #dispatcher: CommandDispatcher;
  readonly #lifecycle = new ServiceState<KasminaExecutorState>('kasmina executor', 'running');
  readonly #close = closeOnce(() => this.#retireSeeds());

  /** @throws EsperError `INVALID_ARGUMENT` for a blank `trainingRunId` or a bad setting. */
  constructor(options: KasminaExecutorOptions) {
    if (typeof options.trainingRunId !== 'string' || options.trainingRunId.trim().length === 0) {
      optionChecks('KasminaExecutor').fail('trainingRunId', 'a non-blank string', options.trainingRunId);
    }
    const settings = resolveLifecycleSettings(options.settings);
    const clock = options.clock ?? systemClock;
    this.#host = options.host;
    this.#verifier = options.verifier;
    this.#prefetch = options.prefetch;
    this.#memory = options.memory;
    this.#settings = settings;
    this.#sites = new Map(options.host.descriptor.sites.map((s) => [s.siteId, s]));
    this.#registry.registerHost(options.host.variables);
    this.#telemetry = new ExecutorTelemetry({ sink: options.telemetry, trainingRunId: options.trainingRunId, clock });
    this.#loader = new KernelLoader({
      fetcher: options.fetcher,
      latencyBudgetMs: settings.kernelLatencyBudgetMs,
      enforceLatency: settings.latencyBudgets !== 'observe',
      clock,
    });
    this.#driver = new SeedDriver({
      host: options.host,
      registry: this.#registry,
      isolation: this.#isolation,
      state: this.#state,
      telemetry: this.#telemetry,
      settings,
      prefetch: options.prefetch,
      createSlot: (slotOptions) => new SeedSlot(slotOptions),
    });
    this.#dispatcher = new CommandDispatcher({
      trainingRunId: options.trainingRunId,
      sites: this.#sites,
      verifier: options.verifier,
      guard: new DependencyGuard({ subsystem: KASMINA_SOURCE, sink: options.telemetry, clock, trainingRunId: options.trainingRunId }),
      catalog: options.catalog,
      state: this.#state,
      telemetry: this.#telemetry,
      driver: this.#driver,
      loader: this.#loader,
      prefetch: options.prefetch,
      memory: options.memory,
    });
  }

  /** See {@link KasminaExecutorState}. */
  get state(): KasminaExecutorState {
    return this.#lifecycle.current;
  }

  // ------------------------------------------------------------------ Executor

  /** Verifies, guards and applies one command (errors: {@link CommandDispatcher.apply}). */
  apply(command: AdaptationCommand, context: ExecutorContext, options?: CallOptions): Promise<void> {
    this.#lifecycle.require('running', 'apply');
    this.#state.rng = context.rng;
    return this.#dispatcher.apply(command, context.globalStep, context.epoch, options?.signal);
  }

  /** Advances every seed by one step and emits this step's packets. */
  advance(context: ExecutorContext, _options?: CallOptions): Promise<void> {
    this.#lifecycle.require('running', 'advance');
    const state = this.#state;
    state.step = context.globalStep;
    state.epoch = context.epoch;
    state.rng = context.rng;
    state.recordLoss(context.lastStep?.trainingLoss);
    for (const seed of state.live()) this.#driver.advance(seed, context.lastStep);
    this.#emitPackets();
    return Promise.resolve();
  }

  /** One `SeedState` per seed, for the state packets. */
  exportSeedStates(): readonly SeedState[] {
    const sites = this.#host.descriptor.sites;
    return this.#state.live().map((seed) =>
      seedStateOf(seed, this.#state.epoch, sites.findIndex((s) => s.siteId === seed.siteId) + 1, {
        alphaTemperature: this.#settings.alphaTemperature,
        blendingSteps: stageLengths(seed.kernel.slot?.module, this.#settings).blendingSteps,
      }),
    );
  }

  /** Every grafted, unpaused seed in BLENDING or later: measured after each validation pass. */
  contributionProbes(): readonly ContributionProbe[] {
    return this.#state
      .live()
      .filter((seed) => seed.kernel.slot !== undefined && !seed.progress.paused && MEASURED_STAGES.has(seed.lifecycle.stage))
      .map((seed) => ({ seedId: seed.seedId, siteId: seed.siteId }));
  }

  /**
   * Grafted, unpaused seeds whose module waits for a gradient initialisation (GradMax
   * widening): the trainer serves each on its next step and hands the matrix to `advance`.
   */
  gradientProbes(): readonly GradientProbe[] {
    return this.#state
      .live()
      .filter((seed) => seed.kernel.slot?.module.gradientInit?.pending() === true && !seed.progress.paused)
      .map((seed) => ({ seedId: seed.seedId, siteId: seed.siteId }));
  }

  /**
   * Records each probed seed's counterfactual contribution ({@link counterfactualContribution}:
   * accuracy gained, or for a regression the share of the loss removed). A seed whose
   * probation is served is decided on this measurement. Runs the epoch's memory GC.
   */
  recordValidation(report: ValidationReport, context: ExecutorContext, _options?: CallOptions): Promise<void> {
    this.#lifecycle.require('running', 'recordValidation');
    this.#state.epoch = context.epoch;
    const baseline = report.baseline;
    for (const probe of report.withoutSeed) {
      const seed = this.#state.seeds.get(probe.seedId);
      if (seed?.kernel.slot === undefined || seed.siteId !== probe.siteId || !MEASURED_STAGES.has(seed.lifecycle.stage)) continue;
      const without = probe.validation;
      seed.contribution.value = counterfactualContribution(baseline, without, report.accuracyMeasured);
      seed.contribution.step = context.globalStep;
      seed.events.push({
        description: SeedEvent.CONTRIBUTION_MEASURED,
        attributes: {
          seed_id: seed.seedId,
          contribution: seed.contribution.value.toFixed(4),
          accuracy_with: baseline.accuracy.toFixed(4),
          accuracy_without: without.accuracy.toFixed(4),
          loss_with: baseline.loss.toFixed(4),
          loss_without: without.loss.toFixed(4),
          stage: stageName(seed.lifecycle.stage),
        },
      });
      // The last validation of a run must still decide a seed whose probation is served.
      if (
        seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_PROBATIONARY &&
        seed.progress.activeSteps >= this.#settings.probationSteps
      ) {
        this.#driver.decideFossilize(seed);
      }
    }
    const gc = this.#memory?.onEpoch(context.epoch);
    if (gc?.ran === true) {
      this.#telemetry.global({
        description: SeedEvent.MEMORY_GC,
        attributes: { epoch: context.epoch, expired: gc.expired, gc_counter: gc.gcCounter },
      });
    }
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ checkpoints

  /**
   * Kasmina's state for a Tolaria checkpoint: every seed (history, blend plan, alpha,
   * measurements), site embargoes, the loss EWMA and counters. The seeds' weights are in
   * the checkpoint's weights blob (their variables are hook variables).
   */
  exportState(): KasminaState {
    return this.#state.export();
  }

  /**
   * Restores {@link exportState}'s value on resume: re-fetches each grafted seed's kernel
   * under the same variable scope and attaches it (Tolaria then loads the weights and
   * optimizer state). A seed that was waiting for its kernel cannot resume the wait: it is
   * culled (`resume_prefetch_lost`).
   * @throws EsperError `KASMINA_STATE_INVALID` naming what is wrong with `state`;
   *   `INVALID_STATE` when seeds exist already; the fetch's errors.
   */
  async restoreState(state: unknown, context: ExecutorContext): Promise<void> {
    this.#lifecycle.require('running', 'restoreState');
    for (const { seed, attached, phase } of this.#state.restore(state, this.#sites, context.epoch)) {
      if (attached) this.#driver.reattach(seed, await this.#loader.fetch(seed), phase);
      else if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_GERMINATED) this.#driver.cull(seed, 'resume_prefetch_lost');
    }
  }

  // ------------------------------------------------------------------ operator API

  /** Counters. */
  stats(): KasminaStats {
    return { ...this.#state.counters, isolationViolations: this.#isolation.total, packetsEmitted: this.#telemetry.packetsEmitted };
  }

  /** The seed's current stage, or undefined when Kasmina holds no such seed. */
  stageOf(seedId: string): SeedLifecycleStage | undefined {
    return this.#state.seeds.get(seedId)?.lifecycle.stage;
  }

  /** Stage history of a live seed, or undefined. */
  historyOf(seedId: string): readonly LifecycleTransition[] | undefined {
    return this.#state.seeds.get(seedId)?.lifecycle.history;
  }

  /** Every seed this executor has held, retired ones first, each with its fate. */
  seedReports(): readonly SeedReport[] {
    return this.#state.seedReports();
  }

  /**
   * Clears seed ownership in the parameter registry and the nonce ledger, cancelling every
   * inflight prefetch (reference WP-K3 "administrative resets"). Live seeds are culled
   * first: their parameters cannot stay unowned.
   */
  resetRegistry(): void {
    this.#driver.cullAll('registry_reset');
    this.#prefetch?.cancelAll('registry_reset');
    this.#registry.resetSeeds();
    const nonces = this.#verifier.resetNonces();
    this.#telemetry.global({
      description: SeedEvent.REGISTRY_RESET,
      level: TelemetryLevel.WARNING,
      attributes: { nonces_cleared: nonces, registry_entries: this.#registry.entries },
    });
  }

  /** Registers a teacher model's variables: a seed that claims one of them fails G1 (registry conflict). */
  registerTeacher(variables: readonly tf.Variable[]): void {
    this.#registry.registerTeacher(variables);
    const parameters = variables.reduce((n, v) => n + v.size, 0);
    this.#telemetry.global({ description: SeedEvent.TEACHER_REGISTERED, attributes: { variables: variables.length, parameters } });
  }

  /** Drops the teacher's parameters and the nonce ledger; cancels inflight prefetches. */
  resetTeacher(): void {
    this.#prefetch?.cancelAll('teacher_reset');
    this.#registry.resetTeacher();
    const nonces = this.#verifier.resetNonces();
    this.#telemetry.global({
      description: SeedEvent.TEACHER_DEREGISTERED,
      level: TelemetryLevel.WARNING,
      attributes: { nonces_cleared: nonces },
    });
  }

  /**
   * Ends the run: fossils and dormant seeds become TERMINATED, active seeds are culled,
   * prefetches cancelled and kernel loads awaited and freed; emits the final packets.
   * Idempotent (returns the first call's promise).
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #retireSeeds(): Promise<void> {
    this.#lifecycle.set('closing');
    this.#prefetch?.cancelAll('shutdown');
    for (const seed of this.#state.live()) {
      const stage = seed.lifecycle.stage;
      if (stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED || stage === SeedLifecycleStage.SEED_STAGE_DORMANT) {
        this.#driver.terminate(seed, 'shutdown');
      } else {
        this.#driver.cull(seed, 'shutdown');
      }
    }
    const loading = this.#state.live().flatMap((seed) => (seed.kernel.loading === undefined ? [] : [seed.kernel.loading]));
    this.#emitPackets();
    // Loads still running settle into culled seeds: their modules are freed as they land.
    await Promise.allSettled(loading);
    this.#lifecycle.set('closed');
  }

  #emitPackets(): void {
    this.#telemetry.emitStep(this.#state, {
      isolationViolations: this.#isolation.total,
      registryEntries: this.#registry.entries,
      metrics: [...this.#loader.metrics(), ...this.#verifier.metrics(), ...(this.#prefetch?.metrics() ?? [])],
    });
  }
}

/**
 * A seed's counterfactual contribution from the validation pass with every seed (`withSeed`)
 * and the pass with its site bypassed (`withoutSeed`), a fraction either way: on a class
 * dataset the accuracy it adds (0.01 = 1 point); on a value dataset, where accuracy is not
 * measured, the share of the validation loss it removes, `(loss_without − loss_with) /
 * loss_without` (0.01 = 1 % lower loss with the seed; 0 when the loss without is 0).
 */
export function counterfactualContribution(withSeed: ValidationResult, withoutSeed: ValidationResult, accuracyMeasured: boolean): number {
  if (accuracyMeasured) return withSeed.accuracy - withoutSeed.accuracy;
  return withoutSeed.loss === 0 ? 0 : (withoutSeed.loss - withSeed.loss) / withoutSeed.loss;
}
