/**
 * Nissa: observability. Other subsystems import only from this file. Each part appends its
 * exports below.
 */

// Alerts and SLOs.
export * from './alerts/index.js';
export {
  defaultSlos,
  SloKey,
  slosFromSettings,
  SloTracker,
  type DefaultSloInputs,
  type SloDefinition,
  type SloStatus,
  type SloTrackerOptions,
  type SloTrackerStats,
  type SloWindowStatus,
} from './slo.js';
