/**
 * Turns a policy proposal and its risk verdict into a signed `AdaptationCommand`
 * (reference prototype-tamiyo-simic §8.3, with the RC1 contract of spec 01). Commands are
 * valid by construction: the decision types carry every id a command needs, the command id
 * is generated and the run id is checked once, at construction; Kasmina checks the
 * command's dependencies where it applies it. The verdict → command table is in
 * docs/architecture.md (Tamiyo).
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  buildDecisionMetadata,
  ErrorCode,
  EsperError,
  systemClock,
  type BlendConfigInput,
  type Clock,
  type CoverageSummaryInput,
  type DecisionMetadataInput,
  type DependencyGuard,
  optionChecks,
} from '../core/index.js';
import {
  AdaptationCommandSchema,
  BlendMode,
  BlendModeSource,
  CircuitBreakerState,
  CommandCircuitBreakerSchema,
  CommandOptimizerAdjustmentSchema,
  CommandSeedOperationSchema,
  CommandType,
  SeedOperation,
  type AdaptationCommand,
} from '../leyline/index.js';
import type { HmacSigner } from '../security/index.js';
import type { PolicyProposal } from './policy.js';
import { DecisionKind, type ProposedDecision } from './decision.js';
import type { RiskVerdict } from './risk-engine.js';

/** Contract version of the commands Tamiyo builds. */
export const COMMAND_VERSION = 1;

/** `CommandCircuitBreaker.rationale` of a breaker command the policy chose (reference §8.1). */
export const BREAKER_RATIONALE = 'policy_action';

/**
 * Confidence-gate parameters of a CONFIDENCE blend (reference §8.5 defaults: k 1, tau 1,
 * alpha in [0, 1]).
 */
export const CONFIDENCE_BLEND_DEFAULTS = Object.freeze({ gateK: 1, gateTau: 1, alphaLo: 0, alphaHi: 1 });

/** Options of {@link CommandBuilder}. */
export interface CommandBuilderOptions {
  /** Run the commands belong to; required (checked by the guard at construction). */
  readonly trainingRunId: string;
  /** Signs every built command. */
  readonly signer: HmacSigner;
  /** Checks the run id at construction (CRITICAL `dependency_guard.violation` when blank). */
  readonly guard: DependencyGuard;
  /** `issued_by` of every command. @default 'tamiyo' */
  readonly issuedBy?: string;
  /** Wall clock of `issued_at`. @default systemClock */
  readonly clock?: Clock;
}

/** Builds and signs Tamiyo's adaptation commands. Stateless between calls. */
export class CommandBuilder {
  readonly #trainingRunId: string;
  readonly #signer: HmacSigner;
  readonly #issuedBy: string;
  readonly #clock: Clock;

