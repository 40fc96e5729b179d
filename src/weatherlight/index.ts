/**
 * Weatherlight: the composition root. It builds what a run needs from settings through each
 * subsystem's own factory and hands the trainer its collaborators; the CLI and the study's
 * grown arm import only from this file.
 */
export { openGrowth, provisionBlueprints, type Growth, type GrowthDeps, type ProvisionDeps } from './growth.js';
export {
  candidatesFor,
  openGrowingRun,
  type EmbeddedControllerDeps,
  type GrowingRun,
  type GrowingRunCommonDeps,
  type GrowingRunDeps,
  type RemoteControllerDeps,
} from './growing-run.js';
export { ControlLink, type ControlLinkOptions, type ControlLinkStats, type ControlMode } from './control-link.js';
export { runKeyRing } from './run-key-ring.js';
export { createArmRunner, grownArmRunnerModule, stageLabel } from './grown-arm.js';
export { seedFlopBlocks } from './seed-blocks.js';
export {
  Supervisor,
  supervisorFailure,
  type ServiceReport,
  type SupervisorResult,
  type SupervisorSettlement,
  type SupervisorSnapshot,
  type SupervisorState,
} from './supervisor.js';
export {
  realTimers,
  resolveSupervisorOptions,
  SUPERVISOR_DEFAULTS,
  type SupervisorOptions,
  type SupervisorTimers,
} from './supervisor-options.js';
export type { ProcessServiceSpec, ServiceOutput, ServiceSpec, WorkerServiceSpec } from './service-instance.js';
export type { ServiceStatus } from './supervisor-telemetry.js';
export {
  BACKOFF_DEFAULTS,
  backoffBaseMs,
  backoffDelayMs,
  RESTART_BUDGET_DEFAULTS,
  RestartBudget,
  type BackoffPolicy,
  type RestartBudgetPolicy,
} from './backoff.js';
export { SupervisorMode, WeatherlightEvent, WeatherlightMetric, workerMetric, WorkerMetricSuffix } from './names.js';
export {
  preflight,
  PreflightCheckName,
  preflightError,
  runPreflight,
  type PreflightCheck,
  type PreflightOptions,
  type PreflightResult,
} from './preflight.js';
export {
  openTamiyoServer,
  TAMIYO_RUNS_GROUP,
  TamiyoServerEvent,
  type TamiyoServer,
  type TamiyoServerDeps,
  type TamiyoServerStats,
} from './tamiyo-server.js';
export {
  fleetServices,
  provisionHost,
  superviseFleet,
  thisEsperCommand,
  type EsperCommand,
  type FleetOptions,
  type FleetTrainer,
} from './fleet.js';
export {
  EXPERIMENT_HEURISTIC,
  EXPERIMENT_LIFECYCLE,
  provisionExperiment,
  runGrowthExperiment,
  type ArmFigures,
  type ExperimentArm,
  type ExperimentConfig,
  type ExperimentDeps,
  type ExperimentResult,
  type SeedStory,
} from './experiment.js';
export {
  episodeReward,
  HELD_OUT_SEED_BASE,
  isFailedRun,
  runJobs,
  scoredReward,
  demonstratedTask,
  learnedTask,
  learnPolicy,
  trajectoryOf,
  type EpisodeSummary,
  type LearnEvent,
  type LearnOptions,
  type LearnResult,
  type LearnUpdate,
  type WarmStart,
} from './learn.js';
export {
  EVALUATION_ARMS,
  episodeEvaluator,
  evaluateLearnedPolicy,
  type EpisodeEvaluatorOptions,
  type ArmEvaluation,
  type EvaluationArm,
  type EvaluationOptions,
  type LearnEvaluation,
  type PairedDifference,
} from './learn-evaluation.js';
export { openSimicServer, SIMIC_POLICY_ID, type SimicServer, type SimicServerDeps } from './simic-server.js';
