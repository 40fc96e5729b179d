import { describe, expect, it } from 'vitest';
import { buildTelemetryPacket } from '../../src/core/index.js';
import { CircuitBreakerState, HandlingClass, HazardBand, OptimizerFamily, RiskReason, TelemetryLevel } from '../../src/leyline/index.js';
import { DecisionKind, type ProposedDecision } from '../../src/tamiyo/decision.js';
import { TamiyoEvent, TamiyoMetric } from '../../src/tamiyo/names.js';
import { RISK_RULES } from '../../src/tamiyo/risk-rules/register-all.js';
import { blueprint, cull, engine, eventsNamed, germinate, inputs, metric, type InputsInit } from './fixtures/risk.js';

const { CIRCUIT_STATE_CLOSED: CLOSED } = CircuitBreakerState;

describe('the rule table', () => {
  it('lists every rule once, the timeout first and the conservative reason last', () => {
    const names = RISK_RULES.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names[0]).toBe('timeout_inference');
    expect(names.at(-1)).toBe('conservative_reason');
    // Rules whose inputs nothing produces are gone: no GPU/device pressure, gradient conflict or Urza metadata timeout.
    expect(names).not.toEqual(expect.arrayContaining(['device_pressure', 'grad_conflict_high', 'timeout_urza']));
  });
});

