/**
 * Simic as a service: the fleet's field reports in (Oona, group `simic`, into the durable
 * replay buffer), PPO on the reports the current policy decided, the gates, a signed update
 * out — the closed loop of issue 15.
 *
 * 1. Every report the ingestor adds is considered: one whose `tamiyo_policy_version` is not
 *    the version being trained is counted `other_version` and not trained on (PPO is
 *    on-policy: its ratio needs the behaviour policy to be the one being improved); one
 *    that gives no transition (`transitions.ts`) is counted by reason; the others wait.
 * 2. Once `reportsPerUpdate` usable reports wait, one update runs (never two at once): a
 *    copy of the current network is trained by one PPO update on them (one-decision
 *    episodes), evaluated on held-out seeds by the injected `evaluate`, and gated and
 *    published by the {@link PolicyPublisher} as version `<versionPrefix>-v<n>`. Without
 *    an evaluator the held-out gates fail: nothing is published, the update is reported
 *    blocked. A published candidate becomes the current policy (its weights saved to
 *    `policyFile`, if given, so a restarted Simic continues from it); a blocked one is
 *    discarded with the reports it used.
 * 3. Each update emits the publisher's `simic.*` metrics and event, and the learner's
 *    diagnostics (per-head entropy, KL, clip fraction, explained variance, gradient norm).
 *
 * Tamiyo and Simic start from the same network: every run's Tamiyo and Simic draw it from
 * `tamiyo.gnnInitSeed` (Weatherlight's composition), so the first reports name the version
 * Simic trains without a publish that a run opened later would miss.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import {
  buildTelemetryPacket,
  closeOnce,
  describeError,
  ErrorCode,
  EsperError,
  optionChecks,
  ServiceState,
  systemClock,
  type Clock,
  type TelemetrySink,
} from '../core/index.js';
import { TelemetryLevel, type FieldReport } from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import { loadPolicy, serialisePolicy, type TamiyoGnn } from '../tamiyo/index.js';
import type { Rng } from '../tensor/index.js';
import type { Trajectory } from './experience.js';
import type { HeldOutEvaluation } from './gates.js';
import { SimicIngestor } from './ingestor.js';
import { PpoLearner, type PpoOptions, type PpoStats } from './learner.js';
import type { PolicyPublisher, PublishOutcome } from './publisher.js';
import type { ReplayBuffer } from './replay-buffer.js';
import { resolveReportRewardOptions, transitionOfReport, type ReportRewardOptions } from './transitions.js';

/** The learner's diagnostics Simic emits after each update (beside the publisher's `simic.*`). */
export const SimicLearnerMetric = {
  TRAINING_LOSS: 'simic.training.loss',
  TRAINING_DECISIONS: 'simic.training.decisions',
  ENTROPY_ACTION: 'simic.policy.entropy.action',
  ENTROPY_SITE: 'simic.policy.entropy.site',
  ENTROPY_BLUEPRINT: 'simic.policy.entropy.blueprint',
  ENTROPY_SEED: 'simic.policy.entropy.seed',
  APPROX_KL: 'simic.policy.kl',
  CLIP_FRACTION: 'simic.policy.clip_fraction',
  EXPLAINED_VARIANCE: 'simic.value.explained_variance',
  GRAD_NORM: 'simic.training.grad_norm',
} as const;

/** Events of the service (beside the publisher's). */
export const SimicServiceEvent = {
  /** An update failed (ERROR; error). The reports it took are dropped; the service goes on. */
  UPDATE_FAILED: 'simic_update_failed',
} as const;

/** Evaluates a candidate on held-out seeds against the current policy and the heuristic. */
export type HeldOutEvaluator = (
  candidate: TamiyoGnn,
  context: { readonly current: TamiyoGnn; readonly currentVersion: string },
) => Promise<HeldOutEvaluation>;

