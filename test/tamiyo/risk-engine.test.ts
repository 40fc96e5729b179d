import fc from 'fast-check';
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { buildTelemetryPacket, ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink, priorityForEvent } from '../../src/core/index.js';
import {
  BlueprintDescriptorSchema,
  CircuitBreakerState,
  HandlingClass,
  HazardBand,
  MessagePriority,
  OptimizerFamily,
  RiskReason,
  TelemetryLevel,
} from '../../src/leyline/index.js';
import { DecisionKind, toId, type ProposedDecision } from '../../src/tamiyo/decision.js';
import { TamiyoEvent, TamiyoMetric } from '../../src/tamiyo/names.js';
import { RiskEngine, resolveRiskEngineOptions, type RiskVerdict } from '../../src/tamiyo/risk-engine.js';
import type { RiskInputs } from '../../src/tamiyo/risk-rules/rule.js';
import { BP, blueprint, engine, eventsNamed, germinate, inputs, metric, packet, type BlueprintInit } from './fixtures/risk.js';

const { CIRCUIT_STATE_CLOSED: CLOSED, CIRCUIT_STATE_OPEN: OPEN } = CircuitBreakerState;

function cleanStep(e: RiskEngine, proposal: ProposedDecision = germinate): RiskVerdict {
  return e.evaluate(proposal, inputs());
}

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
    e.evaluate(germinate, inputs({ timedOut: true }));
    expect(e.snapshot().cleanSteps).toBe(0);
    expect(e.conservativeMode).toBe(true);
  });

  it('refuses germinations and optimizer changes but lets culls, waits and breaker commands pass', () => {
    const { engine: e } = engine({ startConservative: true, exitAfterCleanSteps: 100 });
    const optimizer = e.evaluate({ kind: DecisionKind.OPTIMIZER, paramDelta: 0.01 }, inputs({ blueprint: undefined }));
    expect(optimizer.decision.kind).toBe('pause');
    expect(optimizer.reason).toBe(RiskReason.CONSERVATIVE_MODE);
    for (const kind of [DecisionKind.CULL, DecisionKind.WAIT, DecisionKind.BREAKER_OPEN, DecisionKind.BREAKER_CLOSE]) {
      const proposal: ProposedDecision = { kind, seedId: toId('seed-1', 'seed') };
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
      lossDelta: fc.double({ min: -1, max: 1, noNaN: true }),
      lossVolatility: fc.double({ min: 0, max: 0.3, noNaN: true }),
      hookLatencyMs: fc.double({ min: 0, max: 100, noNaN: true }),
      stepLatencyMs: fc.double({ min: 0, max: 300, noNaN: true }),
      kasminaApplyMs: fc.double({ min: 0, max: 60, noNaN: true }),
      kasminaFinalizeMs: fc.double({ min: 0, max: 60, noNaN: true }),
      gradVar: fc.double({ min: 0, max: 3, noNaN: true }),
      optimizerLr: fc.double({ min: 0, max: 0.1, noNaN: true }),
      optimizerFamily: fc.constantFrom(OptimizerFamily.UNSPECIFIED, OptimizerFamily.SGD),
      cpuUtilPercent: fc.double({ min: 0, max: 200, noNaN: true }),
    });
    const stepArb = fc.record({
      kind: fc.constantFrom(...Object.values(DecisionKind)),
      policyRiskScore: fc.option(unit, { nil: undefined }),
      timedOut: fc.boolean(),
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
            seedId: toId('seed-1', 'seed'),
            siteId: toId('site-a', 'site'),
            blueprintId: toId(BP, 'blueprint'),
            ...(s.policyRiskScore === undefined ? {} : { policyRiskScore: s.policyRiskScore }),
          };
          const verdict = e.evaluate(proposal, {
            packet: packet(s.metrics),
            timedOut: s.timedOut,
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
    expectInvalid(() => e.evaluate({ kind: 'grow' } as unknown as ProposedDecision, inputs({ blueprint: undefined })), 'proposal.kind');
  });

  it('a germinate needs no blueprint metadata when its inference timed out', () => {
    const { engine: e } = engine();
    expect(e.evaluate(germinate, inputs({ timedOut: true, blueprint: undefined })).decision.kind).toBe('pause');
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

describe('RiskEngine with observed latency budgets (core.latencyBudgets: observe)', () => {
  it('reports a slow inference without pausing or counting it against the breaker', () => {
    const { engine: e } = engine({ latencyBudgets: 'observe' });
    for (let i = 0; i < 5; i += 1) {
      const verdict = e.evaluate(germinate, inputs({ timedOut: true }));
      expect(verdict.decision).toEqual(germinate);
      expect(eventsNamed(verdict, TamiyoEvent.TIMEOUT_INFERENCE)).toEqual([
        { description: 'timeout_inference', level: TelemetryLevel.WARNING, attributes: { budget_ms: '5.0', enforced: 'false' } },
      ]);
    }
    expect(e.snapshot().inferenceBreaker.state).toBe(CLOSED);
    expect(e.conservativeMode).toBe(false);
  });

  it.each([
    ['hook latency', { hookLatencyMs: 500 }, TamiyoEvent.HOOK_BUDGET],
    ['step latency', { stepLatencyMs: 5_000 }, TamiyoEvent.STEP_LATENCY_HIGH],
    ['Kasmina apply latency', { kasminaApplyMs: 500 }, TamiyoEvent.KASMINA_APPLY_SLOW],
    ['CPU load', { cpuUtilPercent: 100 }, TamiyoEvent.CPU_PRESSURE_HIGH],
  ] as const)('reports %s over its threshold and lets the germinate through', (_name, metrics, event) => {
    const enforced = engine().engine.evaluate(germinate, inputs({ metrics }));
    expect(enforced.decision).not.toEqual(germinate);
    const observed = engine({ latencyBudgets: 'observe' }).engine.evaluate(germinate, inputs({ metrics }));
    expect(observed.decision).toEqual(germinate);
    expect(observed.reason).toBe(RiskReason.UNSPECIFIED);
    expect(eventsNamed(observed, event)[0]?.attributes).toMatchObject({ enforced: 'false' });
  });

  it('refuses an unknown mode naming the field', () => {
    expect(() => new RiskEngine({ latencyBudgets: 'sometimes' as never })).toThrow(/latencyBudgets/);
  });
});