describe('risk rules (reference §10.4), each firing from the metrics Tolaria sets', () => {
  interface RuleCase {
    readonly name: string;
    readonly proposal?: ProposedDecision;
    readonly inputs: InputsInit;
    readonly kind: DecisionKind;
    readonly reason: RiskReason;
    readonly event?: string;
    readonly level?: TelemetryLevel;
    readonly conservative?: boolean;
  }
  const W = TelemetryLevel.WARNING;
  const C = TelemetryLevel.CRITICAL;
  const cases: RuleCase[] = [
    { name: 'nothing fires: the germinate stands', inputs: {}, kind: 'germinate', reason: RiskReason.UNSPECIFIED },
    {
      name: 'policy risk ≥ 0.98 pauses and enters conservative mode',
      proposal: { ...germinate, policyRiskScore: 0.98 },
      inputs: {},
      kind: 'pause',
      reason: RiskReason.POLICY_RISK_CRITICAL,
      event: TamiyoEvent.POLICY_RISK_CRITICAL,
      level: C,
      conservative: true,
    },
    {
      name: 'policy risk ≥ 0.85 holds growth',
      proposal: { ...germinate, policyRiskScore: 0.85 },
      inputs: {},
      kind: 'wait',
      reason: RiskReason.POLICY_RISK_ELEVATED,
      event: TamiyoEvent.POLICY_RISK_ELEVATED,
      level: W,
    },
    {
      name: 'policy risk just under 0.85 lets the germinate through',
      proposal: { ...germinate, policyRiskScore: 0.849 },
      inputs: {},
      kind: 'germinate',
      reason: RiskReason.UNSPECIFIED,
      event: TamiyoEvent.POLICY_RISK_SIGNAL,
      level: TelemetryLevel.INFO,
    },
    {
      name: 'a quarantined blueprint pauses',
      inputs: { blueprint: blueprint({ quarantined: true }) },
      kind: 'pause',
      reason: RiskReason.BP_QUARANTINE,
      event: TamiyoEvent.BP_QUARANTINE,
      level: C,
      conservative: true,
    },
    {
      name: 'a quarantine-only descriptor pauses',
      inputs: { blueprint: blueprint({ quarantineOnly: true }) },
      kind: 'pause',
      reason: RiskReason.BP_QUARANTINE,
      event: TamiyoEvent.BP_QUARANTINE,
      level: C,
      conservative: true,
    },
    {
      name: 'blueprint risk ≥ 0.8 is treated as quarantine',
      inputs: { blueprint: blueprint({ risk: 0.8 }) },
      kind: 'pause',
      reason: RiskReason.BP_QUARANTINE,
      event: TamiyoEvent.BP_QUARANTINE,
      level: C,
      conservative: true,
    },
    {
      name: 'blueprint risk ≥ 0.5 holds growth',
      inputs: { blueprint: blueprint({ risk: 0.5 }) },
      kind: 'wait',
      reason: RiskReason.BLUEPRINT_RISK,
      event: TamiyoEvent.BLUEPRINT_RISK,
      level: W,
    },
    {
      name: 'BSDS handling class quarantine pauses',
      inputs: { blueprint: blueprint({ handling: HandlingClass.QUARANTINE }) },
      kind: 'pause',
      reason: RiskReason.BSDS_HANDLING_QUARANTINE,
      event: TamiyoEvent.BSDS_HANDLING_QUARANTINE,
      level: C,
      conservative: true,
    },
    {
      name: 'BSDS hazard CRITICAL pauses',
      inputs: { blueprint: blueprint({ hazard: HazardBand.CRITICAL }) },
      kind: 'pause',
      reason: RiskReason.BSDS_HAZARD_CRITICAL,
      event: TamiyoEvent.BSDS_HAZARD_CRITICAL,
      level: C,
      conservative: true,
    },
    {
      name: 'BSDS hazard HIGH holds growth',
      inputs: { blueprint: blueprint({ hazard: HazardBand.HIGH }) },
      kind: 'wait',
      reason: RiskReason.BSDS_HAZARD_HIGH,
      event: TamiyoEvent.BSDS_HAZARD_HIGH,
      level: W,
    },
    {
      name: 'a loss delta above 0.15 is a spike',
      inputs: { metrics: { lossDelta: 0.16 } },
      kind: 'pause',
      reason: RiskReason.LOSS_SPIKE,
      event: TamiyoEvent.LOSS_SPIKE,
      level: W,
      conservative: true,
    },
    {
      name: 'a loss delta just under 0.15 is a warning, not a spike',
      inputs: { metrics: { lossDelta: 0.149 } },
      kind: 'wait',
      reason: RiskReason.LOSS_WARNING,
      event: TamiyoEvent.LOSS_WARNING,
      level: W,
    },
    {
      name: 'hook latency over 50 ms pauses',
      inputs: { metrics: { hookLatencyMs: 51 } },
      kind: 'pause',
      reason: RiskReason.HOOK_BUDGET,
      event: TamiyoEvent.HOOK_BUDGET,
      level: W,
    },
    {
      name: 'step latency over 120 ms pauses',
      inputs: { metrics: { stepLatencyMs: 250 } },
      kind: 'pause',
      reason: RiskReason.STEP_LATENCY_HIGH,
      event: TamiyoEvent.STEP_LATENCY_HIGH,
      level: W,
    },
    {
      name: 'slow Kasmina apply holds growth',
      inputs: { metrics: { kasminaApplyMs: 35 } },
      kind: 'wait',
      reason: RiskReason.KASMINA_APPLY_SLOW,
      event: TamiyoEvent.KASMINA_APPLY_SLOW,
      level: W,
    },
    {
      name: 'slow Kasmina finalize holds growth',
      inputs: { metrics: { kasminaFinalizeMs: 40 } },
      kind: 'wait',
      reason: RiskReason.KASMINA_FINALIZE_SLOW,
      event: TamiyoEvent.KASMINA_FINALIZE_SLOW,
      level: W,
    },
    {
      name: 'isolation violations pause',
      inputs: { isolationViolations: 2 },
      kind: 'pause',
      reason: RiskReason.ISOLATION_VIOLATION,
      event: TamiyoEvent.ISOLATION_VIOLATIONS,
      level: W,
    },
    {
      name: 'loss volatility over 0.1125 holds growth',
      inputs: { metrics: { lossVolatility: 0.12 } },
      kind: 'wait',
      reason: RiskReason.LOSS_VOLATILITY_HIGH,
      event: TamiyoEvent.LOSS_VOLATILITY_HIGH,
      level: W,
    },
    {
      name: 'gradient variance over 1 holds growth',
      inputs: { metrics: { gradVar: 1.5 } },
      kind: 'wait',
      reason: RiskReason.GRAD_VARIANCE_HIGH,
      event: TamiyoEvent.GRAD_VARIANCE_HIGH,
      level: W,
    },
    {
      name: 'a zero learning rate with rising loss emits an optimizer hint (loss warning already held growth)',
      inputs: { metrics: { optimizerFamily: OptimizerFamily.SGD, optimizerLr: 0, lossDelta: 0.1 } },
      kind: 'wait',
      reason: RiskReason.LOSS_WARNING,
      event: TamiyoEvent.OPTIMIZER_HINT,
      level: W,
    },
    {
      name: 'the trainer process at ≥ 95 % of a core holds growth',
      inputs: { metrics: { cpuUtilPercent: 95 } },
      kind: 'wait',
      reason: RiskReason.CPU_PRESSURE,
      event: TamiyoEvent.CPU_PRESSURE_HIGH,
      level: W,
    },
    {
      name: 'an inference timeout discards the proposal and pauses',
      proposal: { ...germinate, policyRiskScore: 0.99 },
      inputs: { timedOut: true },
      kind: 'pause',
      reason: RiskReason.TIMEOUT_INFERENCE,
      event: TamiyoEvent.TIMEOUT_INFERENCE,
      level: W,
      conservative: true,
    },
    {
      name: 'critical input coverage holds growth with DEGRADED_INPUTS',
      inputs: { coverage: { average: 0.05, level: 'critical' } },
      kind: 'wait',
      reason: RiskReason.DEGRADED_INPUTS,
      event: TamiyoEvent.DEGRADED_INPUTS,
      level: C,
    },
    {
      name: 'degraded (not critical) coverage warns and lets the germinate through',
      inputs: { coverage: { average: 0.2, level: 'degraded' } },
      kind: 'germinate',
      reason: RiskReason.UNSPECIFIED,
      event: TamiyoEvent.DEGRADED_INPUTS,
      level: W,
    },
  ];

  it.each(cases)('$name', (c) => {
    const { engine: e } = engine();
    const verdict = e.evaluate(c.proposal ?? germinate, inputs(c.inputs));
    expect(verdict.decision.kind).toBe(c.kind);
    expect(RiskReason[verdict.reason]).toBe(RiskReason[c.reason]);
    expect(verdict.conservativeMode).toBe(c.conservative ?? false);
    expect(e.conservativeMode).toBe(c.conservative ?? false);
    if (c.event !== undefined) {
      const fired = eventsNamed(verdict, c.event);
      expect(fired).toHaveLength(1);
      expect(fired[0]?.level).toBe(c.level);
    } else {
      expect(verdict.events.filter((ev) => ev.level !== TelemetryLevel.INFO)).toEqual([]);
    }
    if (c.conservative === true) {
      expect(eventsNamed(verdict, TamiyoEvent.CONSERVATIVE_ENTERED)).toHaveLength(1);
    }
    // Every verdict builds into a valid packet.
    const build = () => buildTelemetryPacket({ source: 'tamiyo', events: verdict.events, metrics: verdict.metrics });
    expect(build).not.toThrow();
  });

  it('pause rules pause any decision, growth rules leave non-growth decisions alone', () => {
    const { engine: e } = engine();
    const paused = e.evaluate(cull, inputs({ blueprint: undefined, metrics: { hookLatencyMs: 80 } }));
    expect(paused.decision).toEqual({ kind: 'pause' });
    expect(paused.reason).toBe(RiskReason.HOOK_BUDGET);

    const kept = e.evaluate(cull, inputs({ blueprint: undefined, metrics: { gradVar: 5, cpuUtilPercent: 99 } }));
    expect(kept.decision).toBe(cull);
    expect(kept.reason).toBe(RiskReason.UNSPECIFIED);
    expect(eventsNamed(kept, TamiyoEvent.GRAD_VARIANCE_HIGH)).toEqual([]);
  });

  it('downgrades never invent an optimizer command', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.1 } }));
    expect(verdict.decision).toEqual({ kind: 'wait' });
    expect(verdict.proposal).toBe(germinate);
    const optimizer: ProposedDecision = { kind: DecisionKind.OPTIMIZER, paramDelta: -0.01 };
    const kept = e.evaluate(optimizer, inputs({ blueprint: undefined, metrics: { lossDelta: 0.1 } }));
    expect(kept.decision).toBe(optimizer);
  });

  it('emits blueprint, BSDS, breaker and conservative-mode metrics', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(
      { ...germinate },
      inputs({ blueprint: blueprint({ risk: 0.42, hazard: HazardBand.MEDIUM, bsdsRisk: 0.42 }) }),
    );
    expect(metric(verdict, TamiyoMetric.BLUEPRINT_RISK)?.value).toBeCloseTo(0.42);
    expect(metric(verdict, TamiyoMetric.BSDS_RISK)?.value).toBeCloseTo(0.42);
    expect(metric(verdict, TamiyoMetric.BSDS_HAZARD_BAND)).toMatchObject({
      value: HazardBand.MEDIUM,
      attributes: { band: 'MEDIUM' },
    });
    expect(metric(verdict, TamiyoMetric.BSDS_HANDLING_CLASS)?.value).toBe(HandlingClass.STANDARD);
    expect(metric(verdict, TamiyoMetric.BSDS_HAZARD_CRITICAL_SIGNAL)?.value).toBe(0);
    expect(metric(verdict, TamiyoMetric.BSDS_HAZARD_HIGH_SIGNAL)?.value).toBe(0);
    expect(metric(verdict, TamiyoMetric.RISK_CONSERVATIVE_MODE)?.value).toBe(0);
    expect(metric(verdict, TamiyoMetric.BREAKER_INFERENCE_STATE)?.value).toBe(CLOSED);
    expect(eventsNamed(verdict, TamiyoEvent.BSDS_PRESENT)[0]).toMatchObject({
      level: TelemetryLevel.INFO,
      attributes: { hazard: 'MEDIUM', risk: '0.42', provenance: 'URABRASK' },
    });
    expect(verdict.decision.kind).toBe('germinate');

    const noBlueprint = e.evaluate({ kind: DecisionKind.WAIT }, inputs({ blueprint: undefined }));
    expect(metric(noBlueprint, TamiyoMetric.BLUEPRINT_RISK)).toBeUndefined();
  });
});

