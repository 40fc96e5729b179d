/**
 * Kasmina, the seed executor: verified commands in (`apply`), one lifecycle step per
 * optimizer step (`advance`), counterfactual contributions from Tolaria's validation passes
 * (`recordValidation`). The lifecycle, its gates and the grafting rules are described in
 * docs/architecture.md (Kasmina); telemetry names in docs/observability-runbook.md.
 */
import { create } from '@bufbuild/protobuf';
import {
  buildTelemetryPacket,
  CircuitBreaker,
  DependencyGuard,
  ErrorCode,
  EsperError,
  isEsperError,
  systemClock,
  validateCommandDependencies,
  type Clock,
  type EsperSettings,
  type EventInput,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import {
  BlendModeSchema,
  CircuitBreakerState,
  CommandType,
  CommandTypeSchema,
  EmergencyLevel,
  HealthStatus,
  SeedLifecycleGate,
  SeedLifecycleStage,
  SeedMetricsSchema,
  SeedOperation,
  SeedOperationSchema,
  SeedStateSchema,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandSeedOperation,
  type SeedSiteDescriptor,
  type SeedState,
} from '../leyline/index.js';
import type { CommandVerifier } from '../security/index.js';
import { seededRng, type tf } from '../tensor/index.js';
import { siteKeyOf } from '../tezzeret/index.js';
import type { CallOptions, ContributionProbe, Executor, ExecutorContext, HostModel, ValidationReport } from '../tolaria/index.js';
import { alphaSchedule, resolveBlendPlan, type BlendPlan } from './blending.js';
import { G3_ALPHA_TARGET, evaluateG0, evaluateG1, evaluateG2, evaluateG3, evaluateG4, evaluateG5, type GateResult } from './gates.js';
import { checkIsolation, findParameterOverlap, IsolationMonitor } from './isolation.js';
import type { FetchedSeedKernel, KernelFetcher } from './kernel-fetcher.js';
import { gateName, isTransitionAllowed, SeedLifecycle, stageName } from './lifecycle.js';
import type { MemoryGovernor } from './memory.js';
import type { PrefetchCoordinator, PrefetchTicket } from './prefetch.js';
import { ParameterRegistry } from './registry.js';
import { SeedEvent, SeedMetric } from './seed-events.js';
import { SeedSlot } from './seed-slot.js';

/** Source name of Kasmina's telemetry. */
export const KASMINA_SOURCE = 'kasmina';

/** Smoothing of Kasmina's training-loss EWMA (about the last 20 steps). */
export const LOSS_EWMA_ALPHA = 0.1;

/** Relative rise of the training-loss EWMA over its value at germination that fails G2 in SHADOWING. */
export const SHADOWING_MAX_LOSS_REGRESSION = 0.1;

/** Lifecycle settings of {@link KasminaExecutor} (the `kasmina` settings section). */
export type KasminaLifecycleSettings = Pick<
  EsperSettings['kasmina'],
  | 'kernelLatencyBudgetMs'
  | 'trainingSteps'
  | 'blendingSteps'
  | 'alphaTemperature'
  | 'shadowingSteps'
  | 'probationSteps'
  | 'minContribution'
  | 'embargoSteps'
  | 'isolationCheckEverySteps'
>;

/** Options of {@link KasminaExecutor}. */
export interface KasminaExecutorOptions {
  /** The host seeds grow in; its variables are registered as host-owned. Required. */
  readonly host: HostModel;
  /** Commands for any other run are dependency violations. Required. */
  readonly trainingRunId: string;
  /** Verifies every command before anything acts on it. Required. */
  readonly verifier: CommandVerifier;
  /** Knows which blueprints exist and which sites their families fit. Required. */
  readonly catalog: KarnCatalog;
  /** Fetches verified kernels (cache, per-blueprint locks, library). Required. */
  readonly fetcher: KernelFetcher;
  /** Receives every packet. Required. */
  readonly telemetry: TelemetrySink;
  readonly settings: KasminaLifecycleSettings;
  /**
   * Asks Urza over Oona for the kernel before attaching it (the distributed path). Without
   * it, `apply` fetches synchronously.
   */
  readonly prefetch?: PrefetchCoordinator;
  /** Periodic and emergency cache cleanup. */
  readonly memory?: MemoryGovernor;
  /** @default systemClock */
  readonly clock?: Clock;
}

type SlotPhase = 'isolated' | 'blended' | 'fused' | 'paused';

/** One seed: its lifecycle and everything measured about it. */
interface SeedRecord {
  readonly seedId: string;
  readonly siteId: string;
  readonly site: SeedSiteDescriptor;
  readonly blueprintId: string;
  readonly commandId: string;
  /** Epoch the seed was germinated in (its age is counted from it). */
  readonly germinatedEpoch: number;
  readonly lifecycle: SeedLifecycle;
  plan: BlendPlan;
  slot: SeedSlot | undefined;
  prefetch: PrefetchTicket | undefined;
  /** The kernel load started by the prefetch answer, while it runs (off the step). */
  loading: Promise<void> | undefined;
  /** What that load gave, grafted (or failed) by the next `advance`. */
  loaded: KernelLoad | undefined;
  kernelLatencyMs: number;
  /** Parameters of the grafted kernel (kept after a cull, for the seed's report). */
  parameters: number;
  /** Why the seed was culled ('' unless it was). */
  cullReason: string;
  alpha: number;
  alphaSteps: number;
  /** Steps counted in the current stage while not paused. */
  activeSteps: number;
  paused: boolean;
  gradNormSum: number;
  gradNormCount: number;
  gradFinite: boolean;
  lastGradNorm: number;
  /** Kasmina's training-loss EWMA when the seed was germinated (G2's baseline in SHADOWING). */
  lossAtGermination: number | undefined;
  lastLoss: number | undefined;
  contribution: number | undefined;
  contributionStep: number;
  lastLeak: number;
  embargoUntilStep: number;
  violations: number;
  events: EventInput[];
  /** Removed after its packet of this step (reset to DORMANT or terminated). */
  retire: boolean;
}

/** Outcome of loading a seed's kernel: the module, or why there is none (G1 fails on it). */
type KernelLoad =
  | { readonly ok: true; readonly fetched: FetchedSeedKernel }
  | { readonly ok: false; readonly reason: string; readonly attributes: Record<string, string> };

/**
 * One seed's story for run reports: where and when it grew, its fate (FOSSILIZED or CULLED
 * once decided, else the stage it is in), the cull reason, its last measured contribution
 * (a fraction of validation accuracy) and its full stage history.
 */
export interface SeedReport {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  readonly commandId: string;
  readonly germinatedStep: number;
  readonly fate: SeedLifecycleStage;
  readonly fateStep: number;
  /** Why the seed was culled; '' for any other fate. */
  readonly fateReason: string;
  readonly contribution?: number;
  readonly parameters: number;
  readonly history: readonly { readonly from: SeedLifecycleStage; readonly to: SeedLifecycleStage; readonly step: number }[];
}

/** Version of {@link KasminaState}. */
export const KASMINA_STATE_VERSION = 2;

/** One seed in a {@link KasminaState}. */
export interface KasminaSeedState {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  readonly commandId: string;
  readonly germinatedEpoch: number;
  readonly history: readonly { readonly from: SeedLifecycleStage; readonly to: SeedLifecycleStage; readonly step: number }[];
  readonly plan: BlendPlan;
  readonly attached: boolean;
  readonly phase: SlotPhase;
  readonly kernelLatencyMs: number;
  readonly alpha: number;
  readonly alphaSteps: number;
  readonly activeSteps: number;
  readonly paused: boolean;
  readonly gradNormSum: number;
  readonly gradNormCount: number;
  readonly gradFinite: boolean;
  readonly lastGradNorm: number;
  readonly lossAtGermination?: number;
  readonly contribution?: number;
  readonly contributionStep: number;
  readonly lastLeak: number;
  readonly embargoUntilStep: number;
  readonly violations: number;
  readonly retire: boolean;
  readonly parameters: number;
  readonly cullReason: string;
}

/** Kasmina's checkpointed state (JSON-serialisable; see {@link KasminaExecutor.exportState}). */
export interface KasminaState {
  readonly version: number;
  readonly step: number;
  readonly epoch: number;
  readonly lossEwma?: number;
  readonly embargo: readonly (readonly [string, number])[];
  readonly counters: {
    readonly commandsApplied: number;
    readonly gateFailures: number;
    readonly illegalTransitions: number;
    readonly isolationChecks: number;
    readonly seedsCulled: number;
    readonly seedsFossilized: number;
  };
  readonly seeds: readonly KasminaSeedState[];
  /** Reports of the seeds already retired (reset to DORMANT or terminated). */
  readonly retired: readonly SeedReport[];
}

/** Counters of {@link KasminaExecutor}. */
export interface KasminaStats {
  readonly commandsApplied: number;
  readonly gateFailures: number;
  readonly illegalTransitions: number;
  readonly isolationChecks: number;
  readonly isolationViolations: number;
  readonly seedsCulled: number;
  readonly seedsFossilized: number;
  readonly packetsEmitted: number;
}

const ACTIVE_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  SeedLifecycleStage.SEED_STAGE_GERMINATED,
  SeedLifecycleStage.SEED_STAGE_TRAINING,
  SeedLifecycleStage.SEED_STAGE_BLENDING,
  SeedLifecycleStage.SEED_STAGE_SHADOWING,
  SeedLifecycleStage.SEED_STAGE_PROBATIONARY,
]);

