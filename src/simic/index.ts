/**
 * Simic: learns Tamiyo's policy from field reports and publishes it. So far: the durable
 * replay buffer of field reports and its ingestion (from Oona and from runs' WALs), the gates
 * a candidate passes and the publisher that sends a signed update to every Tamiyo. Other
 * subsystems import only from here.
 */
export {
  evaluateGates,
  failedGateReasons,
  SIMIC_GATE_DEFAULTS,
  SimicGate,
  type HeldOutEvaluation,
  type SimicGateThresholds,
  type SimicTrainingStats,
} from './gates.js';
export { PolicyPublisher, SimicEvent, SimicMetric, type PolicyPublisherOptions, type PublishOutcome } from './publisher.js';
export {
  REPLAY_BUFFER_DEFAULTS,
  REPLAY_LOG_FILE,
  ReplayBuffer,
  replayBufferFromSettings,
  resolveReplayBufferOptions,
  type ReplayAddOptions,
  type ReplayAddResult,
  type ReplayBufferOptions,
  type ReplayBufferRecovery,
  type ReplayBufferStats,
  type ReplayEntry,
  type ResolvedReplayBufferOptions,
} from './replay-buffer.js';
export {
  SIMIC_CONSUMER_GROUP,
  SimicIngestor,
  type SimicIngestorOptions,
  type SimicIngestorState,
  type SimicIngestorStats,
  type WalIngestResult,
} from './ingestor.js';
export { generalisedAdvantages, type Trajectory, type Transition } from './experience.js';
export {
  IMITATION_DEFAULTS,
  PPO_DEFAULTS,
  PpoLearner,
  type ImitationOptions,
  type ImitationStats,
  type PpoOptions,
  type PpoStats,
} from './learner.js';
export { readDecisionLog, writeDecisionLog } from './decision-log.js';
export {
  REPORT_REWARD_DEFAULTS,
  resolveReportRewardOptions,
  rewardOfReport,
  transitionOfReport,
  UnusableReport,
  type ReportRewardOptions,
  type ReportTransition,
} from './transitions.js';
export {
  SimicLearnerMetric,
  SimicService,
  SimicServiceEvent,
  type HeldOutEvaluator,
  type SimicServiceOptions,
  type SimicServiceState,
  type SimicServiceStats,
  type SimicUpdate,
} from './service.js';
