/**
 * Tamiyo: the controller — graph builder, GNN and heuristic policies, risk engine, field
 * reports. Other subsystems import only from this file.
 */
export {
  EDGE_ATTR_DIM,
  NODE_FEATURE_DIMS,
  NODE_TYPES,
  type EdgeSet,
  type FeatureCoverage,
  type NodeSet,
  type NodeType,
  type PolicyGraph,
  type RelationSpec,
} from './graph-types.js';
export {
  GRAPH_BUILDER_DEFAULTS,
  GRAPH_RELATIONS,
  GraphBuilder,
  resolveGraphBuilderOptions,
  type BlueprintCandidate,
  type GraphBuilderOptions,
  type GraphBuildInput,
} from './graph-builder.js';
export { FEATURE_NORMALISER_DEFAULTS, FeatureNormaliser, NORMALISER_PRIORS, type FeatureNormaliserOptions } from './normaliser.js';
export { EmbeddingRegistries, EmbeddingRegistry, REGISTRY_NAMES, stableHash32, type RegistryName } from './registries.js';
export {
  assessCoverage,
  COVERAGE_THRESHOLDS,
  CoverageRecorder,
  coverageMetrics,
  coverageSummary,
  FEATURE_COVERAGE_METRIC,
  featureCoverageGroupMetric,
  type CoverageAssessment,
  type CoverageLevel,
} from './coverage.js';
export {
  BreakerAction,
  BreakerComponent,
  breakerConfidence,
  CONSERVATIVE_EXIT_REASON,
  DecisionKind,
  resolveRiskEngineOptions,
  RISK_ENGINE_DEFAULTS,
  RISK_THRESHOLD_DEFAULTS,
  RiskEngine,
  type BlueprintRiskInfo,
  type CoverageInfo,
  type ProposedDecision,
  type RiskEngineOptions,
  type RiskEngineSnapshot,
  type RiskInputs,
  type RiskThresholds,
  type RiskVerdict,
} from './risk-engine.js';
export { featureCoverageMetric, TAMIYO_TELEMETRY_SOURCE, TamiyoEvent, TamiyoMetric } from './names.js';
export {
  classifyOutcome,
  FIELD_REPORT_BUILDER_DEFAULTS,
  FIELD_REPORT_SOURCE,
  FieldReportBuilder,
  FieldReportEvent,
  FieldReportMetric,
  newFieldReportId,
  WindowClosure,
  type DecisionContext,
  type EpochObservation,
  type FieldReportBuilderOptions,
  type FieldReportBuilderSnapshot,
} from './field-reports.js';
export {
  FIELD_REPORT_RETENTION_MS,
  FieldReportDelivery,
  FieldReportStore,
  type FieldReportStatus,
  type FieldReportStoreOptions,
  type PendingFieldReport,
} from './field-report-store.js';
export {
  FIELD_REPORT_PUBLISHER_DEFAULTS,
  FieldReportPublisher,
  type FieldReportPublisherMetrics,
  type FieldReportPublisherOptions,
  type PublishPassResult,
} from './field-report-publisher.js';
export {
  argmaxFinite,
  BLEND_HEAD_MODES,
  decodeOutput,
  DEFAULT_GNN_CONFIG,
  gnnConfigFor,
  POLICY_ACTION_COUNT,
  PolicyAction,
  REFERENCE_GNN_SIZES,
  relationKey,
  TamiyoGnn,
  validateGnnConfig,
  type GnnConfig,
  type GnnOutput,
  type GnnSizes,
  type GnnTensors,
  type PolicyDecision,
} from './gnn.js';
export {
  architectureOf,
  configOfArchitecture,
  loadPolicy,
  POLICY_ARCHITECTURE_ID,
  POLICY_ARCHITECTURE_VERSION,
  policyChecksum,
  policyDigest,
  serialisePolicy,
  type LoadedPolicy,
  type PolicyMeta,
} from './policy-weights.js';
export type { BlendSchedule, PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';
export {
  HEURISTIC_POLICY_DEFAULTS,
  HeuristicCullReason,
  HeuristicPolicy,
  resolveHeuristicPolicyOptions,
  type HeuristicPolicyOptions,
  type HeuristicPolicySnapshot,
} from './heuristic-policy.js';
export { BREAKER_RATIONALE, COMMAND_VERSION, CommandBuilder, type CommandBuilderOptions } from './command-builder.js';
export { decisionOfOutput, GnnPolicy, proposalOfOutput, type GnnPolicyOptions } from './gnn-policy.js';
export {
  TAMIYO_SOURCE,
  TamiyoService,
  type TamiyoDecisionRecord,
  type TamiyoFieldReports,
  type TamiyoServiceOptions,
  type TamiyoStats,
} from './service.js';
export {
  buildPolicyUpdate,
  POLICY_UPDATE_MESSAGE_VERSION,
  POLICY_UPDATE_VERIFIER_DEFAULTS,
  PolicySlot,
  PolicyUpdateEvent,
  PolicyUpdateMetric,
  PolicyUpdateRejection,
  PolicyUpdateVerifier,
  type BuildPolicyUpdateOptions,
  type PolicySwapResult,
  type PolicyUpdateVerification,
  type PolicyUpdateVerifierOptions,
} from './policy-updates.js';
export { PolicyUpdateListener, type PolicyUpdateListenerOptions, type PolicyUpdateListenerStats } from './policy-update-listener.js';
