import { describe, expect, it } from 'vitest';
import { FakeClock, MemoryTelemetrySink } from '../../src/core/index.js';
import { TelemetryLevel } from '../../src/leyline/index.js';
import {
  AlertEngine,
  alertInputsFromPacket,
  alertRules,
  AlertRuleName,
  buildAllDrills,
  buildDrill,
  Comparator,
  LogNotifier,
  type AlertEvent,
  type AlertNotifier,
  type AlertRule,
} from '../../src/nissa/index.js';

const rule = (overrides: Partial<AlertRule> = {}): AlertRule => ({
  name: 'test_rule',
  metric: 'x.value',
  comparator: Comparator.ABOVE,
  threshold: 10,
  forSamples: 2,
  routes: ['slack'],
  prometheusMetric: 'esper_x_value',
  prometheusBySource: true,
  summary: 'x is high',
  ...overrides,
});

const m = (entries: Record<string, number>): Map<string, number> => new Map(Object.entries(entries));

function recorder(): AlertNotifier & { events: AlertEvent[] } {
  const events: AlertEvent[] = [];
  return { name: 'recorder', events, notify: (e) => events.push(e) };
}

describe('alert rule table', () => {
  it('holds the prototype’s eight rules with their metrics, comparators, thresholds, counts and routes', () => {
    const table = alertRules().map((r) => [r.name, r.metric, r.comparator, r.threshold, r.forSamples, r.routes.join(',')]);
    expect(table).toEqual([
      ['tamiyo_coverage_low', 'tamiyo.gnn.feature_coverage', '<', 0.7, 3, 'slack'],
      ['training_latency_high', 'tolaria.epoch_hook.latency_ms', '>', 18, 3, 'pagerduty,slack'],
      ['kasmina_isolation_violation', 'kasmina.isolation.violations', '>', 3, 1, 'pagerduty'],
      ['oona_queue_depth', 'oona.queue.depth', '>', 4000, 2, 'slack'],
      ['tezzeret_compile_retry_high', 'tezzeret.compile.retry_count', '>', 1, 1, 'email'],
      ['tamiyo_bsds_critical', 'tamiyo.bsds.hazard_critical_signal', '>', 0.5, 1, 'pagerduty'],
      ['tamiyo_bsds_high', 'tamiyo.bsds.hazard_high_signal', '>', 0.5, 3, 'slack'],
      ['tamiyo_bsds_elevated_risk', 'tamiyo.bsds.elevated_risk_flag', '>', 0.5, 1, 'pagerduty'],
    ]);
  });

  it('applies the coverage settings and has no rules when alerts are disabled', () => {
    const rules = alertRules({
      alertsEnabled: true,
      coverageAlertThreshold: 0.9,
      coverageAlertConsecutive: 2,
      bsdsElevatedRiskThreshold: 0.85,
    });
    expect(rules[0]).toMatchObject({ threshold: 0.9, forSamples: 2 });
    expect(
      alertRules({ alertsEnabled: false, coverageAlertThreshold: 0.7, coverageAlertConsecutive: 3, bsdsElevatedRiskThreshold: 0.8 }),
    ).toEqual([]);
  });
});

