import { create, type MessageInitShape } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildTelemetryPacket,
  ErrorCode,
  FakeClock,
  isEsperError,
  MemoryTelemetrySink,
  priorityForEvent,
  type EventInput,
  type MetricInput,
} from '../../src/core/index.js';
import {
  BlueprintDescriptorSchema,
  BlueprintTier,
  BSDSSchema,
  CircuitBreakerState,
  HandlingClass,
  HazardBand,
  MessagePriority,
  OptimizerFamily,
  Provenance,
  RiskReason,
  SystemStatePacketSchema,
  TelemetryLevel,
  TrainingMetricsSchema,
} from '../../src/leyline/index.js';
import { TamiyoEvent, TamiyoMetric } from '../../src/tamiyo/names.js';
import {
  DecisionKind,
  RiskEngine,
  resolveRiskEngineOptions,
  type BlueprintRiskInfo,
  type ProposedDecision,
  type RiskEngineOptions,
  type RiskInputs,
  type RiskVerdict,
} from '../../src/tamiyo/risk-engine.js';

const { CIRCUIT_STATE_CLOSED: CLOSED, CIRCUIT_STATE_OPEN: OPEN } = CircuitBreakerState;
const BP = 'bp-residual-1';

type MetricsInit = MessageInitShape<typeof TrainingMetricsSchema>;

function packet(metrics: MetricsInit = {}) {
  return create(SystemStatePacketSchema, {
    trainingRunId: 'run-1',
    packetId: 'pkt-1',
    metrics: create(TrainingMetricsSchema, metrics),
  });
}

interface BlueprintInit {
  readonly risk?: number;
  readonly quarantined?: boolean;
  readonly quarantineOnly?: boolean;
  readonly hazard?: HazardBand;
  readonly handling?: HandlingClass;
  readonly bsdsRisk?: number;
}

function blueprint(init: BlueprintInit = {}): BlueprintRiskInfo {
  const descriptor = create(BlueprintDescriptorSchema, {
    blueprintId: BP,
    tier: BlueprintTier.SAFE,
    risk: init.risk ?? 0.1,
    quarantineOnly: init.quarantineOnly ?? false,
  });
  const withBsds = init.hazard !== undefined || init.handling !== undefined || init.bsdsRisk !== undefined;
  const bsds = withBsds
    ? create(BSDSSchema, {
        blueprintId: BP,
        riskScore: init.bsdsRisk ?? init.risk ?? 0.1,
        hazardBand: init.hazard ?? HazardBand.LOW,
        handlingClass: init.handling ?? HandlingClass.STANDARD,
        provenance: Provenance.URABRASK,
      })
    : undefined;
  return {
    descriptor,
    quarantined: init.quarantined ?? false,
    risk: init.risk ?? 0.1,
    ...(bsds === undefined ? {} : { bsds }),
  };
}

const germinate: ProposedDecision = {
  kind: DecisionKind.GERMINATE,
  seedId: 'seed-1',
  siteId: 'site-a',
  blueprintId: BP,
  policyRiskScore: 0.2,
};

function inputs(overrides: Partial<RiskInputs> & { metrics?: MetricsInit } = {}): RiskInputs {
  const { metrics, ...rest } = overrides;
  return {
    packet: packet(metrics),
    timedOut: false,
    metadataTimedOut: false,
    blueprint: blueprint(),
    isolationViolations: 0,
    ...rest,
  };
}

function engine(options: RiskEngineOptions = {}) {
  const clock = new FakeClock({ monotonicMs: 10_000 });
  return { clock, engine: new RiskEngine({ clock, inferenceBudgetMs: 5, metadataBudgetMs: 25, ...options }) };
}

function eventsNamed(verdict: RiskVerdict, description: string): EventInput[] {
  return verdict.events.filter((e) => e.description === description);
}

function metric(verdict: RiskVerdict, name: string): MetricInput | undefined {
  return verdict.metrics.find((m) => m.name === name);
}

function cleanStep(e: RiskEngine, proposal: ProposedDecision = germinate): RiskVerdict {
  return e.evaluate(proposal, inputs());
}