  /** @throws DependencyViolationError when `trainingRunId` is blank (CRITICAL telemetry). */
  constructor(options: CommandBuilderOptions) {
    this.#trainingRunId = options.guard.requireId(options.trainingRunId, 'training_run_id');
    this.#signer = options.signer;
    this.#issuedBy = options.issuedBy ?? 'tamiyo';
    if (this.#issuedBy.trim().length === 0) optionChecks('CommandBuilderOptions').fail('issuedBy', 'a non-blank string', this.#issuedBy);
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * The signed command carrying out `verdict.decision`, or `undefined` for a wait.
   * `verdict` must be the risk engine's verdict on `proposal.decision`.
   *
   * @throws EsperError INVALID_ARGUMENT when the verdict is for another proposal, or the
   *   proposal breaks a metadata rule (non-finite score, CONFIDENCE without ≥ 2 logits, …).
   */
  build(proposal: PolicyProposal, verdict: RiskVerdict, coverage?: CoverageSummaryInput): AdaptationCommand | undefined {
    if (!sameDecision(verdict.proposal, proposal.decision)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'the risk verdict is for another proposal', {
        details: { field: 'verdict.proposal', proposal: proposal.decision.kind, verdict: verdict.proposal.kind },
      });
    }
    const decision = verdict.decision;
    if (decision.kind === DecisionKind.WAIT) return undefined;

    const command = create(AdaptationCommandSchema, {
      version: COMMAND_VERSION,
      commandId: randomUUID(),
      issuedAt: timestampFromMs(this.#clock.wallMs()),
      issuedBy: this.#issuedBy,
      trainingRunId: this.#trainingRunId,
      ...payloadOf(decision, proposal),
      metadata: buildDecisionMetadata(metadataOf(proposal, verdict, coverage)),
    });
    return this.#signer.sign(AdaptationCommandSchema, command);
  }
}

type CommandFields = Pick<AdaptationCommand, 'commandType' | 'targetSeedId' | 'payload'>;

function payloadOf(decision: ProposedDecision, proposal: PolicyProposal): CommandFields {
  const targetSeedId = decision.seedId ?? '';
  switch (decision.kind) {
    case DecisionKind.GERMINATE:
      return {
        commandType: CommandType.COMMAND_SEED,
        targetSeedId: decision.seedId,
        payload: {
          case: 'seedOperation',
          value: create(CommandSeedOperationSchema, {
            operation: SeedOperation.SEED_OP_GERMINATE,
            blueprintId: decision.blueprintId,
            siteId: decision.siteId,
            ...(proposal.blendMode === undefined ? {} : { blendMode: proposal.blendMode }),
          }),
        },
      };
    case DecisionKind.CULL:
      return {
        commandType: CommandType.COMMAND_SEED,
        targetSeedId: decision.seedId,
        payload: { case: 'seedOperation', value: create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_CULL }) },
      };
    case DecisionKind.PAUSE:
      return { commandType: CommandType.COMMAND_PAUSE, targetSeedId, payload: { case: undefined } };
    case DecisionKind.OPTIMIZER: {
      // An adjustment that changes nothing would be refused by Tolaria: the policy must say what to set.
      const rate = proposal.learningRate;
      if (rate === undefined || !(Number.isFinite(rate) && rate > 0)) {
        throw new EsperError(
          ErrorCode.INVALID_ARGUMENT,
          `an optimizer decision needs a learning rate that is finite and > 0, got ${rate}`,
          {
            details: { field: 'learningRate' },
          },
        );
      }
      return {
        commandType: CommandType.COMMAND_OPTIMIZER,
        targetSeedId,
        payload: { case: 'optimizerAdjustment', value: create(CommandOptimizerAdjustmentSchema, { learningRate: rate }) },
      };
    }
    case DecisionKind.BREAKER_OPEN:
    case DecisionKind.BREAKER_CLOSE:
      return {
        commandType: CommandType.COMMAND_CIRCUIT_BREAKER,
        targetSeedId,
        payload: {
          case: 'circuitBreaker',
          value: create(CommandCircuitBreakerSchema, {
            desiredState:
              decision.kind === DecisionKind.BREAKER_OPEN
                ? CircuitBreakerState.CIRCUIT_STATE_OPEN
                : CircuitBreakerState.CIRCUIT_STATE_CLOSED,
            rationale: BREAKER_RATIONALE,
          }),
        },
      };
    case DecisionKind.WAIT:
      throw new EsperError(ErrorCode.INVALID_STATE, 'a wait has no command');
    default: {
      const unknown: never = decision;
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown decision kind ${String((unknown as ProposedDecision).kind)}`, {
        details: { field: 'decision.kind' },
      });
    }
  }
}

function metadataOf(proposal: PolicyProposal, verdict: RiskVerdict, coverage: CoverageSummaryInput | undefined): DecisionMetadataInput {
  const proposed = proposal.decision;
  const blend = verdict.decision.kind === DecisionKind.GERMINATE ? blendOf(proposal) : undefined;
  const seedId = proposed.seedId ?? '';
  return {
    policy: {
      actionId: proposal.actionId,
      policyVersion: proposal.policyVersion,
      valueEstimate: proposal.valueEstimate ?? 0,
      riskScore: proposed.policyRiskScore ?? 0,
      paramDelta: proposed.paramDelta ?? 0,
      riskIndex: proposal.riskIndex ?? 0,
      blendingIndex: proposal.blendingIndex ?? 0,
    },
    risk: {
      reason: verdict.reason,
      conservativeMode: verdict.conservativeMode,
      breakerConfidence: verdict.breakerConfidence,
    },
    ...(blend === undefined ? {} : { blend }),
    ...(coverage === undefined ? {} : { coverage }),
    ...(seedId.length === 0
      ? {}
      : {
          selection: {
            seedId,
            blueprintId: proposed.blueprintId ?? '',
            seedScore: proposal.seedScore ?? 0,
            blueprintScore: proposal.blueprintScore ?? 0,
          },
        }),
  };
}

/** The blend config of a germinate that names a mode (source POLICY, alpha 1). */
function blendOf(proposal: PolicyProposal): BlendConfigInput | undefined {
  const mode = proposal.blendMode;
  if (mode === undefined || mode === BlendMode.UNSPECIFIED) return undefined;
  const logits = proposal.blendLogits ?? [];
  const base: BlendConfigInput = {
    mode,
    modeSource: BlendModeSource.POLICY,
    alpha: 1,
    scheduleStart: proposal.schedule?.start ?? 0,
    scheduleEnd: proposal.schedule?.end ?? 0,
    policyLogits: logits,
    logitsAvailable: logits.length > 0,
    ...(proposal.alphaVec === undefined ? {} : { alphaVec: proposal.alphaVec }),
  };
  if (mode !== BlendMode.CONFIDENCE) return base;
  // Kasmina gates a CONFIDENCE blend by the top-2 margin of these logits.
  if (logits.length < 2) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `BLEND_MODE_CONFIDENCE needs at least 2 blend logits, got ${logits.length}`, {
      details: { field: 'blendLogits' },
    });
  }
  return { ...base, ...CONFIDENCE_BLEND_DEFAULTS, confidenceLogitsRequired: true };
}

function sameDecision(a: ProposedDecision, b: ProposedDecision): boolean {
  return (
    a === b ||
    (a.kind === b.kind &&
      a.seedId === b.seedId &&
      a.siteId === b.siteId &&
      a.blueprintId === b.blueprintId &&
      a.policyRiskScore === b.policyRiskScore &&
      a.paramDelta === b.paramDelta)
  );
}