describe('AlertEngine', () => {
  it('fires after the consecutive breaching samples (9, 11, 12 with for 2 fires on 12) and notifies once', () => {
    const notifier = recorder();
    const engine = new AlertEngine({ rules: [rule()], notifiers: [notifier], clock: new FakeClock({ wallMs: 1_000 }) });
    expect(engine.evaluate(m({ 'x.value': 9 }), 'a')).toEqual([]);
    expect(engine.evaluate(m({ 'x.value': 11 }), 'a')).toEqual([]);
    const [fired] = engine.evaluate(m({ 'x.value': 12 }), 'a');
    expect(fired).toMatchObject({
      kind: 'fired',
      alert: 'test_rule',
      value: 12,
      source: 'a',
      routes: ['slack'],
      severity: 'warning',
      atMs: 1_000,
    });
    expect(engine.evaluate(m({ 'x.value': 13 }), 'a')).toEqual([]); // no re-notification while active
    expect(engine.active()).toEqual([expect.objectContaining({ alert: 'test_rule', source: 'a', value: 13, firedAtMs: 1_000 })]);
    expect(notifier.events.map((e) => e.kind)).toEqual(['fired']);
  });

  it('emits resolved when a sample is back within the threshold, and forgets the streak', () => {
    const notifier = recorder();
    const engine = new AlertEngine({ rules: [rule({ forSamples: 1 })], notifiers: [notifier] });
    engine.evaluate(m({ 'x.value': 20 }), 'a');
    const [resolved] = engine.evaluate(m({ 'x.value': 10 }), 'a'); // strict: 10 is not > 10
    expect(resolved).toMatchObject({ kind: 'resolved', value: 10, source: 'a' });
    expect(resolved?.firedAtMs).toBeTypeOf('number');
    expect(engine.active()).toEqual([]);
    expect(engine.stats()).toMatchObject({ fired: 1, resolved: 1 });
    expect(notifier.events.map((e) => e.kind)).toEqual(['fired', 'resolved']);
  });

  it('counts a streak per source: interleaved packets of other sources or without the metric do not reset it', () => {
    const engine = new AlertEngine({ rules: [rule({ forSamples: 3 })] });
    engine.evaluate(m({ 'x.value': 11 }), 'a');
    engine.evaluate(m({ 'x.value': 1 }), 'b'); // another source, within threshold
    engine.evaluate(m({ 'other.metric': 5 }), 'c'); // no metric
    engine.evaluate(m({ 'x.value': 11 }), 'a');
    engine.evaluate(m({ 'x.value': 11 }), 'b');
    const [fired] = engine.evaluate(m({ 'x.value': 11 }), 'a');
    expect(fired).toMatchObject({ kind: 'fired', source: 'a' });
    expect(engine.isActive('test_rule', 'b')).toBe(false);
    // An active alert survives packets lacking the metric (the prototype's quirk cleared it).
    engine.evaluate(m({ 'other.metric': 5 }), 'a');
    expect(engine.isActive('test_rule', 'a')).toBe(true);
    expect(engine.summary()).toEqual({
      test_rule: {
        metric: 'x.value',
        routes: ['slack'],
        severity: 'warning',
        active: [{ source: 'a', value: 11, firedAtMs: fired!.atMs }],
      },
    });
  });

  it('resets a streak on a compliant sample before it fires', () => {
    const engine = new AlertEngine({ rules: [rule({ forSamples: 2 })] });
    engine.evaluate(m({ 'x.value': 11 }), 'a');
    engine.evaluate(m({ 'x.value': 9 }), 'a');
    expect(engine.evaluate(m({ 'x.value': 11 }), 'a')).toEqual([]);
    expect(engine.evaluate(m({ 'x.value': 11 }), 'a')).toHaveLength(1);
  });

  it('supports the below comparator and ignores NaN', () => {
    const engine = new AlertEngine({ rules: [rule({ comparator: Comparator.BELOW, threshold: 0.7, forSamples: 1 })] });
    expect(engine.evaluate(m({ 'x.value': Number.NaN }), 'a')).toEqual([]);
    expect(engine.evaluate(m({ 'x.value': 0.7 }), 'a')).toEqual([]);
    expect(engine.evaluate(m({ 'x.value': 0.69 }), 'a')).toHaveLength(1);
  });

  it('keeps evaluating and counts when a notifier throws', () => {
    const seen: unknown[] = [];
    const bad: AlertNotifier = {
      name: 'bad',
      notify: () => {
        throw new Error('boom');
      },
    };
    const good = recorder();
    const engine = new AlertEngine({ rules: [rule({ forSamples: 1 })], notifiers: [bad, good], onNotifierError: (e) => seen.push(e) });
    expect(engine.evaluate(m({ 'x.value': 20 }), 'a')).toHaveLength(1);
    expect(good.events).toHaveLength(1);
    expect(engine.stats().notifierErrors).toBe(1);
    expect(seen).toHaveLength(1);
  });

  it('bounds the tracked streams and counts the samples it cannot track', () => {
    const engine = new AlertEngine({ rules: [rule({ forSamples: 2 })], maxStreams: 2 });
    for (const source of ['a', 'b', 'c', 'd']) engine.evaluate(m({ 'x.value': 11 }), source);
    expect(engine.stats().untrackedSamples).toBe(2);
  });

  it('rejects a rule with forSamples < 1 and duplicate rule names', () => {
    expect(() => new AlertEngine({ rules: [rule({ forSamples: 0 })] })).toThrow(/forSamples/);
    expect(() => new AlertEngine({ rules: [rule(), rule()] })).toThrow(/distinct names/);
  });
});