describe('RiskEngine rules (reference §10.4)', () => {
  interface RuleCase {
    readonly name: string;
    readonly proposal?: ProposedDecision;
    readonly inputs: Partial<RiskInputs> & { metrics?: MetricsInit };
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
      name: 'a NaN loss delta is a spike',
      inputs: { metrics: { lossDelta: Number.NaN } },
      kind: 'pause',
      reason: RiskReason.LOSS_SPIKE,
      event: TamiyoEvent.LOSS_SPIKE,
      level: W,
      conservative: true,
    },
    {
      name: 'a loss delta of exactly 0.15 is a warning, not a spike',
      inputs: { metrics: { lossDelta: 0.15 } },
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
      name: 'gradient conflict over 0.5 holds growth',
      inputs: { metrics: { gradConflictRate: 0.6 } },
      kind: 'wait',
      reason: RiskReason.GRAD_CONFLICT_HIGH,
      event: TamiyoEvent.GRAD_CONFLICT_HIGH,
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
      name: 'GPU at ≥ 95 % with ≤ 0.2 GB free pauses a germinate',
      inputs: { metrics: { gpuUtilPercent: 97, gpuMemFreeGb: 0.1 } },
      kind: 'pause',
      reason: RiskReason.DEVICE_PRESSURE,
      event: TamiyoEvent.DEVICE_PRESSURE_HIGH,
      level: W,
    },
    {
      name: 'CPU at ≥ 95 % holds growth',
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
      name: 'a metadata timeout pauses (the blueprint could not be checked)',
      inputs: { metadataTimedOut: true, blueprint: undefined },
      kind: 'pause',
      reason: RiskReason.TIMEOUT_URZA,
      event: TamiyoEvent.TIMEOUT_URZA,
      level: W,
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
    const cull: ProposedDecision = { kind: DecisionKind.CULL, seedId: 'seed-1' };
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
    expect(metric(verdict, TamiyoMetric.BREAKER_METADATA_STATE)?.value).toBe(CLOSED);
    expect(eventsNamed(verdict, TamiyoEvent.BSDS_PRESENT)[0]).toMatchObject({
      level: TelemetryLevel.INFO,
      attributes: { hazard: 'MEDIUM', risk: '0.42', provenance: 'URABRASK' },
    });
    expect(verdict.decision.kind).toBe('germinate');

    const noBlueprint = e.evaluate({ kind: DecisionKind.WAIT }, inputs({ blueprint: undefined }));
    expect(metric(noBlueprint, TamiyoMetric.BLUEPRINT_RISK)).toBeUndefined();
  });
});