/** Options of {@link SimicService}. */
export interface SimicServiceOptions {
  readonly bus: Bus;
  /** The durable replay buffer the ingestor fills (the caller opens and closes it). */
  readonly buffer: ReplayBuffer;
  /** Consumer name in group `simic` (one per process). */
  readonly consumer: string;
  /**
   * The network every Tamiyo runs now, at {@link SimicServiceOptions.version}; the service
   * owns it (disposes it on close). Replaced by the one in `policyFile` when that exists.
   */
  readonly gnn: TamiyoGnn;
  readonly version: string;
  readonly publisher: Pick<PolicyPublisher, 'publish'>;
  /**
   * The held-out evaluation the gates need. @default none: every update is blocked (the
   * held-out gates fail unevaluated), nothing is published
   */
  readonly evaluate?: HeldOutEvaluator;
  /** Usable reports per update. @default 32 */
  readonly reportsPerUpdate?: number;
  /** Version names: `<versionPrefix>-v<n>`. @default 'simic' */
  readonly versionPrefix?: string;
  /** Where the current policy is kept across restarts. @default not kept */
  readonly policyFile?: string;
  readonly ppo?: Partial<PpoOptions>;
  readonly reward?: Partial<ReportRewardOptions>;
  /** Shuffles PPO's minibatches. */
  readonly rng: Rng;
  readonly telemetry: TelemetrySink;
  /** Run id of Simic's telemetry. @default 'simic' */
  readonly trainingRunId?: string;
  /** Called after each update with what it did (tests, progress lines). */
  readonly onUpdate?: (update: SimicUpdate) => void;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** One update of {@link SimicService}. */
export interface SimicUpdate {
  /** Version trained from, and the candidate's version. */
  readonly fromVersion: string;
  readonly candidateVersion: string;
  readonly reports: number;
  readonly stats: PpoStats;
  readonly evaluation?: HeldOutEvaluation;
  readonly outcome: PublishOutcome;
  readonly durationMs: number;
}

/** Counters of a {@link SimicService}. */
export interface SimicServiceStats {
  /** Version being trained (the one Tamiyo runs, once it took the last publish). */
  readonly version: string;
  /** Reports the ingestor added to the buffer (or found there at start). */
  readonly considered: number;
  /** Usable reports waiting for the next update. */
  readonly pending: number;
  /** Reports left out: of another policy version, or giving no transition (by reason). */
  readonly otherVersion: number;
  readonly unusable: Readonly<Record<string, number>>;
  readonly updates: number;
  readonly published: number;
  readonly blocked: number;
  readonly failed: number;
}

/** Lifecycle of a {@link SimicService}. */
export type SimicServiceState = 'created' | 'running' | 'stopped';

/** Simic: ingest, learn, gate, publish (see the module comment). */
export class SimicService implements AsyncDisposable {
  readonly #o: SimicServiceOptions;
  readonly #clock: Clock;
  readonly #reward: ReportRewardOptions;
  readonly #reportsPerUpdate: number;
  readonly #prefix: string;
  readonly #runId: string;
  readonly #state = new ServiceState<SimicServiceState>('simic service', 'created');
  readonly #ingestor: SimicIngestor;
  #gnn: TamiyoGnn;
  #version: string;
  #published = 0;
  #pending: Trajectory[] = [];
  #work: Promise<void> = Promise.resolve();
  #updating = false;
  #counts = { considered: 0, otherVersion: 0, updates: 0, published: 0, blocked: 0, failed: 0 };
  readonly #unusable: Record<string, number> = {};
  readonly #close = closeOnce(async () => {
    this.#state.set('stopped');
    try {
      await this.#ingestor.close();
      await this.#work;
    } finally {
      this.#gnn.dispose();
    }
  });

  constructor(options: SimicServiceOptions) {
    const check = optionChecks('SimicServiceOptions');
    check.nonEmptyString('version', options.version);
    this.#reportsPerUpdate = check.integer('reportsPerUpdate', options.reportsPerUpdate ?? 32, { min: 1 });
    this.#prefix = check.nonEmptyString('versionPrefix', options.versionPrefix ?? 'simic');
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#reward = resolveReportRewardOptions(options.reward);
    this.#runId = options.trainingRunId ?? 'simic';
    this.#gnn = options.gnn;
    this.#version = options.version;
    this.#ingestor = new SimicIngestor({
      buffer: options.buffer,
      bus: options.bus,
      consumer: options.consumer,
      onIngested: (report, result) => {
        if (result === 'added') this.#consider(report);
      },
    });
  }

  /** `created`, `running` after {@link SimicService.start}, `stopped` after close. */
  get state(): SimicServiceState {
    return this.#state.current;
  }

  /** Version being trained. */
  get version(): string {
    return this.#version;
  }

  /** The current network (the service's; do not dispose). */
  get gnn(): TamiyoGnn {
    return this.#gnn;
  }

  /**
   * Loads the policy file when there is one, considers the reports the buffer holds, then
   * subscribes to field reports; resolves once the subscription is ready.
   * @throws EsperError INVALID_STATE unless `created`; TAMIYO_POLICY_INVALID for a damaged
   *   policy file (or one of another architecture).
   */
  async start(): Promise<void> {
    this.#state.require('created', 'start');
    this.#state.set('running');
    await this.#loadPolicyFile();
    for (const report of this.#o.buffer.reports()) this.#consider(report);
    await this.#ingestor.start();
  }

  stats(): SimicServiceStats {
    return { version: this.#version, pending: this.#pending.length, unusable: { ...this.#unusable }, ...this.#counts };
  }

  /** Resolves once no update is running or due. */
  async idle(): Promise<void> {
    for (;;) {
      const work = this.#work;
      await work;
      if (work === this.#work) return;
    }
  }

  /** Stops ingesting, lets a running update finish, frees the network. Idempotent. */
  close(): Promise<void> {
    return this.#close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  #consider(report: FieldReport): void {
    this.#counts.considered += 1;
    if (report.tamiyoPolicyVersion !== this.#version) {
      this.#counts.otherVersion += 1;
      return;
    }
    const transition = transitionOfReport(report, this.#reward);
    if (!transition.usable) {
      this.#unusable[transition.reason] = (this.#unusable[transition.reason] ?? 0) + 1;
      return;
    }
    this.#pending.push(transition.trajectory);
    this.#maybeUpdate();
  }

  #maybeUpdate(): void {
    if (this.#updating || this.#pending.length < this.#reportsPerUpdate || !this.#state.is('running')) return;
    this.#updating = true;
    this.#work = this.#work
      .then(() => this.#update())
      .catch((error: unknown) => {
        this.#counts.failed += 1;
        this.#emit(
          [],
          [{ description: SimicServiceEvent.UPDATE_FAILED, level: TelemetryLevel.ERROR, attributes: { error: describeError(error) } }],
        );
      })
      .finally(() => {
        this.#updating = false;
        this.#maybeUpdate();
      });
  }

  async #update(): Promise<void> {
    const started = this.#clock.monotonicMs();
    const batch = this.#pending;
    this.#pending = [];
    const fromVersion = this.#version;
    const candidateVersion = `${this.#prefix}-v${this.#published + 1}`;
    const candidate = loadPolicy(serialisePolicy(this.#gnn, { version: fromVersion }), this.#gnn.config, 'simic current policy').gnn;
    let adopted = false;
    try {
      const learner = new PpoLearner(candidate, this.#o.ppo);
      let stats: PpoStats;
      try {
        stats = learner.update(batch, this.#o.rng);
      } finally {
        learner.dispose();
      }
      this.#counts.updates += 1;
      this.#emitLearner(stats);
      const evaluation =
        this.#o.evaluate === undefined ? undefined : await this.#o.evaluate(candidate, { current: this.#gnn, currentVersion: fromVersion });
      const outcome = await this.#o.publisher.publish(candidate, {
        version: candidateVersion,
        stats: { ...stats, paramLoss: 0 },
        ...(evaluation === undefined ? {} : { evaluation }),
      });
      if (outcome.published) {
        this.#counts.published += 1;
        this.#published += 1;
        this.#gnn.dispose();
        this.#gnn = candidate;
        adopted = true;
        this.#version = candidateVersion;
        // Reports of the old version that arrived during the update are no longer on-policy.
        this.#pending = [];
        if (this.#o.policyFile !== undefined)
          await saveAtomically(this.#o.policyFile, serialisePolicy(candidate, { version: candidateVersion }));
      } else {
        this.#counts.blocked += 1;
      }
      this.#o.onUpdate?.({
        fromVersion,
        candidateVersion,
        reports: batch.length,
        stats,
        ...(evaluation === undefined ? {} : { evaluation }),
        outcome,
        durationMs: this.#clock.monotonicMs() - started,
      });
    } finally {
      if (!adopted) candidate.dispose();
    }
  }

  async #loadPolicyFile(): Promise<void> {
    const file = this.#o.policyFile;
    if (file === undefined) return;
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, `Simic's policy file ${file} cannot be read`, {
        cause: error,
        details: { path: file },
      });
    }
    const loaded = loadPolicy(bytes, this.#gnn.config, file);
    this.#gnn.dispose();
    this.#gnn = loaded.gnn;
    this.#version = loaded.version;
    const match = /-v(\d+)$/.exec(loaded.version);
    this.#published = match === null ? 0 : Number(match[1]);
  }

  #emitLearner(stats: PpoStats): void {
    const ppo = { valueCoef: 0.5, entropyCoef: 0.01, ...this.#o.ppo };
    this.#emit(
      [
        {
          name: SimicLearnerMetric.TRAINING_LOSS,
          value: stats.policyLoss + ppo.valueCoef * stats.valueLoss - ppo.entropyCoef * stats.policyEntropy,
          unit: 'loss',
        },
        { name: SimicLearnerMetric.TRAINING_DECISIONS, value: stats.decisions, unit: 'count' },
        { name: SimicLearnerMetric.ENTROPY_ACTION, value: stats.entropy.action, unit: 'nats' },
        { name: SimicLearnerMetric.ENTROPY_SITE, value: stats.entropy.site, unit: 'nats' },
        { name: SimicLearnerMetric.ENTROPY_BLUEPRINT, value: stats.entropy.blueprint, unit: 'nats' },
        { name: SimicLearnerMetric.ENTROPY_SEED, value: stats.entropy.seed, unit: 'nats' },
        { name: SimicLearnerMetric.APPROX_KL, value: stats.approxKl, unit: 'nats' },
        { name: SimicLearnerMetric.CLIP_FRACTION, value: stats.clipFraction, unit: 'ratio' },
        { name: SimicLearnerMetric.EXPLAINED_VARIANCE, value: stats.explainedVariance, unit: 'ratio' },
        { name: SimicLearnerMetric.GRAD_NORM, value: stats.gradNorm, unit: 'norm' },
      ],
      [],
    );
  }

  #emit(
    metrics: Parameters<typeof buildTelemetryPacket>[0]['metrics'],
    events: Parameters<typeof buildTelemetryPacket>[0]['events'],
  ): void {
    this.#o.telemetry.emit(
      buildTelemetryPacket({
        source: 'simic',
        trainingRunId: this.#runId,
        clock: this.#clock,
        ...(metrics === undefined ? {} : { metrics }),
        ...(events === undefined ? {} : { events }),
        ...(events !== undefined && events.length > 0 ? { level: TelemetryLevel.ERROR } : {}),
      }),
    );
  }
}

/** Writes `bytes` to `file` so a crash leaves the old file or the new one, never a torn one. */
async function saveAtomically(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${randomUUID()}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}