const MEASURED_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  SeedLifecycleStage.SEED_STAGE_BLENDING,
  SeedLifecycleStage.SEED_STAGE_SHADOWING,
  SeedLifecycleStage.SEED_STAGE_PROBATIONARY,
  SeedLifecycleStage.SEED_STAGE_FOSSILIZED,
]);

/** The seed executor. */
export class KasminaExecutor implements Executor {
  readonly #host: HostModel;
  readonly #trainingRunId: string;
  readonly #verifier: CommandVerifier;
  readonly #catalog: KarnCatalog;
  readonly #fetcher: KernelFetcher;
  readonly #prefetch: PrefetchCoordinator | undefined;
  readonly #memory: MemoryGovernor | undefined;
  readonly #sink: TelemetrySink;
  readonly #settings: KasminaLifecycleSettings;
  readonly #clock: Clock;
  readonly #guard: DependencyGuard;
  readonly #registry = new ParameterRegistry();
  readonly #isolation = new IsolationMonitor();
  readonly #fetchBreaker: CircuitBreaker;
  readonly #seeds = new Map<string, SeedRecord>();
  /** Reports of retired seeds, oldest first (the live ones are reported from `#seeds`). */
  readonly #retired: SeedReport[] = [];
  /** Site id → seed id of the seed occupying it (every stage but a retired DORMANT). */
  readonly #occupancy = new Map<string, string>();
  /** Site id → step until which it is embargoed. */
  readonly #embargo = new Map<string, number>();
  readonly #sites: ReadonlyMap<string, SeedSiteDescriptor>;
  #globalEvents: EventInput[] = [];
  /** EWMA of the training loss over steps (α = {@link LOSS_EWMA_ALPHA}); one batch is too noisy for G2. */
  #lossEwma: number | undefined;
  #step = 0;
  #epoch = 0;
  #commandsApplied = 0;
  #gateFailures = 0;
  #illegalTransitions = 0;
  #isolationChecks = 0;
  #seedsCulled = 0;
  #seedsFossilized = 0;
  #packetsEmitted = 0;
  #closed = false;
  #closePromise: Promise<void> | undefined;

