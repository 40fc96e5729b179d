/** Rules 12 and 14–16: isolation, gradient variance, optimizer hint and CPU pressure. */
import { OptimizerFamily, RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule } from './rule.js';

/** A seed's gradients leaked into the host: pause. */
export const isolationRule: RiskRule = {
  name: 'isolation_violations',
  apply(step, inputs) {
    const violations = inputs.isolationViolations;
    if (violations <= 0) return;
    step.fill(RiskReason.ISOLATION_VIOLATION);
    step.pause();
    step.event(TamiyoEvent.ISOLATION_VIOLATIONS, TelemetryLevel.WARNING, { violations });
  },
};

/** Noisy gradients hold growth. */
export const gradVarianceRule: RiskRule = {
  name: 'grad_variance_high',
  apply(step, _inputs, context) {
    const variance = step.metrics.gradVar;
    if (!(variance > context.thresholds.gradVarianceHigh) || !step.growing) return;
    step.fill(RiskReason.GRAD_VARIANCE_HIGH);
    step.holdGrowth();
    step.event(TamiyoEvent.GRAD_VARIANCE_HIGH, TelemetryLevel.WARNING, { var: variance.toFixed(3) });
  },
};

/**
 * The trainer reports an optimizer with no learning rate while the loss rises: hint and
 * hold growth. Needs `optimizer_family` set (proto3 floats have no presence, so an unset
 * lr reads 0).
 */
export const optimizerHintRule: RiskRule = {
  name: 'optimizer_hint',
  apply(step, _inputs, context) {
    const m = step.metrics;
    if (m.optimizerFamily === OptimizerFamily.UNSPECIFIED || m.optimizerLr > 0 || !(m.lossDelta > context.thresholds.lossWarning)) return;
    step.event(TamiyoEvent.OPTIMIZER_HINT, TelemetryLevel.WARNING, { lr: m.optimizerLr.toFixed(6), loss_delta: m.lossDelta.toFixed(3) });
    if (step.growing) {
      step.override(RiskReason.OPTIMIZER_HINT);
      step.holdGrowth();
    }
  },
};

/** The trainer's process CPU (Tolaria's per-step `cpu_util_percent`) at or over the threshold holds growth. */
export const cpuPressureRule: RiskRule = {
  name: 'cpu_pressure',
  apply(step, _inputs, context) {
    const cpu = step.metrics.cpuUtilPercent;
    if (!(cpu >= context.thresholds.cpuUtilHighPercent) || !step.growing) return;
    if (!context.enforcesLatency) {
      step.event(TamiyoEvent.CPU_PRESSURE_HIGH, TelemetryLevel.WARNING, { cpu_util: cpu.toFixed(1), enforced: 'false' });
      return;
    }
    step.fill(RiskReason.CPU_PRESSURE);
    step.holdGrowth();
    step.event(TamiyoEvent.CPU_PRESSURE_HIGH, TelemetryLevel.WARNING, { cpu_util: cpu.toFixed(1) });
  },
};
