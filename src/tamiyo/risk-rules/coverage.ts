/** §10.6: degraded policy inputs. */
import { RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule } from './rule.js';

/** Degraded coverage warns; critical coverage is CRITICAL and holds growth (reference §17.10 fixed). */
export const degradedInputsRule: RiskRule = {
  name: 'degraded_inputs',
  apply(step, inputs) {
    const coverage = inputs.coverage;
    if (coverage === undefined || coverage.level === 'ok') return;
    const critical = coverage.level === 'critical';
    step.event(TamiyoEvent.DEGRADED_INPUTS, critical ? TelemetryLevel.CRITICAL : TelemetryLevel.WARNING, {
      coverage_avg: coverage.average.toFixed(3),
    });
    if (critical) {
      step.fill(RiskReason.DEGRADED_INPUTS);
      step.holdGrowth();
    }
  },
};