describe('RiskEngine precedence', () => {
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

describe('RiskEngine timeouts and breakers', () => {
  it('an inference timeout pauses with TIMEOUT_INFERENCE and a HIGH-priority event', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(germinate, inputs({ timedOut: true }));
    expect(verdict.decision).toEqual({ kind: 'pause' });
    expect(verdict.reason).toBe(RiskReason.TIMEOUT_INFERENCE);
    const [timeout] = eventsNamed(verdict, TamiyoEvent.TIMEOUT_INFERENCE);
    expect(timeout).toEqual({
      description: 'timeout_inference',
      level: TelemetryLevel.WARNING,
      attributes: { budget_ms: '5.0' },
    });
    expect(priorityForEvent(timeout?.level ?? TelemetryLevel.UNSPECIFIED, timeout?.description ?? '')).toBe(MessagePriority.HIGH);
    // Through the one telemetry builder the packet is HIGH and goes to the sink as such.
    const sink = new MemoryTelemetrySink();
    sink.emit(buildTelemetryPacket({ source: 'tamiyo', events: verdict.events, metrics: verdict.metrics }));
    expect(sink.packets[0]?.priority).toBe(MessagePriority.HIGH);
    expect(sink.events(TamiyoEvent.TIMEOUT_INFERENCE)).toHaveLength(1);
  });

  it('a metadata timeout pauses with TIMEOUT_URZA and a HIGH-priority event', () => {
    const { engine: e } = engine();
    const verdict = e.evaluate(germinate, inputs({ metadataTimedOut: true, blueprint: undefined }));
    expect(verdict.reason).toBe(RiskReason.TIMEOUT_URZA);
    const [timeout] = eventsNamed(verdict, TamiyoEvent.TIMEOUT_URZA);
    expect(timeout?.attributes).toEqual({ budget_ms: '25.0' });
    expect(priorityForEvent(TelemetryLevel.WARNING, TamiyoEvent.TIMEOUT_URZA)).toBe(MessagePriority.HIGH);
    // Metadata timeouts do not enter conservative mode.
    expect(verdict.conservativeMode).toBe(false);
  });

  it('three consecutive timeouts open the inference breaker with a CRITICAL breaker_event', () => {
    const { engine: e } = engine();
    const first = e.evaluate(germinate, inputs({ timedOut: true }));
    const second = e.evaluate(germinate, inputs({ timedOut: true }));
    const third = e.evaluate(germinate, inputs({ timedOut: true }));
    const breakerEvents = (v: RiskVerdict) => eventsNamed(v, TamiyoEvent.BREAKER_EVENT);
    expect(breakerEvents(first)).toEqual([
      {
        description: 'breaker_event',
        level: TelemetryLevel.WARNING,
        attributes: { component: 'inference', reason: 'timeout_inference', failures: 1, action: 'count' },
      },
    ]);
    expect(breakerEvents(second)[0]?.attributes).toMatchObject({ failures: 2, action: 'count' });
    expect(breakerEvents(third)).toEqual([
      {
        description: 'breaker_event',
        level: TelemetryLevel.CRITICAL,
        attributes: { component: 'inference', reason: 'timeout_inference', failures: 3, action: 'open' },
      },
    ]);
    expect(priorityForEvent(TelemetryLevel.CRITICAL, TamiyoEvent.BREAKER_EVENT)).toBe(MessagePriority.CRITICAL);
    expect(metric(third, TamiyoMetric.BREAKER_INFERENCE_STATE)?.value).toBe(OPEN);
    expect(third.breakerConfidence).toBe(0);
    expect(e.snapshot().inferenceBreaker.state).toBe(OPEN);
    // Entered once on the first timeout.
    expect(eventsNamed(first, TamiyoEvent.CONSERVATIVE_ENTERED)).toHaveLength(1);
    expect(eventsNamed(third, TamiyoEvent.CONSERVATIVE_ENTERED)).toEqual([]);
  });

  it('keeps conservative mode while the breaker is open and closes it after the cooldown', () => {
    const { engine: e, clock } = engine();
    for (let i = 0; i < 3; i += 1) e.evaluate(germinate, inputs({ timedOut: true }));
    // Inside the 100 ms cooldown: breaker stays open, steps are not clean.
    for (let i = 0; i < 5; i += 1) {
      clock.advance(10);
      const v = cleanStep(e);
      expect(v.conservativeMode).toBe(true);
      expect(v.decision.kind).toBe('pause');
      expect(v.reason).toBe(RiskReason.CONSERVATIVE_MODE);
    }
    expect(e.snapshot().cleanSteps).toBe(0);
    clock.advance(100);
    const closing = cleanStep(e);
    expect(eventsNamed(closing, TamiyoEvent.BREAKER_EVENT)).toEqual([
      {
        description: 'breaker_event',
        level: TelemetryLevel.INFO,
        attributes: { component: 'inference', action: 'close' },
      },
    ]);
    expect(closing.conservativeMode).toBe(true);
    expect(e.snapshot().cleanSteps).toBe(1);
    cleanStep(e);
    const exiting = cleanStep(e);
    expect(exiting.conservativeMode).toBe(false);
    expect(eventsNamed(exiting, TamiyoEvent.CONSERVATIVE_EXITED)).toHaveLength(1);
    expect(cleanStep(e).decision.kind).toBe('germinate');
  });

  it('a successful step clears the failure count, so only consecutive timeouts open', () => {
    const { engine: e } = engine();
    e.evaluate(germinate, inputs({ timedOut: true }));
    e.evaluate(germinate, inputs({ timedOut: true }));
    expect(e.snapshot().breakerConfidence).toBeCloseTo(1 / 3);
    cleanStep(e);
    const v = e.evaluate(germinate, inputs({ timedOut: true }));
    expect(e.snapshot().inferenceBreaker.state).toBe(CLOSED);
    expect(eventsNamed(v, TamiyoEvent.BREAKER_EVENT)[0]?.attributes).toMatchObject({ failures: 1, action: 'count' });
  });

  it('an open metadata breaker blocks leaving conservative mode', () => {
    const { engine: e, clock } = engine({ startConservative: true });
    for (let i = 0; i < 3; i += 1) e.evaluate(germinate, inputs({ metadataTimedOut: true, blueprint: undefined }));
    expect(e.snapshot().metadataBreaker.state).toBe(OPEN);
    for (let i = 0; i < 4; i += 1) expect(cleanStep(e).conservativeMode).toBe(true);
    clock.advance(100);
    cleanStep(e);
    cleanStep(e);
    expect(cleanStep(e).conservativeMode).toBe(false);
  });
});

describe('RiskEngine conservative mode', () => {
  it('never exits in the step that entered it; exits after 3 clean steps', () => {
    const { engine: e } = engine();
    const k = e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.3 } }));
    expect(k.conservativeMode).toBe(true);
    expect(eventsNamed(k, TamiyoEvent.CONSERVATIVE_ENTERED)[0]).toMatchObject({
      level: TelemetryLevel.WARNING,
      attributes: { reason: 'loss_spike' },
    });
    const k1 = cleanStep(e);
    const k2 = cleanStep(e);
    for (const v of [k1, k2]) {
      expect(v.conservativeMode).toBe(true);
      expect(v.decision).toEqual({ kind: 'pause' });
      expect(v.reason).toBe(RiskReason.CONSERVATIVE_MODE);
      expect(eventsNamed(v, TamiyoEvent.PAUSE_TRIGGERED)[0]?.attributes).toEqual({ reason: 'conservative_mode' });
    }
    const k3 = cleanStep(e);
    expect(k3.conservativeMode).toBe(false);
    expect(e.conservativeMode).toBe(false);
    expect(eventsNamed(k3, TamiyoEvent.CONSERVATIVE_EXITED)).toEqual([
      {
        description: 'conservative_exited',
        level: TelemetryLevel.INFO,
        attributes: { reason: 'stabilised', clean_steps: 3 },
      },
    ]);
    expect(metric(k3, TamiyoMetric.RISK_CONSERVATIVE_MODE)?.value).toBe(0);
    expect(cleanStep(e).decision.kind).toBe('germinate');
  });

  it('a spike in between restarts the count', () => {
    const { engine: e } = engine();
    e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.3 } }));
    cleanStep(e);
    cleanStep(e);
    const again = e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.2 } }));
    expect(again.conservativeMode).toBe(true);
    expect(eventsNamed(again, TamiyoEvent.CONSERVATIVE_ENTERED)).toEqual([]);
    expect(e.snapshot().cleanSteps).toBe(0);
    expect(cleanStep(e).conservativeMode).toBe(true);
    expect(cleanStep(e).conservativeMode).toBe(true);
    expect(cleanStep(e).conservativeMode).toBe(false);
  });

  it('a loss warning or a timeout is not a clean step', () => {
    const { engine: e } = engine();
    e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.3 } }));
    cleanStep(e);
    e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.1 } }));
    expect(e.snapshot().cleanSteps).toBe(0);
    cleanStep(e);
    e.evaluate(germinate, inputs({ metadataTimedOut: true, blueprint: undefined }));
    expect(e.snapshot().cleanSteps).toBe(0);
    expect(e.conservativeMode).toBe(true);
  });

  it('refuses germinations and optimizer changes but lets culls, waits and breaker commands pass', () => {
    const { engine: e } = engine({ startConservative: true, exitAfterCleanSteps: 100 });
    const optimizer = e.evaluate({ kind: DecisionKind.OPTIMIZER, paramDelta: 0.01 }, inputs({ blueprint: undefined }));
    expect(optimizer.decision.kind).toBe('pause');
    expect(optimizer.reason).toBe(RiskReason.CONSERVATIVE_MODE);
    for (const kind of [DecisionKind.CULL, DecisionKind.WAIT, DecisionKind.BREAKER_OPEN, DecisionKind.BREAKER_CLOSE]) {
      const proposal: ProposedDecision = { kind, seedId: 'seed-1' };
      const v = e.evaluate(proposal, inputs({ blueprint: undefined }));
      expect(v.decision).toBe(proposal);
      expect(v.reason).toBe(RiskReason.UNSPECIFIED);
    }
    const pause = e.evaluate({ kind: DecisionKind.PAUSE }, inputs({ blueprint: undefined }));
    expect(pause.reason).toBe(RiskReason.CONSERVATIVE_MODE);
  });

  it('startConservative refuses the first germinate without an entered event', () => {
    const { engine: e } = engine({ startConservative: true });
    expect(e.conservativeMode).toBe(true);
    const v = cleanStep(e);
    expect(v.decision.kind).toBe('pause');
    expect(v.reason).toBe(RiskReason.CONSERVATIVE_MODE);
    expect(eventsNamed(v, TamiyoEvent.CONSERVATIVE_ENTERED)).toEqual([]);
    cleanStep(e);
    expect(cleanStep(e).conservativeMode).toBe(false);
  });

  it('exitAfterCleanSteps = 1 still keeps the mode through the entering step', () => {
    const { engine: e } = engine({ exitAfterCleanSteps: 1 });
    expect(e.evaluate(germinate, inputs({ blueprint: blueprint({ quarantined: true }) })).conservativeMode).toBe(true);
    const next = cleanStep(e);
    expect(next.decision.kind).toBe('pause');
    expect(next.conservativeMode).toBe(false);
  });
});

