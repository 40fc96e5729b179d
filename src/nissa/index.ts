/**
 * Nissa: observability — metrics, alerts, the event store and the live view of every run.
 * Other subsystems import only from this file.
 */
export {
  RUN_BOARD_DEFAULTS,
  RunBoard,
  resolveRunBoardOptions,
  type ResolvedRunBoardOptions,
  type RunBoardChange,
  type RunBoardListener,
  type RunBoardOptions,
} from './view/board.js';
export { registerViewRoutes, VIEW_ROUTES_DEFAULTS, type FleetView, type ViewRoutes, type ViewRoutesOptions } from './view/routes.js';
export {
  CurveName,
  type AlertEvent,
  type AlertSeverity,
  type CommandView,
  type CurveDelta,
  type CurvePoint,
  type FleetDelta,
  type ModeView,
  type RunBoardStats,
  type RunDelta,
  type RunEventView,
  type RunSummary,
  type SeedFate,
  type SeedLaneView,
  type StageInterval,
} from './view/view-types.js';
export type { LiveMessage } from './view/live-stream.js';
