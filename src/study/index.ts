/**
 * Study: the harness that runs arms (small, grown, large) × seeds of one task and reports
 * them with statistics. The CLI (`esper study`) and benches import only from this file.
 */
export {
  flopBlocksOfHost,
  FlopBlockSchema,
  forwardFlops,
  forwardMacs,
  runTrainingFlops,
  trainingFlops,
  type FlopBlock,
  type GrownCompute,
  type HostBlocksView,
} from './flops.js';
export { CONFIDENCE_LEVEL, summarize, tQuantileOf, twoSidedP, welchTest, type Summary, type WelchTest } from './stats.js';
export type { ArmProgress, ArmResult, ArmRunContext, ArmRunner, ArmRunnerModule, ArmRunRequest, GrownSeed } from './arm-runner.js';
export { ArmResultSchema, GrownSeedSchema } from './arm-runner.js';
export {
  createArmRunner,
  createTaskHost,
  evaluateAccuracy,
  loadTaskDataset,
  MAX_SKIPPED_SHARE,
  skippedBatches,
  taskRunId,
  trainTaskSteps,
  type TaskTrainingInput,
  type TaskTrainingOutcome,
} from './static-runner.js';
export {
  armsOfTask,
  assertTaskRunnable,
  describeHost,
  findTask,
  grownArmsOf,
  grownHost,
  growthVariant,
  hostOfArm,
  hostParameterCount,
  isGrownArm,
  STUDY_ARM_PATTERN,
  STUDY_ARMS,
  STUDY_TASKS,
  taskKey,
  taskShape,
  widenSlotsOf,
  type GrownArm,
  type GrowthStepHint,
  type GrowthVariant,
  type StudyArm,
  type TaskController,
  type TaskDataset,
  type TaskDefinition,
  type TaskHost,
  type TaskLifecycle,
  type TaskShape,
} from './tasks.js';
export {
  ChildMessageSchema,
  StartMessageSchema,
  StudyArmSchema,
  TaskDefinitionSchema,
  type ChildMessage,
  type StartMessage,
} from './protocol.js';
export { childEntry, runInChild, type ChildRunRequest } from './child-run.js';
export {
  openStudyDirectory,
  runFileName,
  settingsDigest,
  STUDY_DIR_SCHEMA_VERSION,
  STUDY_MANIFEST_FILE,
  STUDY_RUNS_DIR,
  writeRunRecord,
  type OpenedStudyDirectory,
  type RunRecord,
  type StudyIdentity,
  type StudyManifest,
} from './study-dir.js';
export {
  buildStudyReport,
  formatStudyMarkdown,
  formatStudySummary,
  STUDY_REPORT_SCHEMA_VERSION,
  type ReportArm,
  type ReportComparison,
  type ReportRun,
  type StudyReport,
  type StudyReportInput,
} from './report.js';
export {
  defaultStaticRunner,
  runFlops,
  runStudy,
  type StudyEvent,
  type StudyOptions,
  type StudyResult,
  type StudyRunFailure,
} from './study.js';
