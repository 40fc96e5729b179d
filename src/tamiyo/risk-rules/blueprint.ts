/** Rules 5 and 6: the blueprint's catalog risk and its (verified) safety data sheet. */
import { BlueprintTier, HandlingClass, HazardBand, Provenance, RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import { enumLabel, type RiskRule } from './rule.js';

/** A quarantined blueprint (or one at quarantine risk) pauses and enters conservative mode; an elevated risk holds growth. */
export const blueprintRiskRule: RiskRule = {
  name: 'blueprint_risk',
  apply(step, inputs, context) {
    const blueprint = inputs.blueprint;
    if (blueprint === undefined || inputs.timedOut) return;
    const t = context.thresholds;
    const { descriptor, risk } = blueprint;
    if (blueprint.quarantined || descriptor.quarantineOnly || risk >= t.blueprintQuarantineRisk) {
      step.override(RiskReason.BP_QUARANTINE);
      step.pause();
      step.event(TamiyoEvent.BP_QUARANTINE, TelemetryLevel.CRITICAL, {
        tier: `BLUEPRINT_TIER_${enumLabel(BlueprintTier, descriptor.tier)}`,
        risk: risk.toFixed(2),
      });
      context.enterConservative(step, TamiyoEvent.BP_QUARANTINE);
    } else if (risk >= t.blueprintElevatedRisk && step.growing) {
      step.fill(RiskReason.BLUEPRINT_RISK);
      step.holdGrowth();
      step.event(TamiyoEvent.BLUEPRINT_RISK, TelemetryLevel.WARNING, { risk: risk.toFixed(2) });
    }
  },
};

/** QUARANTINE handling or a CRITICAL hazard pauses and enters conservative mode; a HIGH hazard holds growth. */
export const bsdsRule: RiskRule = {
  name: 'bsds',
  apply(step, inputs, context) {
    const bsds = inputs.blueprint?.bsds;
    if (bsds === undefined || inputs.timedOut) return;
    const hazard = enumLabel(HazardBand, bsds.hazardBand);
    const handling = enumLabel(HandlingClass, bsds.handlingClass);
    const provenance = enumLabel(Provenance, bsds.provenance);
    step.event(TamiyoEvent.BSDS_PRESENT, TelemetryLevel.INFO, { hazard, handling, risk: bsds.riskScore.toFixed(2), provenance });
    if (bsds.handlingClass === HandlingClass.QUARANTINE) {
      step.override(RiskReason.BSDS_HANDLING_QUARANTINE);
      step.pause();
      step.event(TamiyoEvent.BSDS_HANDLING_QUARANTINE, TelemetryLevel.CRITICAL, { handling, provenance });
      context.enterConservative(step, TamiyoEvent.BSDS_HANDLING_QUARANTINE);
    }
    if (bsds.hazardBand === HazardBand.CRITICAL) {
      step.override(RiskReason.BSDS_HAZARD_CRITICAL);
      step.pause();
      step.event(TamiyoEvent.BSDS_HAZARD_CRITICAL, TelemetryLevel.CRITICAL, { hazard, provenance });
      context.enterConservative(step, TamiyoEvent.BSDS_HAZARD_CRITICAL);
    } else if (bsds.hazardBand === HazardBand.HIGH) {
      step.event(TamiyoEvent.BSDS_HAZARD_HIGH, TelemetryLevel.WARNING, { hazard, provenance });
      if (step.growing) {
        step.fill(RiskReason.BSDS_HAZARD_HIGH);
        step.holdGrowth();
      }
    }
  },
};
