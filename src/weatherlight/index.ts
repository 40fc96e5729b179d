/**
 * Weatherlight: the composition root. It builds what a run needs from settings through each
 * subsystem's own factory and hands the trainer its collaborators; the CLI and the study's
 * grown arm import only from this file.
 */
export { openGrowth, type Growth, type GrowthDeps } from './growth.js';
export { candidatesFor, openGrowingRun, type GrowingRun, type GrowingRunDeps } from './growing-run.js';
export { ControlLink, type ControlLinkOptions, type ControlLinkStats, type ControlMode } from './control-link.js';
export { runKeyRing } from './run-key-ring.js';
export { createArmRunner, grownArmRunnerModule, stageLabel } from './grown-arm.js';
export { seedFlopBlocks } from './seed-blocks.js';