describe('RiskEngine never germinates a quarantined or CRITICAL-hazard blueprint', () => {
  const forbidden: [string, BlueprintInit][] = [
    ['catalog quarantine', { quarantined: true }],
    ['quarantine-only descriptor', { quarantineOnly: true }],
    ['risk ≥ 0.8', { risk: 0.95 }],
    ['BSDS handling quarantine', { handling: HandlingClass.QUARANTINE, risk: 0.1 }],
    ['BSDS hazard CRITICAL', { hazard: HazardBand.CRITICAL, risk: 0.1 }],
  ];
  it.each(forbidden)('%s: paused with conservative mode off and policy risk low', (_name, init) => {
    const { engine: e } = engine();
    expect(e.conservativeMode).toBe(false);
    const v = e.evaluate({ ...germinate, policyRiskScore: 0.2 }, inputs({ blueprint: blueprint(init) }));
    expect(v.decision.kind).toBe('pause');
    expect(
      eventsNamed(v, TamiyoEvent.BSDS_HAZARD_CRITICAL).length +
        eventsNamed(v, TamiyoEvent.BP_QUARANTINE).length +
        eventsNamed(v, TamiyoEvent.BSDS_HANDLING_QUARANTINE).length,
    ).toBeGreaterThan(0);
    expect(v.events.some((ev) => ev.level === TelemetryLevel.CRITICAL)).toBe(true);
  });

  it.each(forbidden)('%s: paused without a policy risk score and while conservative', (_name, init) => {
    const { engine: e } = engine({ startConservative: true });
    const { policyRiskScore: _unused, ...noScore } = germinate;
    const v = e.evaluate(noScore, inputs({ blueprint: blueprint(init) }));
    expect(v.decision.kind).toBe('pause');
  });

  it('property: whatever the inputs and history, a forbidden blueprint is never germinated', () => {
    const hazard = fc.constantFrom(HazardBand.UNSPECIFIED, HazardBand.LOW, HazardBand.MEDIUM, HazardBand.HIGH, HazardBand.CRITICAL);
    const handling = fc.constantFrom(HandlingClass.UNSPECIFIED, HandlingClass.STANDARD, HandlingClass.RESTRICTED, HandlingClass.QUARANTINE);
    const unit = fc.double({ min: 0, max: 1, noNaN: true });
    const metricsArb = fc.record({
      lossDelta: fc.oneof(fc.double({ min: -1, max: 1, noNaN: true }), fc.constant(Number.NaN)),
      lossVolatility: fc.double({ min: 0, max: 0.3, noNaN: true }),
      hookLatencyMs: fc.double({ min: 0, max: 100, noNaN: true }),
      stepLatencyMs: fc.double({ min: 0, max: 300, noNaN: true }),
      kasminaApplyMs: fc.double({ min: 0, max: 60, noNaN: true }),
      kasminaFinalizeMs: fc.double({ min: 0, max: 60, noNaN: true }),
      gradVar: fc.double({ min: 0, max: 3, noNaN: true }),
      gradConflictRate: unit,
      optimizerLr: fc.double({ min: -0.1, max: 0.1, noNaN: true }),
      optimizerFamily: fc.constantFrom(OptimizerFamily.UNSPECIFIED, OptimizerFamily.SGD),
      gpuUtilPercent: fc.double({ min: 0, max: 100, noNaN: true }),
      gpuMemFreeGb: fc.double({ min: 0, max: 2, noNaN: true }),
      cpuUtilPercent: fc.double({ min: 0, max: 100, noNaN: true }),
    });
    const stepArb = fc.record({
      kind: fc.constantFrom(...Object.values(DecisionKind)),
      policyRiskScore: fc.option(unit, { nil: undefined }),
      timedOut: fc.boolean(),
      metadataTimedOut: fc.boolean(),
      risk: unit,
      quarantined: fc.boolean(),
      quarantineOnly: fc.boolean(),
      bsds: fc.option(fc.record({ hazard, handling, risk: unit }), { nil: undefined }),
      coverage: fc.option(fc.record({ average: unit, level: fc.constantFrom('ok' as const, 'degraded' as const, 'critical' as const) }), {
        nil: undefined,
      }),
      isolationViolations: fc.nat({ max: 2 }),
      metrics: metricsArb,
      advanceMs: fc.nat({ max: 150 }),
    });
    fc.assert(
      fc.property(fc.boolean(), fc.array(stepArb, { minLength: 1, maxLength: 8 }), (startConservative, steps) => {
        const { engine: e, clock } = engine({ startConservative });
        for (const s of steps) {
          clock.advance(s.advanceMs);
          const info = blueprint({
            risk: s.risk,
            quarantined: s.quarantined,
            quarantineOnly: s.quarantineOnly,
            ...(s.bsds === undefined ? {} : { hazard: s.bsds.hazard, handling: s.bsds.handling, bsdsRisk: s.bsds.risk }),
          });
          const proposal: ProposedDecision = {
            kind: s.kind,
            seedId: 'seed-1',
            blueprintId: BP,
            ...(s.policyRiskScore === undefined ? {} : { policyRiskScore: s.policyRiskScore }),
          };
          const verdict = e.evaluate(proposal, {
            packet: packet(s.metrics),
            timedOut: s.timedOut,
            metadataTimedOut: s.metadataTimedOut,
            blueprint: info,
            isolationViolations: s.isolationViolations,
            ...(s.coverage === undefined ? {} : { coverage: s.coverage }),
          });
          const isForbidden =
            s.quarantined ||
            s.quarantineOnly ||
            s.risk >= 0.8 ||
            s.bsds?.hazard === HazardBand.CRITICAL ||
            s.bsds?.handling === HandlingClass.QUARANTINE;
          if (isForbidden) expect(verdict.decision.kind).not.toBe('germinate');
          // Decisions only ever stay, hold or pause; a surviving germinate carries no reason.
          expect([s.kind, 'wait', 'pause']).toContain(verdict.decision.kind);
          if (verdict.decision.kind === 'germinate') {
            expect(verdict.reason).toBe(RiskReason.UNSPECIFIED);
            expect(verdict.conservativeMode).toBe(false);
          }
          expect(verdict.breakerConfidence).toBeGreaterThanOrEqual(0);
          expect(verdict.breakerConfidence).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('RiskEngine input and option validation', () => {
  function expectInvalid(fn: () => unknown, field: string): void {
    try {
      fn();
    } catch (error) {
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((error as { details?: Record<string, unknown> }).details?.['field']).toBe(field);
      return;
    }
    throw new Error(`expected INVALID_ARGUMENT for ${field}`);
  }

  it('rejects a germinate without its blueprint metadata and leaves the engine untouched', () => {
    const { engine: e } = engine();
    const before = e.snapshot();
    expectInvalid(() => e.evaluate(germinate, inputs({ blueprint: undefined })), 'inputs.blueprint');
    expectInvalid(() => e.evaluate({ ...germinate, blueprintId: '' }, inputs()), 'proposal.blueprintId');
    const other = { ...blueprint(), descriptor: create(BlueprintDescriptorSchema, { blueprintId: 'bp-other' }) };
    expectInvalid(() => e.evaluate(germinate, inputs({ blueprint: other })), 'inputs.blueprint.descriptor.blueprintId');
    expect(e.snapshot()).toEqual(before);
  });

  it('rejects malformed numbers', () => {
    const { engine: e } = engine();
    const cases: [ProposedDecision, Partial<RiskInputs>, string][] = [
      [{ ...germinate, policyRiskScore: Number.NaN }, {}, 'proposal.policyRiskScore'],
      [{ ...germinate, policyRiskScore: 1.5 }, {}, 'proposal.policyRiskScore'],
      [{ kind: DecisionKind.OPTIMIZER, paramDelta: Infinity }, {}, 'proposal.paramDelta'],
      [germinate, { isolationViolations: -1 }, 'inputs.isolationViolations'],
      [germinate, { isolationViolations: 0.5 }, 'inputs.isolationViolations'],
      [germinate, { coverage: { average: 2, level: 'ok' } }, 'inputs.coverage.average'],
      [germinate, { blueprint: { ...blueprint(), risk: Number.NaN } }, 'inputs.blueprint.risk'],
    ];
    for (const [proposal, overrides, field] of cases) {
      expectInvalid(() => e.evaluate(proposal, inputs(overrides)), field);
    }
    expectInvalid(() => e.evaluate({ kind: 'grow' as DecisionKind }, inputs({ blueprint: undefined })), 'proposal.kind');
  });

  it('a germinate needs no blueprint metadata when its inference or metadata lookup timed out', () => {
    const { engine: e } = engine();
    expect(e.evaluate(germinate, inputs({ timedOut: true, blueprint: undefined })).decision.kind).toBe('pause');
    expect(e.evaluate(germinate, inputs({ metadataTimedOut: true, blueprint: undefined })).decision.kind).toBe('pause');
  });

  it('resolves defaults and names a bad option', () => {
    const resolved = resolveRiskEngineOptions();
    expect(resolved).toMatchObject({
      startConservative: false,
      exitAfterCleanSteps: 3,
      breakerFailureThreshold: 3,
      breakerCooldownMs: 100,
    });
    expect(resolved.thresholds.lossSpike).toBe(0.15);
    expect(resolveRiskEngineOptions({ thresholds: { lossSpike: 0.3 } }).thresholds).toMatchObject({
      lossSpike: 0.3,
      lossWarning: 0.075,
    });
    expectInvalid(() => new RiskEngine({ exitAfterCleanSteps: 0 }), 'exitAfterCleanSteps');
    expectInvalid(() => new RiskEngine({ breakerFailureThreshold: 1.5 }), 'breakerFailureThreshold');
    expectInvalid(() => new RiskEngine({ breakerCooldownMs: -1 }), 'breakerCooldownMs');
    expectInvalid(() => new RiskEngine({ inferenceBudgetMs: Number.NaN }), 'inferenceBudgetMs');
    expectInvalid(() => new RiskEngine({ thresholds: { hookBudgetMs: -5 } }), 'thresholds.hookBudgetMs');
  });

  it('omits budget_ms when no budget is configured', () => {
    const e = new RiskEngine({ clock: new FakeClock() });
    const v = e.evaluate(germinate, inputs({ timedOut: true }));
    expect(eventsNamed(v, TamiyoEvent.TIMEOUT_INFERENCE)[0]).toEqual({
      description: 'timeout_inference',
      level: TelemetryLevel.WARNING,
    });
  });
});

describe('RiskEngine loss noise floor', () => {
  it('treats a loss rise inside three deviations of the recent losses as noise, and a larger one as a spike', () => {
    const e = engine().engine;
    const noisy = e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.2, lossVolatility: 0.1 } }));
    expect(eventsNamed(noisy, 'loss_spike')).toEqual([]);
    expect(noisy.decision.kind).toBe('germinate');
    expect(noisy.conservativeMode).toBe(false);
    const spike = e.evaluate(germinate, inputs({ metrics: { lossDelta: 0.2, lossVolatility: 0.05 } }));
    expect(eventsNamed(spike, 'loss_spike')).toHaveLength(1);
    expect(spike.reason).toBe(RiskReason.LOSS_SPIKE);
    expect(spike.conservativeMode).toBe(true);
  });
});
