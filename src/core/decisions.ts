/**
 * Typed decision metadata of an AdaptationCommand (spec 01 "Message decisions"): Tamiyo
 * builds it with {@link buildDecisionMetadata} and attaches it before signing; Kasmina,
 * Tolaria and Simic read it with {@link readDecisionMetadata}. Both sides run the same
 * checks (the rules: docs/architecture.md, Core, "Typed contract helpers").
 */
import { clone, create } from '@bufbuild/protobuf';
import {
  AdaptationCommandSchema,
  BlendConfigSchema,
  BlendMode,
  BlendModeSchema,
  BlendModeSourceSchema,
  CoverageGroupSchema,
  CoverageSummarySchema,
  DecisionMetadataSchema,
  PolicyMetadataSchema,
  RiskMetadataSchema,
  RiskReasonSchema,
  SelectionContextSchema,
  type AdaptationCommand,
  type BlendConfig,
  type BlendModeSource,
  type CoverageSummary,
  type DecisionMetadata,
  type PolicyMetadata,
  type RiskMetadata,
  type RiskReason,
  type SelectionContext,
} from '../leyline/index.js';
import { compareUtf8, ContractChecker } from './contract-checks.js';
import { ErrorCode, EsperError } from './errors.js';
import { CONTRACT_LIMITS } from './limits.js';

/** Most entries `BlendConfig.alpha_vec` may hold (spec 01 rule 3). */
export const MAX_ALPHA_VEC_ENTRIES = CONTRACT_LIMITS.alphaVecMaxEntries;

/** Most entries `BlendConfig.policy_logits` may hold (spec 01 rule 3). */
export const MAX_POLICY_LOGITS_ENTRIES = CONTRACT_LIMITS.policyLogitsMaxEntries;

/** What the policy network said (`DecisionMetadata.policy`). */
export interface PolicyMetadataInput {
  /** Index of the chosen action (uint32). */
  readonly actionId: number;
  /** Version of the policy that decided; required, so reports can be attributed. */
  readonly policyVersion: string;
  /** The value head's estimate. */
  readonly valueEstimate: number;
  /** Probability of the chosen risk class, in [0, 1]. */
  readonly riskScore: number;
  /** @default 0 */
  readonly paramDelta?: number;
  /** Chosen risk class (uint32). @default 0 */
  readonly riskIndex?: number;
  /** Chosen blending method (uint32). @default 0 */
  readonly blendingIndex?: number;
}

/** What the risk engine decided and why (`DecisionMetadata.risk`). */
export interface RiskMetadataInput {
  /** Why the decision was shaped; UNSPECIFIED when the risk engine left it alone. */
  readonly reason: RiskReason;
  /** @default false */
  readonly conservativeMode?: boolean;
  /** In [0, 1]. @default 0 */
  readonly breakerConfidence?: number;
}

/** Blending configuration for a seed (`DecisionMetadata.blend`). */
export interface BlendConfigInput {
  /** Must not be UNSPECIFIED. */
  readonly mode: BlendMode;
  /** Who chose the mode; must not be UNSPECIFIED. */
  readonly modeSource: BlendModeSource;
  /** Base blend weight in [0, 1]. */
  readonly alpha: number;
  /** In [0, 1], ≤ `scheduleEnd`. @default 0 */
  readonly scheduleStart?: number;
  /** In [0, 1], ≥ `scheduleStart`. @default 0 */
  readonly scheduleEnd?: number;
  /**
   * Per-channel alpha, each in [0, 1], at most {@link MAX_ALPHA_VEC_ENTRIES} entries.
   * Required for BLEND_MODE_CHANNEL, refused otherwise. Order is preserved.
   * @default []
   */
  readonly alphaVec?: readonly number[];
  /** @default false */
  readonly logitsAvailable?: boolean;
  /** Confidence gate steepness, ≥ 0 (> 0 for CONFIDENCE). @default 0 */
  readonly gateK?: number;
  /** Confidence gate margin threshold, ≥ 0 (> 0 for CONFIDENCE). @default 0 */
  readonly gateTau?: number;
  /** Lower clamp of the effective alpha, in [0, 1]. @default 0 */
  readonly alphaLo?: number;
  /** Upper clamp of the effective alpha, in [0, 1], ≥ `alphaLo` (> 0 for CONFIDENCE). @default 0 */
  readonly alphaHi?: number;
  /** @default false */
  readonly confidenceLogitsRequired?: boolean;
  /**
   * The controller's blend-head logits (finite), at most {@link MAX_POLICY_LOGITS_ENTRIES};
   * BLEND_MODE_CONFIDENCE gates alpha by their top-2 margin. @default []
   */
  readonly policyLogits?: readonly number[];
}

