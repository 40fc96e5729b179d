/**
 * Publishing a learned policy: the candidate's gates (`gates.ts`) are evaluated; a candidate
 * that passes is sent as a signed `PolicyUpdate` (Tamiyo's own builder: architecture,
 * weights, checksum, the validation verdict, nonce and freshness) on the bus's policy stream,
 * where each Tamiyo verifies it and swaps it in at its next decision; one that fails is not
 * published, and a WARNING `simic_policy_blocked` names every failed gate. Each attempt also
 * emits Simic's metrics under the prototype's names (`simic.training.reward`,
 * `simic.policy.loss`, `simic.value.loss`, `simic.param.loss`, `simic.policy.entropy`,
 * `simic.training.iterations`, `simic.validation.pass`).
 */
import { buildTelemetryPacket, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import { TelemetryLevel, type PolicyUpdate, type PolicyValidationSummary } from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import type { HmacSigner } from '../security/index.js';
import { buildPolicyUpdate, type TamiyoGnn } from '../tamiyo/index.js';
import {
  evaluateGates,
  failedGateReasons,
  SIMIC_GATE_DEFAULTS,
  type HeldOutEvaluation,
  type SimicGateThresholds,
  type SimicTrainingStats,
} from './gates.js';

/** Simic's telemetry names (the prototype's, reference prototype-tamiyo-simic §15.7). */
export const SimicMetric = {
  TRAINING_REWARD: 'simic.training.reward',
  TRAINING_ITERATIONS: 'simic.training.iterations',
  POLICY_LOSS: 'simic.policy.loss',
  VALUE_LOSS: 'simic.value.loss',
  PARAM_LOSS: 'simic.param.loss',
  POLICY_ENTROPY: 'simic.policy.entropy',
  VALIDATION_PASS: 'simic.validation.pass',
} as const;

/** Simic's events. */
export const SimicEvent = {
  /** A candidate passed its gates and was published (INFO; version, policy_id). */
  POLICY_PUBLISHED: 'simic_policy_published',
  /** A candidate failed one or more gates and was not published (WARNING; version, reasons). */
  POLICY_BLOCKED: 'simic_policy_blocked',
} as const;

/** Options of {@link PolicyPublisher}. */
export interface PolicyPublisherOptions {
  readonly bus: Bus;
  /** Signs updates (the key ring every Tamiyo verifies with). */
  readonly signer: HmacSigner;
  readonly telemetry: TelemetrySink;
  readonly policyId: string;
  /** Run id stamped on the updates (Simic's learning run). */
  readonly trainingRunId: string;
  /** @default SIMIC_GATE_DEFAULTS */
  readonly thresholds?: SimicGateThresholds;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** What {@link PolicyPublisher.publish} did. */
export type PublishOutcome =
  | { readonly published: true; readonly update: PolicyUpdate; readonly validation: PolicyValidationSummary }
  | { readonly published: false; readonly validation: PolicyValidationSummary; readonly reasons: readonly string[] };

/** Gates, signs and publishes candidate policies; see the module comment. */
export class PolicyPublisher {
  readonly #o: PolicyPublisherOptions;
  readonly #clock: Clock;

  constructor(options: PolicyPublisherOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Evaluates the gates for `gnn` at `version` and publishes it if every gate passed.
   * @throws EsperError from the builder (bad ids) or the bus (publish failed)
   */
  async publish(
    gnn: TamiyoGnn,
    input: { readonly version: string; readonly stats: SimicTrainingStats; readonly evaluation?: HeldOutEvaluation },
  ): Promise<PublishOutcome> {
    const validation = evaluateGates(input.stats, input.evaluation, this.#o.thresholds ?? SIMIC_GATE_DEFAULTS, this.#clock.wallMs());
    const reasons = failedGateReasons(validation);
    this.#emit(input.stats, input.version, validation.passed, reasons);
    if (!validation.passed) return { published: false, validation, reasons };
    const update = buildPolicyUpdate(gnn, {
      policyId: this.#o.policyId,
      trainingRunId: this.#o.trainingRunId,
      version: input.version,
      signer: this.#o.signer,
      validation,
      clock: this.#clock,
    });
    await this.#o.bus.publish(update, { trainingRunId: this.#o.trainingRunId });
    return { published: true, update, validation };
  }

  #emit(stats: SimicTrainingStats, version: string, passed: boolean, reasons: readonly string[]): void {
    this.#o.telemetry.emit(
      buildTelemetryPacket({
        source: 'simic',
        trainingRunId: this.#o.trainingRunId,
        clock: this.#clock,
        metrics: [
          { name: SimicMetric.TRAINING_REWARD, value: stats.averageReward, unit: 'reward' },
          { name: SimicMetric.TRAINING_ITERATIONS, value: stats.episodes, unit: 'count' },
          { name: SimicMetric.POLICY_LOSS, value: stats.policyLoss, unit: 'loss' },
          { name: SimicMetric.VALUE_LOSS, value: stats.valueLoss, unit: 'loss' },
          { name: SimicMetric.PARAM_LOSS, value: stats.paramLoss, unit: 'loss' },
          { name: SimicMetric.POLICY_ENTROPY, value: stats.policyEntropy, unit: 'nats' },
          { name: SimicMetric.VALIDATION_PASS, value: passed ? 1 : 0, unit: 'bool' },
        ],
        events: [
          passed
            ? { description: SimicEvent.POLICY_PUBLISHED, level: TelemetryLevel.INFO, attributes: { version, policy_id: this.#o.policyId } }
            : {
                description: SimicEvent.POLICY_BLOCKED,
                level: TelemetryLevel.WARNING,
                attributes: { version, reasons: reasons.join('; ') },
              },
        ],
      }),
    );
  }
}
