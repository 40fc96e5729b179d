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
