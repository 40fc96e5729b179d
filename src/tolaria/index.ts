/**
 * Tolaria: host models, datasets and the trainer. Other subsystems import only from this
 * file.
 */
export type { HostModel, SeedSiteHook } from './host-model.js';
export type { Batch, Dataset, DatasetSplit, DataCursorState } from './dataset.js';
export { Activation, BlockKind, type BlockSpec, type HostBlock, type Padding } from './hosts/blocks.js';
export { BlockHost } from './hosts/block-host.js';
export {
  HostBuilder,
  type Conv2dOptions,
  type DenseOptions,
  type FlattenOptions,
  type HostBuilderOptions,
  type MaxPoolOptions,
} from './hosts/host-builder.js';
export { mlpHost, MLP_HOST_DEFAULTS, type MlpHostCommonOptions, type MlpHostOptions } from './hosts/mlp-host.js';
export { cnnHost, CNN_HOST_DEFAULTS, type CnnHostOptions } from './hosts/cnn-host.js';
export {
  createHost,
  HOST_FAMILIES,
  isHostFamilyName,
  type HostFamilyDefinition,
  type HostFamilyName,
  type HostFamilyOptions,
  type HostFamilyOptionsMap,
} from './hosts/host-families.js';
export { ArraySplit, type ArraySplitOptions } from './data/array-split.js';
export { DataCursor, type DataCursorOptions } from './data/data-cursor.js';
export {
  loadMnist,
  MNIST_CLASS_COUNTS,
  MNIST_IMAGE_SIDE,
  MNIST_IMAGE_SIZE,
  MNIST_SPLIT,
  MNIST_VALIDATION_PERCENT,
  MnistLayout,
  type MnistOptions,
  type MnistSplitSizes,
} from './data/mnist.js';
export {
  moonsDataset,
  spiralsDataset,
  SYNTHETIC_DEFAULTS,
  xorDataset,
  type SpiralsOptions,
  type SyntheticOptions,
} from './data/synthetic.js';
export {
  CIFAR10_CHANNELS,
  CIFAR10_CLASS_NAMES,
  CIFAR10_IMAGE_BYTES,
  CIFAR10_IMAGE_SIDE,
  CIFAR10_RECORD_BYTES,
  CIFAR10_TEST_FILE,
  CIFAR10_TRAIN_FILES,
  decodeCifar10Records,
  loadCifar10,
  type Cifar10Options,
} from './data/cifar10.js';
export { DATASET_NAMES, isDatasetName, loadDataset, type DatasetName, type LoadDatasetOptions } from './data/datasets.js';
export { Trainer, type RollbackResult, type TrainerState, type TrainingSummary } from './trainer.js';
export {
  resolveTrainerOptions,
  TRAINER_DEFAULTS,
  type EpochReport,
  type ResolvedTrainerOptions,
  type StatePacketSink,
  type StepReport,
  type TrainerCheckpointOptions,
  type TrainerEmergencyOptions,
  type TrainerOptions,
  type TrainerRollbackOptions,
} from './trainer-options.js';
export type { CallOptions, Controller, Executor, ExecutorContext, StepSignals, ValidationResult } from './controller.js';
export { OPTIMIZER_DEFAULTS, OptimizerKind, type OptimizerConfig } from './optimizer-manager.js';
export { LR_SCHEDULE_DEFAULTS, LrSchedulePolicy, type LrScheduleOptions } from './lr-controller.js';
export { EmergencyReason, type EmergencySink } from './emergency.js';
export {
  CHECKPOINT_LOG_FILE,
  CHECKPOINT_STORE_DEFAULTS,
  CheckpointStore,
  type Checkpoint,
  type CheckpointHeader,
  type CheckpointStoreOptions,
  type CheckpointWriteResult,
  type LatestCheckpoint,
} from './checkpoint.js';
export { epochPacketId, stepPacketId, STATE_PACKET_VERSION } from './state-packet.js';
export { LOSS_DIVERGENCE_DEFAULTS, type LossDivergenceOptions, type TrainerProgress } from './trainer-stats.js';
export { TOLARIA_SOURCE, TolariaEvent, TolariaMetric, type MetricName } from './names.js';
