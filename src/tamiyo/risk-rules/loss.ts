/** Rule 7 (loss spike and warning) and rule 13 (loss volatility). */
import { RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule } from './rule.js';

/**
 * A spike pauses and enters conservative mode; a warning holds growth; either makes the
 * step unclean. (A diverged loss never reaches Tamiyo: Tolaria fails that step before any
 * packet, and `loss_delta` is finite by the TrainingMetrics contract.)
 *
 * Departure from the reference: per-step loss deltas are single batches, whose noise
 * alone crosses 0.15 several times an epoch at batch 64 (in `esper run` that kept
 * re-entering conservative mode and blocked 3 of 5 germinations); a rise within
 * `lossSpikeSigmas` deviations of the recent losses is noise, not a spike.
 */
export const lossRule: RiskRule = {
  name: 'loss',
  apply(step, inputs, context) {
    const t = context.thresholds;
    const { lossDelta, lossVolatility } = step.metrics;
    const noiseFloor = lossVolatility > 0 ? t.lossSpikeSigmas * lossVolatility : 0;
    const spike = lossDelta > t.lossSpike && lossDelta > noiseFloor;
    const warning = !spike && lossDelta > t.lossWarning && lossDelta > noiseFloor;
    if (spike || warning) step.unclean = true;
    if (inputs.timedOut) return;
    if (spike) {
      step.override(RiskReason.LOSS_SPIKE);
      step.pause();
      step.event(TamiyoEvent.LOSS_SPIKE, TelemetryLevel.WARNING, { delta: lossDelta.toFixed(3) });
      context.enterConservative(step, TamiyoEvent.LOSS_SPIKE);
    } else if (warning && step.growing) {
      step.fill(RiskReason.LOSS_WARNING);
      step.holdGrowth();
      step.event(TamiyoEvent.LOSS_WARNING, TelemetryLevel.WARNING, { delta: lossDelta.toFixed(3) });
    }
  },
};

/** Volatile losses hold growth. */
export const lossVolatilityRule: RiskRule = {
  name: 'loss_volatility',
  apply(step, _inputs, context) {
    const volatility = step.metrics.lossVolatility;
    if (!(volatility > context.thresholds.lossVolatilityHigh)) return;
    step.event(TamiyoEvent.LOSS_VOLATILITY_HIGH, TelemetryLevel.WARNING, { volatility: volatility.toFixed(3) });
    if (step.growing) {
      step.fill(RiskReason.LOSS_VOLATILITY_HIGH);
      step.holdGrowth();
    }
  },
};