/** One feature group's coverage. */
export interface CoverageGroupInput {
  /** Non-blank and unique within the summary. */
  readonly name: string;
  /** Fraction of the group's features present, in [0, 1]. */
  readonly value: number;
}

/** Feature coverage of the controller's input graph (`DecisionMetadata.coverage`). */
export interface CoverageSummaryInput {
  /** In [0, 1]. */
  readonly average: number;
  /** Any order; the built message holds them sorted by name. @default [] */
  readonly groups?: readonly CoverageGroupInput[];
}

/** Which seed and blueprint the policy selected (`DecisionMetadata.selection`). */
export interface SelectionContextInput {
  /** Required. */
  readonly seedId: string;
  /** Empty when the decision selects no blueprint. @default '' */
  readonly blueprintId?: string;
  /** @default 0 */
  readonly seedScore?: number;
  /** @default 0 */
  readonly blueprintScore?: number;
}

/** Inputs of {@link buildDecisionMetadata}; at least one section must be present. */
export interface DecisionMetadataInput {
  readonly policy?: PolicyMetadataInput;
  readonly risk?: RiskMetadataInput;
  readonly blend?: BlendConfigInput;
  readonly coverage?: CoverageSummaryInput;
  readonly selection?: SelectionContextInput;
}

const FIELD = 'metadata';

/**
 * Builds `DecisionMetadata` from typed input (producer side). Floats are rounded to
 * float32; coverage groups are sorted by name.
 *
 * @throws EsperError CONTRACT_BOUND_EXCEEDED when `alpha_vec` is over its bound,
 *   INVALID_ARGUMENT for any other violation (see the module doc); `details.field` names
 *   the field.
 */
export function buildDecisionMetadata(input: DecisionMetadataInput): DecisionMetadata {
  const check = new ContractChecker('producer');
  const metadata = create(DecisionMetadataSchema, {
    policy: input.policy === undefined ? undefined : policyMessage(input.policy, check),
    risk: input.risk === undefined ? undefined : riskMessage(input.risk, check),
    blend: input.blend === undefined ? undefined : blendMessage(input.blend, check),
    coverage: input.coverage === undefined ? undefined : coverageMessage(input.coverage, check),
    selection: input.selection === undefined ? undefined : selectionMessage(input.selection, check),
  });
  validateDecisionMetadata(metadata, check);
  return metadata;
}

/**
 * Reads and validates a command's decision metadata (consumer side).
 *
 * @throws EsperError CONTRACT_FIELD_MISSING when the command has no metadata or a required
 *   field is empty, CONTRACT_BOUND_EXCEEDED when `alpha_vec` is over its bound,
 *   INVALID_ARGUMENT for any other violation.
 */
export function readDecisionMetadata(command: AdaptationCommand): DecisionMetadata {
  const metadata = command.metadata;
  if (metadata === undefined) {
    throw new EsperError(ErrorCode.CONTRACT_FIELD_MISSING, `command ${JSON.stringify(command.commandId)} carries no decision metadata`, {
      details: { field: FIELD, commandId: command.commandId },
    });
  }
  validateDecisionMetadata(metadata, new ContractChecker('consumer'));
  return metadata;
}

/**
 * Returns a copy of `command` carrying a copy of `metadata` (neither argument is
 * modified). Call it before signing: the metadata is part of the signed bytes.
 *
 * @throws EsperError INVALID_STATE when the command is already signed; the producer-side
 *   errors of {@link buildDecisionMetadata} when `metadata` breaks a rule.
 */
export function attachDecisionMetadata(command: AdaptationCommand, metadata: DecisionMetadata): AdaptationCommand {
  if (command.security !== undefined && command.security.signature.length > 0) {
    throw new EsperError(
      ErrorCode.INVALID_STATE,
      `command ${JSON.stringify(command.commandId)} is already signed; attach metadata before signing`,
      { details: { commandId: command.commandId } },
    );
  }
  validateDecisionMetadata(metadata, new ContractChecker('producer'));
  const copy = clone(AdaptationCommandSchema, command);
  copy.metadata = clone(DecisionMetadataSchema, metadata);
  return copy;
}

// --- producer: input → message (types, integers and float32 rounding) -------------------