describe('alertInputsFromPacket', () => {
  it('derives the BSDS signals from events, the elevated-risk flag from the risk, and the queue depth from Oona’s streams', () => {
    const [drill] = [buildDrill(AlertRuleName.BSDS_CRITICAL)];
    expect(alertInputsFromPacket(drill!.fire[0]!).get('tamiyo.bsds.hazard_critical_signal')).toBe(1);
    const risky = buildDrill(AlertRuleName.BSDS_ELEVATED_RISK, {
      settings: { alertsEnabled: true, coverageAlertThreshold: 0.7, coverageAlertConsecutive: 3, bsdsElevatedRiskThreshold: 0.85 },
    });
    expect(alertInputsFromPacket(risky.fire[0]!, { bsdsElevatedRiskThreshold: 0.85 }).get('tamiyo.bsds.elevated_risk_flag')).toBe(1);
    expect(alertInputsFromPacket(risky.clear[0]!, { bsdsElevatedRiskThreshold: 0.85 }).get('tamiyo.bsds.elevated_risk_flag')).toBe(0);
  });
});

describe('drills', () => {
  it.each(alertRules().map((r) => r.name))('%s: the fire packets fire it on the last one and the clear packet resolves it', (name) => {
    const sink = new MemoryTelemetrySink();
    const lines: string[] = [];
    const engine = new AlertEngine({ notifiers: [new LogNotifier({ sink, log: (l) => lines.push(l) })] });
    const drill = buildDrill(name);
    expect(drill.fire).toHaveLength(drill.rule.forSamples);
    drill.fire.forEach((packet, i) => {
      const events = engine.evaluate(alertInputsFromPacket(packet), packet.sourceSubsystem);
      expect(events.map((e) => `${e.kind}:${e.alert}`)).toEqual(i === drill.fire.length - 1 ? [`fired:${name}`] : []);
    });
    expect(engine.isActive(name, drill.source)).toBe(true);
    const resolved = drill.clear.flatMap((packet) => engine.evaluate(alertInputsFromPacket(packet), packet.sourceSubsystem));
    expect(resolved.map((e) => `${e.kind}:${e.alert}`)).toEqual([`resolved:${name}`]);
    expect(engine.active()).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^alert FIRING ${name} `)), expect.stringMatching(/^alert RESOLVED /)]);
    expect(sink.events('alert_fired')[0]?.attributes).toMatchObject({ alert: name, source: drill.source });
    expect(sink.events('alert_resolved')).toHaveLength(1);
    expect(sink.packets[0]?.metrics).toEqual([]);
  });

  it('builds WARNING packets with drill ids, one drill per rule', () => {
    const drills = buildAllDrills();
    expect(drills.map((d) => d.rule.name)).toEqual(alertRules().map((r) => r.name));
    expect(drills[0]?.fire[0]).toMatchObject({
      packetId: 'drill-tamiyo_coverage_low-1',
      sourceSubsystem: 'tamiyo',
      trainingRunId: 'drill',
    });
    expect(drills[0]?.fire[0]?.level).toBeGreaterThanOrEqual(TelemetryLevel.WARNING);
    expect(() => buildDrill('no_such_rule')).toThrow(/ruleName/);
  });

  it('follows the coverage settings (threshold 0.9 for 2 fires after two packets)', () => {
    const settings = { alertsEnabled: true, coverageAlertThreshold: 0.9, coverageAlertConsecutive: 2, bsdsElevatedRiskThreshold: 0.8 };
    const engine = new AlertEngine({ rules: alertRules(settings) });
    const drill = buildDrill(AlertRuleName.COVERAGE_LOW, { settings });
    expect(drill.fire).toHaveLength(2);
    const events = drill.fire.flatMap((p) => engine.evaluate(alertInputsFromPacket(p), p.sourceSubsystem));
    expect(events).toHaveLength(1);
  });
});
