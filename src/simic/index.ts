/**
 * Simic: learns Tamiyo's policy from field reports and publishes it. So far: the gates a
 * candidate passes and the publisher that sends a signed update to every Tamiyo.
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