function policyMessage(input: PolicyMetadataInput, check: ContractChecker): PolicyMetadata {
  const at = `${FIELD}.policy`;
  return create(PolicyMetadataSchema, {
    actionId: check.uint32(`${at}.action_id`, input.actionId),
    valueEstimate: check.float32(`${at}.value_estimate`, input.valueEstimate),
    riskScore: check.float32(`${at}.risk_score`, input.riskScore),
    policyVersion: check.text(`${at}.policy_version`, input.policyVersion, true),
    paramDelta: check.float32(`${at}.param_delta`, input.paramDelta ?? 0),
    riskIndex: check.uint32(`${at}.risk_index`, input.riskIndex ?? 0),
    blendingIndex: check.uint32(`${at}.blending_index`, input.blendingIndex ?? 0),
  });
}

function riskMessage(input: RiskMetadataInput, check: ContractChecker): RiskMetadata {
  const at = `${FIELD}.risk`;
  return create(RiskMetadataSchema, {
    reason: input.reason,
    conservativeMode: input.conservativeMode ?? false,
    breakerConfidence: check.float32(`${at}.breaker_confidence`, input.breakerConfidence ?? 0),
  });
}

function blendMessage(input: BlendConfigInput, check: ContractChecker): BlendConfig {
  const at = `${FIELD}.blend`;
  const alphaVec = input.alphaVec ?? [];
  // Check the bound before touching the entries: an oversized vector fails fast and whole.
  check.listBound(`${at}.alpha_vec`, alphaVec.length, MAX_ALPHA_VEC_ENTRIES);
  const policyLogits = input.policyLogits ?? [];
  check.listBound(`${at}.policy_logits`, policyLogits.length, MAX_POLICY_LOGITS_ENTRIES);
  return create(BlendConfigSchema, {
    mode: input.mode,
    alpha: check.float32(`${at}.alpha`, input.alpha),
    scheduleStart: check.float32(`${at}.schedule_start`, input.scheduleStart ?? 0),
    scheduleEnd: check.float32(`${at}.schedule_end`, input.scheduleEnd ?? 0),
    alphaVec: alphaVec.map((value, i) => check.float32(`${at}.alpha_vec[${i}]`, value)),
    logitsAvailable: input.logitsAvailable ?? false,
    gateK: check.float32(`${at}.gate_k`, input.gateK ?? 0),
    gateTau: check.float32(`${at}.gate_tau`, input.gateTau ?? 0),
    alphaLo: check.float32(`${at}.alpha_lo`, input.alphaLo ?? 0),
    alphaHi: check.float32(`${at}.alpha_hi`, input.alphaHi ?? 0),
    modeSource: input.modeSource,
    confidenceLogitsRequired: input.confidenceLogitsRequired ?? false,
    policyLogits: policyLogits.map((value, i) => check.float32(`${at}.policy_logits[${i}]`, value)),
  });
}

function coverageMessage(input: CoverageSummaryInput, check: ContractChecker): CoverageSummary {
  const at = `${FIELD}.coverage`;
  const groups = (input.groups ?? []).map((group, i) =>
    create(CoverageGroupSchema, {
      name: check.text(`${at}.groups[${i}].name`, group.name, true),
      value: check.float32(`${at}.groups[${i}].value`, group.value),
    }),
  );
  groups.sort((a, b) => compareUtf8(a.name, b.name));
  return create(CoverageSummarySchema, {
    average: check.float32(`${at}.average`, input.average),
    groups,
  });
}

function selectionMessage(input: SelectionContextInput, check: ContractChecker): SelectionContext {
  const at = `${FIELD}.selection`;
  return create(SelectionContextSchema, {
    seedId: check.text(`${at}.seed_id`, input.seedId, true),
    blueprintId: check.text(`${at}.blueprint_id`, input.blueprintId ?? '', false),
    seedScore: check.float32(`${at}.seed_score`, input.seedScore ?? 0),
    blueprintScore: check.float32(`${at}.blueprint_score`, input.blueprintScore ?? 0),
  });
}

// --- both sides: the contract rules on a message ----------------------------------------

function validateDecisionMetadata(metadata: DecisionMetadata, check: ContractChecker): void {
  const { policy, risk, blend, coverage, selection } = metadata;
  if (policy === undefined && risk === undefined && blend === undefined && coverage === undefined && selection === undefined) {
    check.missing(FIELD, 'decision metadata has no section set');
  }
  if (policy !== undefined) validatePolicy(policy, check);
  if (risk !== undefined) validateRisk(risk, check);
  if (blend !== undefined) validateBlend(blend, check);
  if (coverage !== undefined) validateCoverage(coverage, check);
  if (selection !== undefined) validateSelection(selection, check);
}

