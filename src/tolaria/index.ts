/**
 * Tolaria: host models, datasets and the trainer. Other subsystems, the CLI and the
 * benches import only from this file.
 */
// Hosts
export type { ForwardOptions, HostModel, SeedSiteHook, SiteHook, WidenSiteHook } from './host-model.js';
export { Activation } from './hosts/blocks.js';
export { HostBuilder } from './hosts/host-builder.js';
export { mlpHost, widenSiteId } from './hosts/mlp-host.js';
export { cnnHost } from './hosts/cnn-host.js';
export { createHost, HOST_FAMILIES, isHostFamilyName, type HostFamilyName } from './hosts/host-families.js';

// Data
export type { Batch, Dataset, DatasetSplit } from './dataset.js';
export { ArraySplit } from './data/array-split.js';
export { ValueSplit, type ValueSplitOptions } from './data/value-split.js';
export { LossKind, hitsOf, lossOf, resolveLoss, targetsOf } from './loss.js';
export { DATASET_NAMES, isDatasetName, loadDataset, type DatasetName } from './data/datasets.js';

// The trainer
export {
  createTrainer,
  isPathSafeRunId,
  runCheckpointDir,
  trainerOptionsFromSettings,
  type TrainerDependencies,
} from './create-trainer.js';
export { Trainer, type TrainerState, type TrainingSummary } from './trainer.js';
export { TolariaEvent } from './names.js';
export type { EpochReport, StatePacketSink, StepReport, TrainerOptions } from './trainer-options.js';
export { OptimizerKind } from './optimizer-manager.js';
export { LrSchedulePolicy } from './lr-controller.js';
export type { EmergencySink } from './emergency.js';
export { CheckpointStore, describeDiscarded, type Checkpoint, type DiscardedCheckpoint, type LatestCheckpoint } from './checkpoint.js';

// The control protocol (Tamiyo implements Controller, Kasmina implements Executor)
export { CommandOutcomeStatus } from './controller.js';
export type {
  CallOptions,
  CommandOutcome,
  ContributionProbe,
  Controller,
  Executor,
  ExecutorContext,
  GradientProbe,
  StepSignals,
  ValidationReport,
  ValidationResult,
  WidenGradient,
} from './controller.js';
export { MAX_COMMANDED_LR } from './commands.js';
