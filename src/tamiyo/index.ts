/**
 * Tamiyo: the controller — policies, risk engine, command builder, field reports and
 * policy updates. Other subsystems, the CLI and the benches import only from this file.
 */
export {
  TAMIYO_CLOSE_REASON,
  TamiyoService,
  type TamiyoCommandFate,
  type TamiyoDecisionRecord,
  type TamiyoFieldReports,
  type TamiyoServiceOptions,
  type TamiyoServiceState,
  type TamiyoStats,
} from './service.js';
export type { BlueprintCandidate, BsdsVerification, BsdsVerifier, RejectedCandidate } from './candidates.js';
export { DecisionKind, toId, type Id, type ProposedDecision } from './decision.js';
export type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';
export { HeuristicPolicy } from './heuristic-policy.js';
export { choiceOfDecision, DemonstratingPolicy, type DemonstratingPolicyOptions } from './demonstrating-policy.js';
export {
  ScheduledGrowthPolicy,
  type GrowthScheduleEntry,
  type ScheduledGrowthPolicyOptions,
  type ScheduledGrowthRecord,
} from './scheduled-policy.js';
export {
  createTamiyo,
  isLearnedPolicyRef,
  learnedPolicyOf,
  initialPolicyNetwork,
  initialPolicyVersion,
  TAMIYO_POLICY_NAMES,
  type LearnedPolicyRef,
  type TamiyoPolicySpec,
  type Tamiyo,
  type TamiyoDeps,
  type TamiyoPolicyName,
  type TamiyoSettings,
} from './create-tamiyo.js';
export type { HeuristicPolicyOptions } from './heuristic-options.js';
export {
  decisionOfOutput,
  GnnPolicy,
  proposalOfOutput,
  type GnnPolicyOptions,
  type GnnSamplingOptions,
  type SampledDecision,
} from './gnn-policy.js';
export { TamiyoGnn, type GnnBatchTensors } from './gnn.js';
export { openLearnedPolicy, type LearnedPolicyOptions } from './learned-policy.js';
export {
  decisionContextOf,
  decodeDecisionContext,
  graphOfSnapshot,
  snapshotOfGraph,
  type DecodedDecisionContext,
} from './policy-graph-snapshot.js';
export { batchGraphs, type GraphBatch } from './gnn-batch.js';
export {
  allowedActions,
  blueprintsFitting,
  choiceLogProb,
  choiceMaskOf,
  cullableSeeds,
  sitesWithFit,
  type ChoiceMask,
  maskedLogSoftmax,
  modeChoice,
  SAMPLED_ACTION_NAMES,
  SAMPLED_ACTIONS,
  sampleChoice,
  type PolicyChoice,
  type SampledAction,
  type SampledChoice,
} from './gnn-sampling.js';
export { DEFAULT_GNN_CONFIG, gnnConfigFor, PolicyAction, type GnnConfig } from './gnn-config.js';
export { argmaxFinite, decodeOutput, type GnnOutput, type PolicyDecision } from './gnn-output.js';
export { GraphBuilder, runGraphBuilder, type GraphBuilderOptions } from './graph-builder.js';
export { GRAPH_RELATIONS } from './graph-relations.js';
export { NODE_TYPES, type NodeType, type PolicyGraph } from './graph-types.js';
export { FeatureNormaliser } from './normaliser.js';
export { EmbeddingRegistries } from './registries.js';
export { assessCoverage, coverageSummary } from './coverage.js';
export { RiskEngine, type RiskEngineOptions, type RiskVerdict } from './risk-engine.js';
export { RISK_THRESHOLD_DEFAULTS, type BlueprintRiskInfo, type RiskInputs } from './risk-rules/rule.js';
export { CommandBuilder, type CommandBuilderOptions } from './command-builder.js';
export { FieldReportBuilder, type FieldReportBuilderOptions } from './field-reports.js';
export { FieldReportStore, type FieldReportStoreOptions } from './field-report-store.js';
export { FieldReportPublisher, type FieldReportPublisherOptions } from './field-report-publisher.js';
export { architectureOf, loadPolicy, serialisePolicy, type LoadedPolicy } from './policy-weights.js';
export { buildPolicyUpdate, type BuildPolicyUpdateOptions } from './policy-update-builder.js';
export { PolicyUpdateVerifier, type PolicyUpdateVerification, type PolicyUpdateVerifierOptions } from './policy-update-verifier.js';
export { PolicyUpdateListener, type PolicyUpdateListenerOptions, type PolicyUpdateListenerState } from './policy-update-listener.js';
export {
  FieldReportEvent,
  FieldReportMetric,
  PolicyUpdateEvent,
  PolicyUpdateMetric,
  TAMIYO_TELEMETRY_SOURCE,
  TamiyoEvent,
  TamiyoMetric,
} from './names.js';
export { CONTROL_RESPONDER_DEFAULTS, ControlResponder, type ControlResponderOptions } from './control-responder.js';
export {
  CommandFateStatus,
  CommandLedger,
  fateOfAck,
  formatCommandOutcomes,
  type CommandFate,
  type FateController,
  type TamiyoCommandOutcomes,
} from './command-outcomes.js';