  constructor(options: KasminaExecutorOptions) {
    if (options.trainingRunId.trim().length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'Kasmina needs a training_run_id');
    }
    this.#host = options.host;
    this.#trainingRunId = options.trainingRunId;
    this.#verifier = options.verifier;
    this.#catalog = options.catalog;
    this.#fetcher = options.fetcher;
    this.#prefetch = options.prefetch;
    this.#memory = options.memory;
    this.#sink = options.telemetry;
    this.#settings = options.settings;
    this.#clock = options.clock ?? systemClock;
    this.#guard = new DependencyGuard({
      subsystem: KASMINA_SOURCE,
      sink: this.#sink,
      clock: this.#clock,
      trainingRunId: this.#trainingRunId,
    });
    this.#fetchBreaker = new CircuitBreaker({
      name: 'kasmina.kernel_fetch',
      failureThreshold: 3,
      successThreshold: 2,
      openTimeoutMs: 60_000,
      clock: this.#clock,
    });
    this.#registry.registerHost(this.#host.variables);
    this.#sites = new Map(this.#host.descriptor.sites.map((s) => [s.siteId, s]));
  }

  // ------------------------------------------------------------------ Executor

  /** Verifies, guards and dispatches one command (see the file comment). */
  async apply(command: AdaptationCommand, context: ExecutorContext, options?: CallOptions): Promise<void> {
    this.#assertOpen();
    this.#memory?.cleanup();
    this.#verifier.maintenance();
    const verdict = this.#verifier.verify(command);
    if (!verdict.ok) {
      throw new EsperError(ErrorCode.COMMAND_REJECTED, `command ${command.commandId} rejected: ${verdict.reason}`, {
        details: { reason: verdict.reason, command_id: command.commandId },
      });
    }
    this.#guardCommand(command);
    this.#step = Math.max(this.#step, context.globalStep);
    this.#epoch = context.epoch;
    this.#commandsApplied += 1;
    await this.#dispatch(command, options?.signal);
  }

  /** Advances every seed by one step and emits this step's packets. */
  advance(context: ExecutorContext, _options?: CallOptions): Promise<void> {
    this.#assertOpen();
    this.#step = context.globalStep;
    this.#epoch = context.epoch;
    const loss = context.lastStep?.trainingLoss;
    if (loss !== undefined && Number.isFinite(loss)) {
      this.#lossEwma = this.#lossEwma === undefined ? loss : this.#lossEwma + LOSS_EWMA_ALPHA * (loss - this.#lossEwma);
    }
    for (const seed of [...this.#seeds.values()]) this.#advanceSeed(seed, context);
    this.#emitPackets();
    return Promise.resolve();
  }

  /** One `SeedState` per seed, for the state packets. */
  exportSeedStates(): readonly SeedState[] {
    return [...this.#seeds.values()].map((seed) =>
      create(SeedStateSchema, {
        seedId: seed.seedId,
        siteId: seed.siteId,
        blueprintId: seed.blueprintId,
        stage: seed.lifecycle.stage,
        gradientNorm: Number.isFinite(seed.lastGradNorm) ? seed.lastGradNorm : 0,
        ageEpochs: Math.max(0, this.#epoch - seed.germinatedEpoch),
        layerDepth: this.#host.descriptor.sites.findIndex((s) => s.siteId === seed.siteId) + 1,
        metrics: create(SeedMetricsSchema, {
          alpha: seed.alpha,
          alphaSteps: seed.alphaSteps,
          alphaTotalSteps: this.#settings.blendingSteps,
          alphaTemperature: this.#settings.alphaTemperature,
          blendAllowed: MEASURED_STAGES.has(seed.lifecycle.stage),
          isolationViolations: seed.violations,
          kernelLatencyMs: seed.kernelLatencyMs,
          parameterCount: BigInt(seed.slot?.parameterCount ?? 0),
          ...(seed.contribution === undefined ? {} : { counterfactualContribution: seed.contribution }),
        }),
      }),
    );
  }

  /** Every attached, unpaused seed in BLENDING or later: measured after each validation pass. */
  contributionProbes(): readonly ContributionProbe[] {
    return [...this.#seeds.values()]
      .filter((seed) => seed.slot !== undefined && !seed.paused && MEASURED_STAGES.has(seed.lifecycle.stage))
      .map((seed) => ({ seedId: seed.seedId, siteId: seed.siteId }));
  }

  /**
   * Records each probed seed's counterfactual contribution: `baseline.accuracy` (every seed
   * at its alpha) minus the accuracy with that seed's site bypassed (its alpha at 0). A seed
   * whose probation is served is decided on this measurement. Runs the epoch's memory GC.
   */
  recordValidation(report: ValidationReport, context: ExecutorContext, _options?: CallOptions): Promise<void> {
    this.#assertOpen();
    this.#epoch = context.epoch;
    const baseline = report.baseline;
    for (const probe of report.withoutSeed) {
      const seed = this.#seeds.get(probe.seedId);
      if (seed?.slot === undefined || seed.siteId !== probe.siteId || !MEASURED_STAGES.has(seed.lifecycle.stage)) continue;
      const without = probe.validation;
      seed.contribution = baseline.accuracy - without.accuracy;
      seed.contributionStep = context.globalStep;
      seed.events.push({
        description: SeedEvent.CONTRIBUTION_MEASURED,
        attributes: {
          seed_id: seed.seedId,
          contribution: seed.contribution.toFixed(4),
          accuracy_with: baseline.accuracy.toFixed(4),
          accuracy_without: without.accuracy.toFixed(4),
          loss_with: baseline.loss.toFixed(4),
          loss_without: without.loss.toFixed(4),
          stage: stageName(seed.lifecycle.stage),
        },
      });
      // A seed whose probation is already served is decided on this measurement, not on
      // the next step's: the last validation of a run must still decide it.
      if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_PROBATIONARY && seed.activeSteps >= this.#settings.probationSteps) {
        this.#decideFossilize(seed);
      }
    }
    this.#runMemoryGc(context.epoch);
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ checkpoints

  /**
   * Kasmina's state for a Tolaria checkpoint: every seed (lifecycle history, blend plan,
   * alpha and counters), site embargoes, the loss EWMA and counters. The seeds' weights
   * are in the checkpoint's weights blob (their variables are hook variables).
   */
  exportState(): KasminaState {
    return {
      version: KASMINA_STATE_VERSION,
      step: this.#step,
      epoch: this.#epoch,
      ...(this.#lossEwma === undefined ? {} : { lossEwma: this.#lossEwma }),
      embargo: [...this.#embargo.entries()],
      counters: {
        commandsApplied: this.#commandsApplied,
        gateFailures: this.#gateFailures,
        illegalTransitions: this.#illegalTransitions,
        isolationChecks: this.#isolationChecks,
        seedsCulled: this.#seedsCulled,
        seedsFossilized: this.#seedsFossilized,
      },
      seeds: [...this.#seeds.values()].map((seed) => ({
        seedId: seed.seedId,
        siteId: seed.siteId,
        blueprintId: seed.blueprintId,
        commandId: seed.commandId,
        germinatedEpoch: seed.germinatedEpoch,
        history: seed.lifecycle.history.map((t) => ({ from: t.from, to: t.to, step: t.step })),
        plan: { ...seed.plan, alphaVec: [...seed.plan.alphaVec] },
        attached: seed.slot !== undefined,
        phase: seed.slot?.phase ?? 'isolated',
        kernelLatencyMs: seed.kernelLatencyMs,
        alpha: seed.alpha,
        alphaSteps: seed.alphaSteps,
        activeSteps: seed.activeSteps,
        paused: seed.paused,
        gradNormSum: seed.gradNormSum,
        gradNormCount: seed.gradNormCount,
        gradFinite: seed.gradFinite,
        lastGradNorm: seed.lastGradNorm,
        ...(seed.lossAtGermination === undefined ? {} : { lossAtGermination: seed.lossAtGermination }),
        ...(seed.contribution === undefined ? {} : { contribution: seed.contribution }),
        contributionStep: seed.contributionStep,
        lastLeak: seed.lastLeak,
        embargoUntilStep: seed.embargoUntilStep,
        violations: seed.violations,
        retire: seed.retire,
        parameters: seed.parameters,
        cullReason: seed.cullReason,
      })),
      retired: [...this.#retired],
    };
  }

  /**
   * Restores {@link exportState}'s value on resume: re-fetches each attached seed's kernel
   * under the same variable scope and attaches it at its site (Tolaria then loads the
   * weights and optimizer state). A seed that was waiting for a prefetch answer cannot
   * resume its wait: it is culled (`resume_prefetch_lost`).
   * @throws EsperError INVALID_STATE when seeds exist already; INVALID_ARGUMENT for state of
   *   another version or shape; the fetch's errors.
   */
  async restoreState(state: unknown, context: ExecutorContext): Promise<void> {
    this.#assertOpen();
    if (this.#seeds.size > 0) throw new EsperError(ErrorCode.INVALID_STATE, 'Kasmina restores state only before it holds seeds');
    const saved = state as KasminaState;
    if (typeof saved !== 'object' || saved === null || saved.version !== KASMINA_STATE_VERSION || !Array.isArray(saved.seeds)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `not a Kasmina state of version ${KASMINA_STATE_VERSION}`);
    }
    this.#step = saved.step;
    this.#epoch = context.epoch;
    this.#lossEwma = saved.lossEwma;
    for (const [site, until] of saved.embargo) this.#embargo.set(site, until);
    const c = saved.counters;
    this.#commandsApplied = c.commandsApplied;
    this.#gateFailures = c.gateFailures;
    this.#illegalTransitions = c.illegalTransitions;
    this.#isolationChecks = c.isolationChecks;
    this.#seedsCulled = c.seedsCulled;
    this.#seedsFossilized = c.seedsFossilized;
    this.#retired.push(...saved.retired);
    for (const s of saved.seeds) {
      const site = this.#sites.get(s.siteId);
      if (site === undefined) throw new EsperError(ErrorCode.INVALID_ARGUMENT, `saved seed ${s.seedId} sits at unknown site ${s.siteId}`);
      const seed: SeedRecord = {
        seedId: s.seedId,
        siteId: s.siteId,
        site,
        blueprintId: s.blueprintId,
        commandId: s.commandId,
        germinatedEpoch: s.germinatedEpoch,
        lifecycle: SeedLifecycle.replay(s.history),
        plan: Object.freeze({ ...s.plan, alphaVec: Object.freeze([...s.plan.alphaVec]) }),
        slot: undefined,
        prefetch: undefined,
        loading: undefined,
        loaded: undefined,
        kernelLatencyMs: s.kernelLatencyMs,
        parameters: s.parameters,
        cullReason: s.cullReason,
        alpha: s.alpha,
        alphaSteps: s.alphaSteps,
        activeSteps: s.activeSteps,
        paused: s.paused,
        gradNormSum: s.gradNormSum,
        gradNormCount: s.gradNormCount,
        gradFinite: s.gradFinite,
        lastGradNorm: s.lastGradNorm,
        lossAtGermination: s.lossAtGermination,
        lastLoss: undefined,
        contribution: s.contribution,
        contributionStep: s.contributionStep,
        lastLeak: s.lastLeak,
        embargoUntilStep: s.embargoUntilStep,
        violations: s.violations,
        events: [],
        retire: s.retire,
      };
      this.#seeds.set(seed.seedId, seed);
      if (!seed.retire) this.#occupancy.set(seed.siteId, seed.seedId);
      if (s.attached) {
        const fetched = await this.#fetcher.fetch(seed.blueprintId, siteKeyOf(site), `kasmina/${seed.seedId}/${seed.commandId}`);
        this.#registry.registerSeed(seed.seedId, fetched.module.variables);
        const slot = new SeedSlot({ seedId: seed.seedId, siteId: seed.siteId, site, module: fetched.module, plan: seed.plan });
        slot.phase = s.phase;
        slot.alpha = s.alpha;
        this.#host.attach(seed.siteId, slot);
        seed.slot = slot;
      } else if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_GERMINATED) {
        this.#cull(seed, 'resume_prefetch_lost');
      }
    }
  }

  // ------------------------------------------------------------------ operator API

  /** Counters. */
  stats(): KasminaStats {
    return {
      commandsApplied: this.#commandsApplied,
      gateFailures: this.#gateFailures,
      illegalTransitions: this.#illegalTransitions,
      isolationChecks: this.#isolationChecks,
      isolationViolations: this.#isolation.total,
      seedsCulled: this.#seedsCulled,
      seedsFossilized: this.#seedsFossilized,
      packetsEmitted: this.#packetsEmitted,
    };
  }

  /** The seed's current stage, or undefined when Kasmina holds no such seed. */
  stageOf(seedId: string): SeedLifecycleStage | undefined {
    return this.#seeds.get(seedId)?.lifecycle.stage;
  }

  /** Stage history of a seed (`{from, to, step}`), or undefined. */
  historyOf(
    seedId: string,
  ): readonly { readonly from: SeedLifecycleStage; readonly to: SeedLifecycleStage; readonly step: number }[] | undefined {
    return this.#seeds.get(seedId)?.lifecycle.history;
  }

  /** Every seed this executor has held, retired ones first, each with its fate. */
  seedReports(): readonly SeedReport[] {
    return [...this.#retired, ...[...this.#seeds.values()].map((seed) => this.#reportOf(seed))];
  }

  /**
   * Clears seed ownership in the parameter registry and the nonce ledger, cancelling
   * every inflight prefetch (reference WP-K3 "administrative resets"). Live seeds are
   * culled first: their parameters cannot stay unowned.
   */
  resetRegistry(): void {
    this.#cullAll('registry_reset');
    this.#prefetch?.cancelAll('registry_reset');
    this.#registry.resetSeeds();
    const nonces = this.#verifier.resetNonces();
    this.#globalEvents.push({
      description: SeedEvent.REGISTRY_RESET,
      level: TelemetryLevel.WARNING,
      attributes: { nonces_cleared: nonces, registry_entries: this.#registry.entries },
    });
  }

  /**
   * Registers a teacher model's variables (knowledge distillation): a seed that claims one
   * of them is a registry conflict and fails G1.
   */
  registerTeacher(variables: readonly tf.Variable[]): void {
    this.#registry.registerTeacher(variables);
    const parameters = variables.reduce((n, v) => n + v.size, 0);
    this.#globalEvents.push({ description: SeedEvent.TEACHER_REGISTERED, attributes: { variables: variables.length, parameters } });
  }

  /** Drops the teacher's parameters and the nonce ledger; cancels inflight prefetches. */
  resetTeacher(): void {
    this.#prefetch?.cancelAll('teacher_reset');
    this.#registry.resetTeacher();
    const nonces = this.#verifier.resetNonces();
    this.#globalEvents.push({
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
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#prefetch?.cancelAll('shutdown');
    for (const seed of [...this.#seeds.values()]) {
      const stage = seed.lifecycle.stage;
      if (stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED || stage === SeedLifecycleStage.SEED_STAGE_DORMANT) {
        this.#move(seed, SeedLifecycleStage.SEED_STAGE_TERMINATED);
        seed.events.push({ description: SeedEvent.SEED_TERMINATED, attributes: { seed_id: seed.seedId, reason: 'shutdown' } });
        seed.retire = true;
      } else if (ACTIVE_STAGES.has(stage)) {
        this.#cull(seed, 'shutdown');
      }
    }
    this.#emitPackets();
    this.#closed = true;
    // Loads still running settle into culled seeds: their modules are freed as they land.
    await Promise.allSettled([...this.#seeds.values()].flatMap((seed) => (seed.loading === undefined ? [] : [seed.loading])));
  }

  // ------------------------------------------------------------------ command dispatch

  #guardCommand(command: AdaptationCommand): void {
    validateCommandDependencies(this.#guard, command);
    if (command.trainingRunId !== this.#trainingRunId) {
      this.#guard.fail({
        dependencyType: 'training_run_id',
        identifier: command.commandId,
        reason: `command ${command.commandId} is for run ${command.trainingRunId}, not ${this.#trainingRunId}`,
        details: { command_id: command.commandId },
      });
    }
    if (command.payload.case === 'seedOperation' && command.payload.value.operation === SeedOperation.SEED_OP_GERMINATE) {
      const blueprintId = command.payload.value.blueprintId;
      if (!this.#catalog.has(blueprintId)) {
        this.#guard.fail({
          dependencyType: 'blueprint_id',
          identifier: blueprintId,
          reason: `blueprint ${blueprintId} is not in the catalog; no fallback kernel is attached`,
          details: { command_id: command.commandId, seed_id: command.targetSeedId },
        });
      }
    }
  }

  async #dispatch(command: AdaptationCommand, signal: AbortSignal | undefined): Promise<void> {
    const payload = command.payload;
    switch (command.commandType) {
      case CommandType.COMMAND_SEED:
        if (payload.case === 'seedOperation') await this.#seedCommand(command, payload.value, signal);
        return;
      case CommandType.COMMAND_PAUSE:
        this.#pause(command);
        return;
      case CommandType.COMMAND_CIRCUIT_BREAKER:
        if (payload.case === 'circuitBreaker') this.#forceBreaker(payload.value.desiredState, payload.value.rationale);
        return;
      case CommandType.COMMAND_EMERGENCY:
        if (payload.case === 'emergency') this.#emergency(payload.value.level, payload.value.reason);
        return;
      default: {
        // OPTIMIZER and ROLLBACK are Tolaria's; nothing applies STRUCTURAL_PRUNING. A command
        // Kasmina cannot apply is refused, never acknowledged and dropped.
        const type = enumName(CommandTypeSchema.values, command.commandType);
        this.#globalEvents.push({
          description: SeedEvent.UNSUPPORTED_COMMAND,
          level: TelemetryLevel.WARNING,
          attributes: { command_id: command.commandId, command_type: type },
        });
        throw new EsperError(ErrorCode.COMMAND_NOT_APPLIED, `Kasmina does not apply ${type} (command ${command.commandId})`, {
          details: { reason: 'unsupported_command', command_id: command.commandId, command_type: type },
        });
      }
    }
  }

  async #seedCommand(command: AdaptationCommand, operation: CommandSeedOperation, signal: AbortSignal | undefined): Promise<void> {
    const seedId = command.targetSeedId;
    const opName = enumName(SeedOperationSchema.values, operation.operation);
    const event: EventInput = {
      description: SeedEvent.SEED_OPERATION,
      attributes: {
        command_id: command.commandId,
        operation: opName,
        seed_id: seedId,
        blueprint_id: operation.blueprintId,
        site_id: operation.siteId,
      },
    };
    if (operation.operation === SeedOperation.SEED_OP_GERMINATE) {
      this.#globalEvents.push(event);
      await this.#germinate(command, operation, signal);
      return;
    }
    const seed = this.#seeds.get(seedId);
    if (seed === undefined) {
      this.#globalEvents.push({
        ...event,
        description: SeedEvent.SEED_OPERATION_IGNORED,
        level: TelemetryLevel.WARNING,
        attributes: { ...event.attributes, reason: 'unknown seed' },
      });
      throw new EsperError(ErrorCode.KASMINA_SEED_NOT_FOUND, `no seed ${seedId} for ${opName}`, {
        details: { seed_id: seedId, operation: opName },
      });
    }
    seed.events.push(event);
    switch (operation.operation) {
      case SeedOperation.SEED_OP_CULL:
        this.#requireTransition(seed, SeedLifecycleStage.SEED_STAGE_CULLED);
        this.#cull(seed, 'cull_command');
        return;
      case SeedOperation.SEED_OP_CANCEL:
        if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED) {
          this.#requireTransition(seed, SeedLifecycleStage.SEED_STAGE_TERMINATED);
          this.#move(seed, SeedLifecycleStage.SEED_STAGE_TERMINATED);
          seed.events.push({ description: SeedEvent.SEED_TERMINATED, attributes: { seed_id: seed.seedId, reason: 'cancel_command' } });
          return;
        }
        this.#requireTransition(seed, SeedLifecycleStage.SEED_STAGE_CULLED);
        this.#cull(seed, 'cancel_command');
        return;
      case SeedOperation.SEED_OP_FOSSILIZE:
        this.#requireTransition(seed, SeedLifecycleStage.SEED_STAGE_FOSSILIZED);
        this.#decideFossilize(seed);
        return;
      default:
        if (operation.resumeFlag === true) {
          this.#resume(seed);
          return;
        }
        seed.events.push({
          description: SeedEvent.SEED_OPERATION_IGNORED,
          attributes: { seed_id: seed.seedId, operation: opName, reason: 'Kasmina advances the lifecycle through its gates' },
        });
    }
  }

  async #germinate(command: AdaptationCommand, operation: CommandSeedOperation, signal: AbortSignal | undefined): Promise<void> {
    const seedId = command.targetSeedId;
    const siteId = operation.siteId;
    const site = this.#sites.get(siteId);
    let plan: BlendPlan | undefined;
    let blendError: string | undefined;
    if (site !== undefined) {
      try {
        plan = resolveBlendPlan(operation, command.metadata?.blend, site);
      } catch (error) {
        if (!isEsperError(error, ErrorCode.KASMINA_BLEND_CONFIG_INVALID)) throw error;
        blendError = String(error.details?.reason ?? error.message);
        if (blendError === SeedEvent.CONFIDENCE_GATE_MISSING_LOGITS) {
          this.#globalEvents.push({
            description: SeedEvent.CONFIDENCE_GATE_MISSING_LOGITS,
            level: TelemetryLevel.WARNING,
            attributes: { seed_id: seedId, command_id: command.commandId },
          });
        }
      }
    }
    const existing = this.#seeds.get(seedId);
    const occupantId = this.#occupancy.get(siteId);
    const occupant = occupantId === undefined ? undefined : this.#seeds.get(occupantId);
    const embargoUntil = this.#embargo.get(siteId);
    const embargoed = embargoUntil !== undefined && (this.#step < embargoUntil || occupant !== undefined);
    const g0 = evaluateG0({
      blueprintId: operation.blueprintId,
      blueprintKnown: this.#catalog.has(operation.blueprintId),
      siteId,
      siteExists: site !== undefined,
      // A seed id names one seed: reusing a live one is as wrong as taking its site.
      siteOccupied: (occupant !== undefined && !embargoed) || (existing !== undefined && !existing.retire),
      siteEmbargoed: embargoed,
      blueprintFitsSite: site !== undefined && this.#catalog.familyOf(operation.blueprintId).fits(site),
      ...(blendError === undefined ? {} : { blendConfigError: blendError }),
    });
    if (!g0.passed || site === undefined || plan === undefined) {
      this.#recordGate(undefined, seedId, g0);
      return;
    }
    if (existing !== undefined) this.#seeds.delete(seedId);
    const seed: SeedRecord = {
      seedId,
      siteId,
      site,
      blueprintId: operation.blueprintId,
      commandId: command.commandId,
      germinatedEpoch: this.#epoch,
      lifecycle: new SeedLifecycle(),
      plan,
      slot: undefined,
      prefetch: undefined,
      loading: undefined,
      loaded: undefined,
      kernelLatencyMs: 0,
      parameters: 0,
      cullReason: '',
      alpha: 0,
      alphaSteps: 0,
      activeSteps: 0,
      paused: false,
      gradNormSum: 0,
      gradNormCount: 0,
      gradFinite: true,
      lastGradNorm: 0,
      lossAtGermination: this.#lossEwma,
      lastLoss: undefined,
      contribution: undefined,
      contributionStep: -1,
      lastLeak: 0,
      embargoUntilStep: 0,
      violations: 0,
      events: [],
      retire: false,
    };
    this.#seeds.set(seedId, seed);
    this.#occupancy.set(siteId, seedId);
    this.#recordGate(seed, seedId, g0);
    this.#move(seed, SeedLifecycleStage.SEED_STAGE_GERMINATED);
    seed.events.push({
      description: SeedEvent.BLEND_CONFIG,
      attributes: {
        seed_id: seedId,
        mode: enumName(BlendModeSchema.values, plan.mode),
        source: plan.source,
        alpha_vec_len: plan.alphaVec.length,
      },
    });
    if (this.#prefetch !== undefined) {
      const ticket = this.#prefetch.request({ seedId, blueprintId: seed.blueprintId, trainingRunId: this.#trainingRunId });
      seed.prefetch = ticket;
      // The answer starts the kernel load off the step; the next `advance` grafts what it gave.
      seed.loading = ticket.result
        .then(
          () => this.#loadKernel(seed, undefined),
          (error: unknown): KernelLoad => ({
            ok: false,
            reason: 'kernel not attached',
            attributes: { prefetch: error instanceof Error ? error.message : String(error) },
          }),
        )
        .then((load) => {
          seed.loading = undefined;
          seed.prefetch = undefined;
          if (seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_GERMINATED) seed.loaded = load;
          else if (load.ok) load.fetched.module.dispose();
        });
      return;
    }
    const load = await this.#loadKernel(seed, signal);
    if (signal?.aborted === true || seed.lifecycle.stage !== SeedLifecycleStage.SEED_STAGE_GERMINATED) {
      // Culled or abandoned while the fetch ran: the kernel is not needed.
      if (load.ok) load.fetched.module.dispose();
      return;
    }
    this.#graft(seed, load);
  }

  // ------------------------------------------------------------------ grafting

  /** Fetches the seed's kernel under the fetch breaker (I/O: never inside `advance`). */
  async #loadKernel(seed: SeedRecord, signal: AbortSignal | undefined): Promise<KernelLoad> {
    if (!this.#fetchBreaker.allow()) {
      seed.events.push({
        description: SeedEvent.BREAKER_EVENT,
        level: TelemetryLevel.WARNING,
        attributes: { seed_id: seed.seedId, action: 'denied', breaker: 'kernel_fetch' },
      });
      return { ok: false, reason: 'kernel fetch breaker open', attributes: { breaker_state: 'OPEN' } };
    }
    let fetched: FetchedSeedKernel;
    try {
      fetched = await this.#fetcher.fetch(seed.blueprintId, siteKeyOf(seed.site), `kasmina/${seed.seedId}/${seed.commandId}`, {
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      this.#fetchBreaker.recordFailure('fetch_error');
      const reason = error instanceof Error ? error.message : String(error);
      seed.events.push({
        description: SeedEvent.KERNEL_FETCH_FAILED,
        level: TelemetryLevel.ERROR,
        attributes: { seed_id: seed.seedId, blueprint_id: seed.blueprintId, error: reason },
      });
      return { ok: false, reason: 'kernel not attached', attributes: { error: isEsperError(error) ? error.code : 'unexpected' } };
    }
    if (fetched.latencyMs > this.#settings.kernelLatencyBudgetMs) this.#fetchBreaker.recordFailure('latency_budget_exceeded');
    else this.#fetchBreaker.recordSuccess();
    return { ok: true, fetched };
  }

  /** Grafts a loaded kernel at the seed's site (G1), or fails G1 with why it has none. */
  #graft(seed: SeedRecord, load: KernelLoad): void {
    if (!load.ok) {
      this.#failGate(seed, {
        gate: SeedLifecycleGate.SEED_GATE_G1_GRADIENT_HEALTH,
        passed: false,
        reason: load.reason,
        attributes: load.attributes,
      });
      return;
    }
    const fetched = load.fetched;
    seed.kernelLatencyMs = fetched.latencyMs;
    const overlap = findParameterOverlap(fetched.module.variables, this.#host.variables);
    let registryConflict: string | undefined;
    try {
      this.#registry.registerSeed(seed.seedId, fetched.module.variables);
    } catch (error) {
      if (!isEsperError(error, ErrorCode.KASMINA_REGISTRY_CONFLICT)) {
        fetched.module.dispose();
        throw error;
      }
      registryConflict = error.message;
    }
    if (overlap.length > 0) this.#recordViolation(seed, `parameters shared with the host: ${overlap.join(', ')}`);
    let slot: SeedSlot;
    try {
      slot = new SeedSlot({ seedId: seed.seedId, siteId: seed.siteId, site: seed.site, module: fetched.module, plan: seed.plan });
    } catch (error) {
      this.#registry.deregisterSeed(seed.seedId);
      fetched.module.dispose();
      if (!isEsperError(error, ErrorCode.KASMINA_GRAFT_SHAPE_MISMATCH)) throw error;
      this.#failGate(seed, {
        gate: SeedLifecycleGate.SEED_GATE_G1_GRADIENT_HEALTH,
        passed: false,
        reason: 'kernel not attached',
        attributes: { error: error.code },
      });
      return;
    }
    if (registryConflict === undefined && overlap.length === 0) {
      slot.phase = 'isolated';
      slot.alpha = 0;
      this.#host.attach(seed.siteId, slot);
      seed.slot = slot;
      seed.parameters = slot.parameterCount;
    } else {
      slot.dispose();
    }
    seed.events.push({
      description: SeedEvent.KERNEL_ATTACHED,
      attributes: {
        seed_id: seed.seedId,
        blueprint_id: seed.blueprintId,
        site_id: seed.siteId,
        latency_ms: fetched.latencyMs.toFixed(3),
        cache: fetched.cacheHit ? 'hit' : 'miss',
        attached: seed.slot !== undefined,
      },
    });
    const g1 = evaluateG1({
      kernelAttached: seed.slot !== undefined,
      isolationViolations: seed.violations,
      ...(registryConflict === undefined ? {} : { registryConflict }),
      trainableParameters: seed.slot?.parameterCount ?? 0,
    });
    if (this.#recordGate(seed, seed.seedId, g1)) {
      this.#move(seed, SeedLifecycleStage.SEED_STAGE_TRAINING);
      this.#isolation.recordPass(seed.seedId);
    }
  }

  // ------------------------------------------------------------------ lifecycle

  #advanceSeed(seed: SeedRecord, context: ExecutorContext): void {
    const stage = seed.lifecycle.stage;
    const signals = context.lastStep;
    if (signals !== undefined) {
      seed.lastLoss = signals.trainingLoss;
      if (seed.lossAtGermination === undefined && ACTIVE_STAGES.has(stage)) seed.lossAtGermination = this.#lossEwma;
      const norm = signals.hookGradientNorms.get(seed.siteId);
      if (norm !== undefined && seed.slot !== undefined && !seed.paused) {
        seed.lastGradNorm = norm;
        if (!Number.isFinite(norm)) seed.gradFinite = false;
        else {
          seed.gradNormSum += norm;
          seed.gradNormCount += 1;
        }
      }
    }
    if (seed.paused) return;
    switch (stage) {
      case SeedLifecycleStage.SEED_STAGE_GERMINATED:
        if (seed.loaded !== undefined) {
          const load = seed.loaded;
          seed.loaded = undefined;
          this.#graft(seed, load);
        }
        return;
      case SeedLifecycleStage.SEED_STAGE_TRAINING:
        seed.activeSteps += 1;
        if (!this.#checkIsolationDue(seed)) return;
        if (seed.activeSteps >= this.#settings.trainingSteps) {
          const g2 = this.#stabilityGate(seed, true);
          if (this.#recordGate(seed, seed.seedId, g2)) {
            this.#move(seed, SeedLifecycleStage.SEED_STAGE_BLENDING);
            this.#setPhase(seed, 'blended', alphaSchedule(0, this.#settings.blendingSteps, this.#settings.alphaTemperature));
          }
        }
        return;
      case SeedLifecycleStage.SEED_STAGE_BLENDING: {
        seed.activeSteps += 1;
        seed.alphaSteps += 1;
        this.#setAlpha(seed, alphaSchedule(seed.alphaSteps, this.#settings.blendingSteps, this.#settings.alphaTemperature));
        if (!this.#checkIsolationDue(seed)) return;
        if (seed.alphaSteps >= this.#settings.blendingSteps) {
          const g3 = evaluateG3({
            alpha: seed.alpha,
            alphaTarget: G3_ALPHA_TARGET,
            outputShapeMatches: seed.slot !== undefined,
            hostRegistered: this.#host.variables.length > 0,
            isolationViolations: seed.violations,
          });
          if (this.#recordGate(seed, seed.seedId, g3)) {
            this.#move(seed, SeedLifecycleStage.SEED_STAGE_SHADOWING);
            this.#setAlpha(seed, 1);
          }
        }
        return;
      }
      case SeedLifecycleStage.SEED_STAGE_SHADOWING:
        seed.activeSteps += 1;
        if (seed.activeSteps >= this.#settings.shadowingSteps) {
          const g2 = this.#stabilityGate(seed, false);
          if (this.#recordGate(seed, seed.seedId, g2)) this.#move(seed, SeedLifecycleStage.SEED_STAGE_PROBATIONARY);
        }
        return;
      case SeedLifecycleStage.SEED_STAGE_PROBATIONARY:
        seed.activeSteps += 1;
        if (seed.activeSteps >= this.#settings.probationSteps && seed.contributionStep >= seed.lifecycle.enteredAtStep) {
          this.#decideFossilize(seed);
        }
        return;
      case SeedLifecycleStage.SEED_STAGE_EMBARGOED:
        if (this.#step >= seed.embargoUntilStep) this.#reset(seed);
        return;
      default:
        return;
    }
  }

  /** Runs the direct isolation check when due; false when it failed (the seed is culled). */
  #checkIsolationDue(seed: SeedRecord): boolean {
    const slot = seed.slot;
    if (slot === undefined || seed.activeSteps % this.#settings.isolationCheckEverySteps !== 0) return true;
    this.#isolationChecks += 1;
    const check = checkIsolation(slot, seededRng(this.#step * 7919 + seed.activeSteps));
    seed.lastLeak = check.relativeLeak;
    if (check.passed) {
      this.#isolation.recordPass(seed.seedId);
      return true;
    }
    this.#recordViolation(seed, `seed path leaks gradient into the host (relative ${check.relativeLeak.toExponential(2)})`);
    this.#failGate(seed, {
      gate: SeedLifecycleGate.SEED_GATE_G1_GRADIENT_HEALTH,
      passed: false,
      reason: 'gradient isolation violations present',
      attributes: { relative_leak: check.relativeLeak.toExponential(3) },
    });
    return false;
  }

  #recordViolation(seed: SeedRecord, reason: string): void {
    seed.violations += 1;
    const result = this.#isolation.recordViolation(seed.seedId, reason);
    seed.events.push({
      description: SeedEvent.ISOLATION_VIOLATION,
      level: result.escalate ? TelemetryLevel.CRITICAL : TelemetryLevel.WARNING,
      attributes: {
        seed_id: seed.seedId,
        reason,
        seed_violations: result.seedViolations,
        total_violations: result.totalViolations,
        breaker_open: result.breakerOpen,
      },
    });
  }

  #stabilityGate(seed: SeedRecord, training: boolean): GateResult {
    const mean = seed.gradNormCount === 0 ? 0 : seed.gradNormSum / seed.gradNormCount;
    return evaluateG2({
      kernelLatencyMs: seed.kernelLatencyMs,
      latencyBudgetMs: this.#settings.kernelLatencyBudgetMs,
      isolationViolations: seed.violations,
      seedGradNormMean: mean,
      seedGradFinite: seed.gradFinite,
      seedOutputFinite: seed.lastLoss === undefined || Number.isFinite(seed.lastLoss),
      requireActiveGradient: training,
      maxLossRegression: SHADOWING_MAX_LOSS_REGRESSION,
      ...(training || seed.lossAtGermination === undefined || this.#lossEwma === undefined
        ? {}
        : { lossBaseline: seed.lossAtGermination, lossNow: this.#lossEwma }),
    });
  }

  /** G4 on the measured contribution: FOSSILIZED when it passes, else culled. */
  #decideFossilize(seed: SeedRecord): void {
    const measured = seed.contributionStep >= seed.lifecycle.enteredAtStep ? seed.contribution : undefined;
    const g4 = evaluateG4({
      ...(measured === undefined ? {} : { contribution: measured }),
      minContribution: this.#settings.minContribution,
      isolationViolations: seed.violations,
      paused: seed.paused,
    });
    if (!this.#recordGate(seed, seed.seedId, g4)) return;
    this.#move(seed, SeedLifecycleStage.SEED_STAGE_FOSSILIZED);
    // Part of the host from now on: the layers before the site train through it again.
    if (seed.slot !== undefined) seed.slot.phase = 'fused';
    this.#seedsFossilized += 1;
    seed.events.push({
      description: SeedEvent.SEED_FOSSILIZED,
      attributes: { seed_id: seed.seedId, blueprint_id: seed.blueprintId, site_id: seed.siteId, contribution: (measured ?? 0).toFixed(4) },
    });
  }

  /**
   * Removes the seed from the host and frees it: CULLED, then EMBARGOED (the site stays
   * closed `embargoSteps`), reset to DORMANT by `advance` once the embargo is over.
   */
  #cull(seed: SeedRecord, reason: string): void {
    if (!ACTIVE_STAGES.has(seed.lifecycle.stage)) return;
    this.#move(seed, SeedLifecycleStage.SEED_STAGE_CULLED);
    seed.cullReason = reason;
    this.#seedsCulled += 1;
    this.#teardown(seed);
    seed.events.push({
      description: SeedEvent.SEED_CULLED,
      level: TelemetryLevel.WARNING,
      attributes: { seed_id: seed.seedId, blueprint_id: seed.blueprintId, site_id: seed.siteId, reason },
    });
    seed.embargoUntilStep = this.#step + this.#settings.embargoSteps;
    this.#embargo.set(seed.siteId, seed.embargoUntilStep);
    this.#move(seed, SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    if (this.#settings.embargoSteps === 0) this.#reset(seed);
  }

  #teardown(seed: SeedRecord): void {
    if (seed.prefetch !== undefined) {
      this.#prefetch?.cancel(seed.prefetch.requestId);
      seed.prefetch = undefined;
    }
    if (seed.loaded?.ok === true) seed.loaded.fetched.module.dispose();
    seed.loaded = undefined;
    const slot = seed.slot;
    if (slot !== undefined) {
      this.#host.detach(seed.siteId);
      slot.dispose();
      seed.slot = undefined;
    }
    this.#registry.deregisterSeed(seed.seedId);
    seed.alpha = 0;
  }

  /** EMBARGOED → RESETTING → (G5) → DORMANT; the site is free again. */
  #reset(seed: SeedRecord): void {
    this.#move(seed, SeedLifecycleStage.SEED_STAGE_RESETTING);
    const g5 = evaluateG5({
      kernelAttached: seed.slot !== undefined,
      liveTensors: seed.slot !== undefined && !seed.slot.disposed ? seed.slot.module.variables.length : 0,
      registryEntries: this.#registry.seedIds().includes(seed.seedId) ? 1 : 0,
      inflightPrefetches: seed.prefetch === undefined && seed.loading === undefined ? 0 : 1,
    });
    if (!this.#recordGate(seed, seed.seedId, g5, false)) {
      // Not clean: force the teardown and keep the seed RESETTING until the next step re-checks.
      this.#teardown(seed);
      return;
    }
    this.#move(seed, SeedLifecycleStage.SEED_STAGE_DORMANT);
    this.#occupancy.delete(seed.siteId);
    this.#embargo.delete(seed.siteId);
    this.#isolation.clearSeed(seed.seedId);
    seed.events.push({ description: SeedEvent.SEED_RESET, attributes: { seed_id: seed.seedId, site_id: seed.siteId } });
    seed.retire = true;
  }

  #cullAll(reason: string): void {
    for (const seed of this.#seeds.values()) if (ACTIVE_STAGES.has(seed.lifecycle.stage)) this.#cull(seed, reason);
  }

  #pause(command: AdaptationCommand): void {
    const seed = command.targetSeedId === '' ? undefined : this.#seeds.get(command.targetSeedId);
    if (seed === undefined || !ACTIVE_STAGES.has(seed.lifecycle.stage)) {
      this.#globalEvents.push({
        description: SeedEvent.PAUSE_ACKNOWLEDGED,
        attributes: { command_id: command.commandId, seed_id: command.targetSeedId, risk_reason: command.metadata?.risk?.reason ?? 0 },
      });
      return;
    }
    seed.paused = true;
    if (seed.slot !== undefined) seed.slot.phase = 'paused';
    seed.events.push({
      description: SeedEvent.SEED_PAUSED,
      level: TelemetryLevel.WARNING,
      attributes: { seed_id: seed.seedId, command_id: command.commandId },
    });
  }

  #resume(seed: SeedRecord): void {
    if (!seed.paused) {
      seed.events.push({ description: SeedEvent.SEED_OPERATION_IGNORED, attributes: { seed_id: seed.seedId, reason: 'not paused' } });
      return;
    }
    seed.paused = false;
    if (seed.slot !== undefined) seed.slot.phase = seed.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_TRAINING ? 'isolated' : 'blended';
    seed.events.push({ description: SeedEvent.SEED_RESUMED, attributes: { seed_id: seed.seedId } });
  }

  #forceBreaker(state: CircuitBreakerState, rationale: string): void {
    if (state === CircuitBreakerState.CIRCUIT_STATE_OPEN) this.#fetchBreaker.forceOpen(rationale || 'manual');
    else if (state === CircuitBreakerState.CIRCUIT_STATE_CLOSED) this.#fetchBreaker.reset();
    else {
      this.#globalEvents.push({
        description: SeedEvent.BREAKER_EVENT,
        level: TelemetryLevel.WARNING,
        attributes: { action: 'invalid', desired_state: state },
      });
      return;
    }
    this.#globalEvents.push({
      description: SeedEvent.BREAKER_EVENT,
      level: TelemetryLevel.WARNING,
      attributes: { action: 'forced', breaker: 'kernel_fetch', desired_state: state, reason: rationale || 'manual' },
    });
  }

  #emergency(level: EmergencyLevel, reason: string): void {
    const cleared = this.#memory?.emergencyCleanup().kernelCacheCleared ?? 0;
    let paused = 0;
    if (level >= EmergencyLevel.CONSERVATIVE) {
      for (const seed of this.#seeds.values()) {
        if (!ACTIVE_STAGES.has(seed.lifecycle.stage) || seed.paused) continue;
        seed.paused = true;
        if (seed.slot !== undefined) seed.slot.phase = 'paused';
        paused += 1;
      }
    }
    this.#globalEvents.push({
      description: SeedEvent.EMERGENCY_CLEANUP,
      level: TelemetryLevel.CRITICAL,
      attributes: { level, reason, kernel_cache_cleared: cleared, seeds_paused: paused },
    });
  }

  #runMemoryGc(epoch: number): void {
    const result = this.#memory?.onEpoch(epoch);
    if (result?.ran === true) {
      this.#globalEvents.push({
        description: SeedEvent.MEMORY_GC,
        attributes: { epoch, expired: result.expired, gc_counter: result.gcCounter },
      });
    }
  }

  // ------------------------------------------------------------------ transitions and gates

  #setPhase(seed: SeedRecord, phase: SlotPhase, alpha: number): void {
    if (seed.slot !== undefined) seed.slot.phase = phase;
    this.#setAlpha(seed, alpha);
  }

  #setAlpha(seed: SeedRecord, alpha: number): void {
    seed.alpha = alpha;
    if (seed.slot !== undefined) seed.slot.alpha = alpha;
  }

  /** A legal move (every caller checked it); records it on the seed. */
  #move(seed: SeedRecord, to: SeedLifecycleStage): void {
    const from = seed.lifecycle.stage;
    seed.lifecycle.transition(to, this.#step);
    seed.activeSteps = 0;
    seed.events.push({
      description: SeedEvent.STAGE_TRANSITION,
      attributes: { seed_id: seed.seedId, from: stageName(from), to: stageName(to), step: this.#step },
    });
  }

  /** Throws the typed error (with telemetry) when a command asks for an illegal move. */
  #requireTransition(seed: SeedRecord, to: SeedLifecycleStage): void {
    const from = seed.lifecycle.stage;
    if (isTransitionAllowed(from, to)) return;
    this.#illegalTransitions += 1;
    seed.events.push({
      description: SeedEvent.ILLEGAL_TRANSITION,
      level: TelemetryLevel.ERROR,
      attributes: { seed_id: seed.seedId, from: stageName(from), to: stageName(to) },
    });
    throw new EsperError(
      ErrorCode.KASMINA_ILLEGAL_TRANSITION,
      `seed ${seed.seedId}: ${stageName(from)} -> ${stageName(to)} is not allowed`,
      {
        details: { seed_id: seed.seedId, from: stageName(from), to: stageName(to) },
      },
    );
  }

  /**
   * Records a gate result as telemetry; a failure is a CRITICAL `gate_failure` and culls
   * the seed (when there is one and `cullOnFailure`). Returns whether it passed.
   */
  #recordGate(seed: SeedRecord | undefined, seedId: string, result: GateResult, cullOnFailure = true): boolean {
    const events = seed?.events ?? this.#globalEvents;
    events.push({
      description: SeedEvent.GATE_EVENT,
      level: result.passed ? TelemetryLevel.INFO : TelemetryLevel.WARNING,
      attributes: {
        ...result.attributes,
        seed_id: seedId,
        gate: gateName(result.gate),
        passed: result.passed,
        ...(result.reason === '' ? {} : { reason: result.reason }),
      },
    });
    if (result.passed) return true;
    this.#gateFailures += 1;
    // A failed quality gate is the lifecycle working, not an incident; an unclean reset (G5)
    // is a leak. Isolation violations carry their own escalating event.
    events.push({
      description: SeedEvent.GATE_FAILURE,
      level: result.gate === SeedLifecycleGate.SEED_GATE_G5_RESET ? TelemetryLevel.ERROR : TelemetryLevel.WARNING,
      attributes: { seed_id: seedId, gate: gateName(result.gate), reason: result.reason },
    });
    if (seed !== undefined && cullOnFailure) this.#cull(seed, `${gateName(result.gate)}: ${result.reason}`);
    return false;
  }

  #failGate(seed: SeedRecord, result: GateResult): void {
    this.#recordGate(seed, seed.seedId, result);
  }

  // ------------------------------------------------------------------ telemetry

  /** One packet per seed (then retired seeds are dropped) and one global packet. */
  #emitPackets(): void {
    const clock = this.#clock;
    for (const seed of [...this.#seeds.values()]) {
      const events: EventInput[] = [
        ...seed.events,
        {
          description: SeedEvent.SEED_STAGE,
          attributes: { seed_id: seed.seedId, stage: stageName(seed.lifecycle.stage), alpha: seed.alpha.toFixed(4) },
        },
      ];
      seed.events = [];
      const health = seed.violations > 0 ? HealthStatus.UNHEALTHY : seed.paused ? HealthStatus.DEGRADED : HealthStatus.HEALTHY;
      this.#sink.emit(
        buildTelemetryPacket({
          source: KASMINA_SOURCE,
          trainingRunId: this.#trainingRunId,
          packetId: `kasmina-seed-${seed.seedId}-${this.#step}`,
          clock,
          events,
          metrics: this.#seedMetrics(seed),
          health: {
            status: health,
            summary: stageName(seed.lifecycle.stage),
            indicators: { seed_id: seed.seedId, step_index: String(this.#step) },
          },
        }),
      );
      this.#packetsEmitted += 1;
      if (seed.retire) {
        this.#retired.push(this.#reportOf(seed));
        this.#seeds.delete(seed.seedId);
      }
    }
    const events = this.#globalEvents;
    this.#globalEvents = [];
    this.#sink.emit(
      buildTelemetryPacket({
        source: KASMINA_SOURCE,
        trainingRunId: this.#trainingRunId,
        packetId: `kasmina-global-${this.#step}`,
        clock,
        events,
        metrics: this.#globalMetrics(),
        health: {
          status: this.#isolation.total > 0 ? HealthStatus.DEGRADED : HealthStatus.HEALTHY,
          summary: `${this.#seeds.size} seeds`,
          indicators: { seeds: String(this.#seeds.size), step_index: String(this.#step) },
        },
      }),
    );
    this.#packetsEmitted += 1;
  }

  #seedMetrics(seed: SeedRecord): MetricInput[] {
    const attributes = { seed_id: seed.seedId };
    const m = (name: string, value: number, unit: string): MetricInput => ({ name, value, unit, attributes });
    return [
      m(SeedMetric.SEED_STAGE, seed.lifecycle.stage, 'state'),
      m(SeedMetric.SEED_ALPHA, seed.alpha, 'ratio'),
      m(SeedMetric.SEED_ALPHA_STEPS, seed.alphaSteps, 'count'),
      m(SeedMetric.SEED_KERNEL_ATTACHED, seed.slot === undefined ? 0 : 1, 'flag'),
      m(SeedMetric.SEED_KERNEL_LATENCY_MS, seed.kernelLatencyMs, 'ms'),
      m(SeedMetric.SEED_ISOLATION_VIOLATIONS, seed.violations, 'count'),
      m(SeedMetric.SEED_ISOLATION_LEAK, seed.lastLeak, 'ratio'),
      m(SeedMetric.SEED_GRADIENT_NORM, Number.isFinite(seed.lastGradNorm) ? seed.lastGradNorm : -1, 'grad'),
      m(SeedMetric.SEED_PARAMETERS, seed.slot?.parameterCount ?? 0, 'count'),
      m(SeedMetric.SEED_STEPS_IN_STAGE, seed.activeSteps, 'count'),
      ...(seed.contribution === undefined ? [] : [m(SeedMetric.SEED_CONTRIBUTION, seed.contribution, 'ratio')]),
    ];
  }

  #globalMetrics(): MetricInput[] {
    const active = [...this.#seeds.values()].filter((s) => ACTIVE_STAGES.has(s.lifecycle.stage)).length;
    const fossils = [...this.#seeds.values()].filter((s) => s.lifecycle.stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED).length;
    const breaker = this.#fetchBreaker.snapshot();
    return [
      { name: SeedMetric.SEEDS_ACTIVE, value: active, unit: 'count' },
      { name: SeedMetric.SEEDS_FOSSILIZED, value: fossils, unit: 'count' },
      { name: SeedMetric.SEEDS_CULLED_TOTAL, value: this.#seedsCulled, unit: 'count' },
      { name: SeedMetric.ISOLATION_VIOLATIONS, value: this.#isolation.total, unit: 'count' },
      { name: SeedMetric.ISOLATION_CHECKS, value: this.#isolationChecks, unit: 'count' },
      { name: SeedMetric.BREAKER_STATE, value: breaker.state, unit: 'state' },
      { name: SeedMetric.BREAKER_FAILURES, value: breaker.failureCount, unit: 'count' },
      { name: SeedMetric.GATE_FAILURES_TOTAL, value: this.#gateFailures, unit: 'count' },
      { name: SeedMetric.ILLEGAL_TRANSITIONS_TOTAL, value: this.#illegalTransitions, unit: 'count' },
      { name: SeedMetric.COMMANDS_APPLIED_TOTAL, value: this.#commandsApplied, unit: 'count' },
      { name: SeedMetric.REGISTRY_ENTRIES, value: this.#registry.entries, unit: 'count' },
      ...this.#verifier.metrics(),
      ...this.#fetcher.metrics(),
      ...(this.#prefetch?.metrics() ?? []),
    ];
  }

  #reportOf(seed: SeedRecord): SeedReport {
    const history = seed.lifecycle.history.map((t) => ({ from: t.from, to: t.to, step: t.step }));
    const decided =
      history.find((t) => t.to === SeedLifecycleStage.SEED_STAGE_FOSSILIZED) ??
      history.find((t) => t.to === SeedLifecycleStage.SEED_STAGE_CULLED) ??
      history.at(-1);
    return {
      seedId: seed.seedId,
      siteId: seed.siteId,
      blueprintId: seed.blueprintId,
      commandId: seed.commandId,
      germinatedStep: history[0]?.step ?? 0,
      fate: decided?.to ?? seed.lifecycle.stage,
      fateStep: decided?.step ?? 0,
      fateReason: decided?.to === SeedLifecycleStage.SEED_STAGE_CULLED ? seed.cullReason : '',
      ...(seed.contribution === undefined ? {} : { contribution: seed.contribution }),
      parameters: seed.parameters,
      history,
    };
  }

  #assertOpen(): void {
    if (this.#closed) throw new EsperError(ErrorCode.INVALID_STATE, 'Kasmina has shut down');
  }
}

function enumName(values: readonly { number: number; name: string }[], value: number): string {
  return values.find((v) => v.number === value)?.name ?? `UNKNOWN_${value}`;
}