describe('risk rule precedence (register-all order)', () => {
  it('an overriding reason replaces an earlier filling one', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate({ ...germinate, policyRiskScore: 0.9 }, inputs({ blueprint: blueprint({ quarantined: true }) }));
    expect(verdict.reason).toBe(RiskReason.BP_QUARANTINE);
    expect(verdict.decision.kind).toBe('pause');
    expect(eventsNamed(verdict, TamiyoEvent.POLICY_RISK_ELEVATED)).toHaveLength(1);
  });

  it('the first overriding rule wins over later ones', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(
      germinate,
      inputs({ blueprint: blueprint({ quarantined: true }), metrics: { lossDelta: 0.5, hookLatencyMs: 90 } }),
    );
    expect(verdict.reason).toBe(RiskReason.BP_QUARANTINE);
    expect(verdict.events.map((ev) => ev.description)).toEqual(
      expect.arrayContaining([TamiyoEvent.BP_QUARANTINE, TamiyoEvent.LOSS_SPIKE, TamiyoEvent.HOOK_BUDGET]),
    );
    // Entered once, by the first trigger.
    const entered = eventsNamed(verdict, TamiyoEvent.CONSERVATIVE_ENTERED);
    expect(entered).toHaveLength(1);
    expect(entered[0]?.attributes).toEqual({ reason: TamiyoEvent.BP_QUARANTINE });
  });

  it('a loss spike outranks a later hook-budget pause', () => {
    const { engine: e } = engine();
    const metrics = { lossDelta: 0.3, hookLatencyMs: 90, stepLatencyMs: 300 };
    const verdict = e.evaluate(germinate, inputs({ metrics }));
    expect(verdict.reason).toBe(RiskReason.LOSS_SPIKE);
  });

  it('a later overriding rule replaces an earlier filling one (loss warning → hook budget)', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.1, hookLatencyMs: 90 } }));
    expect(verdict.reason).toBe(RiskReason.HOOK_BUDGET);
    expect(verdict.decision.kind).toBe('pause');
  });

  it('a filling reason never replaces an earlier one', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(germinate, inputs({ blueprint: blueprint({ risk: 0.6 }), isolationViolations: 1 }));
    expect(verdict.reason).toBe(RiskReason.BLUEPRINT_RISK);
    expect(verdict.decision.kind).toBe('pause');
  });

  it('"SEED" rules only fire while the decision is still a germinate', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(germinate, inputs({ blueprint: blueprint({ risk: 0.6 }), metrics: { kasminaApplyMs: 50, gradVar: 3 } }));
    expect(verdict.reason).toBe(RiskReason.BLUEPRINT_RISK);
    expect(eventsNamed(verdict, TamiyoEvent.KASMINA_APPLY_SLOW)).toHaveLength(1);
    expect(eventsNamed(verdict, TamiyoEvent.GRAD_VARIANCE_HIGH)).toEqual([]);
  });

  it('BSDS handling quarantine outranks a CRITICAL hazard on the same sheet', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(
      germinate,
      inputs({ blueprint: blueprint({ handling: HandlingClass.QUARANTINE, hazard: HazardBand.CRITICAL }) }),
    );
    expect(verdict.reason).toBe(RiskReason.BSDS_HANDLING_QUARANTINE);
    expect(eventsNamed(verdict, TamiyoEvent.BSDS_HAZARD_CRITICAL)).toHaveLength(1);
  });

  it('an inference timeout keeps its reason when latency rules fire in the same step', () => {
    const { engine: e } = engine();
    const metrics = { hookLatencyMs: 90, stepLatencyMs: 500 };
    const verdict = e.evaluate(germinate, inputs({ timedOut: true, metrics }));
    expect(verdict.reason).toBe(RiskReason.TIMEOUT_INFERENCE);
    expect(eventsNamed(verdict, TamiyoEvent.HOOK_BUDGET)).toHaveLength(1);
    // The discarded proposal's risk score and blueprint were not evaluated.
    expect(eventsNamed(verdict, TamiyoEvent.POLICY_RISK_SIGNAL)).toEqual([]);
    expect(metric(verdict, TamiyoMetric.BLUEPRINT_RISK)).toBeUndefined();
  });
});