function validatePolicy(policy: PolicyMetadata, check: ContractChecker): void {
  const at = `${FIELD}.policy`;
  check.uint32(`${at}.action_id`, policy.actionId);
  check.finite(`${at}.value_estimate`, policy.valueEstimate);
  check.range(`${at}.risk_score`, policy.riskScore, 0, 1);
  check.text(`${at}.policy_version`, policy.policyVersion, true);
  check.finite(`${at}.param_delta`, policy.paramDelta);
  check.uint32(`${at}.risk_index`, policy.riskIndex);
  check.uint32(`${at}.blending_index`, policy.blendingIndex);
}

function validateRisk(risk: RiskMetadata, check: ContractChecker): void {
  const at = `${FIELD}.risk`;
  check.enumValue(`${at}.reason`, RiskReasonSchema, risk.reason, true);
  check.range(`${at}.breaker_confidence`, risk.breakerConfidence, 0, 1);
}

function validateBlend(blend: BlendConfig, check: ContractChecker): void {
  const at = `${FIELD}.blend`;
  check.enumValue(`${at}.mode`, BlendModeSchema, blend.mode, false);
  check.enumValue(`${at}.mode_source`, BlendModeSourceSchema, blend.modeSource, false);
  check.range(`${at}.alpha`, blend.alpha, 0, 1);
  check.range(`${at}.schedule_start`, blend.scheduleStart, 0, 1);
  check.range(`${at}.schedule_end`, blend.scheduleEnd, 0, 1);
  if (blend.scheduleStart > blend.scheduleEnd) {
    check.invalid(`${at}.schedule_start`, `schedule_start ${blend.scheduleStart} is after schedule_end ${blend.scheduleEnd}`);
  }
  check.range(`${at}.alpha_lo`, blend.alphaLo, 0, 1);
  check.range(`${at}.alpha_hi`, blend.alphaHi, 0, 1);
  if (blend.alphaLo > blend.alphaHi) {
    check.invalid(`${at}.alpha_lo`, `alpha_lo ${blend.alphaLo} exceeds alpha_hi ${blend.alphaHi}`);
  }
  check.nonNegative(`${at}.gate_k`, blend.gateK);
  check.nonNegative(`${at}.gate_tau`, blend.gateTau);

  check.listBound(`${at}.alpha_vec`, blend.alphaVec.length, MAX_ALPHA_VEC_ENTRIES);
  blend.alphaVec.forEach((value, i) => check.range(`${at}.alpha_vec[${i}]`, value, 0, 1));
  if (blend.mode === BlendMode.CHANNEL && blend.alphaVec.length === 0) {
    check.missing(`${at}.alpha_vec`, 'BLEND_MODE_CHANNEL needs a non-empty alpha_vec');
  }
  if (blend.mode !== BlendMode.CHANNEL && blend.alphaVec.length > 0) {
    check.invalid(`${at}.alpha_vec`, 'alpha_vec is only meaningful for BLEND_MODE_CHANNEL');
  }
  check.listBound(`${at}.policy_logits`, blend.policyLogits.length, MAX_POLICY_LOGITS_ENTRIES);
  blend.policyLogits.forEach((value, i) => check.finite(`${at}.policy_logits[${i}]`, value));
  if (blend.mode === BlendMode.CONFIDENCE) {
    check.positive(`${at}.gate_k`, blend.gateK);
    check.positive(`${at}.gate_tau`, blend.gateTau);
    check.positive(`${at}.alpha_hi`, blend.alphaHi);
  }
}

function validateCoverage(coverage: CoverageSummary, check: ContractChecker): void {
  const at = `${FIELD}.coverage`;
  check.range(`${at}.average`, coverage.average, 0, 1);
  coverage.groups.forEach((group, i) => {
    check.text(`${at}.groups[${i}].name`, group.name, true);
    check.range(`${at}.groups[${i}].value`, group.value, 0, 1);
    const previous = coverage.groups[i - 1];
    if (previous === undefined) return;
    const order = compareUtf8(previous.name, group.name);
    if (order === 0) {
      check.invalid(`${at}.groups[${i}].name`, `duplicate group name ${JSON.stringify(group.name)}`);
    }
    if (order > 0) {
      check.invalid(
        `${at}.groups[${i}].name`,
        `groups must be sorted by name; ${JSON.stringify(group.name)} follows ${JSON.stringify(previous.name)}`,
      );
    }
  });
}

function validateSelection(selection: SelectionContext, check: ContractChecker): void {
  const at = `${FIELD}.selection`;
  check.text(`${at}.seed_id`, selection.seedId, true);
  check.text(`${at}.blueprint_id`, selection.blueprintId, false);
  check.finite(`${at}.seed_score`, selection.seedScore);
  check.finite(`${at}.blueprint_score`, selection.blueprintScore);
}
