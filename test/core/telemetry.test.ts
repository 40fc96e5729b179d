import { toBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { ErrorCode, EsperError, isEsperError } from '../../src/core/errors.js';
import { CRITICAL_EVENTS, ESCALATING_WARNING_EVENTS, priorityForEvent } from '../../src/core/priority.js';
import { buildTelemetryPacket, MemoryTelemetrySink, toAttributeMap } from '../../src/core/telemetry.js';
import { HealthStatus, MessagePriority, TelemetryLevel, TelemetryPacketSchema } from '../../src/leyline/index.js';

describe('priority table (spec 01)', () => {
  it.each([
    [TelemetryLevel.INFO, 'seed_germinated', MessagePriority.NORMAL],
    [TelemetryLevel.WARNING, 'loss_warning', MessagePriority.NORMAL],
    [TelemetryLevel.WARNING, 'tamiyo_timeout', MessagePriority.HIGH],
    [TelemetryLevel.WARNING, 'hook_budget', MessagePriority.HIGH],
    [TelemetryLevel.WARNING, 'isolation_violations', MessagePriority.HIGH],
    [TelemetryLevel.WARNING, 'bp_quarantine', MessagePriority.HIGH],
    [TelemetryLevel.ERROR, 'anything_failed', MessagePriority.HIGH],
    [TelemetryLevel.CRITICAL, 'halt', MessagePriority.CRITICAL],
    [TelemetryLevel.INFO, 'command_rejected', MessagePriority.CRITICAL],
    [TelemetryLevel.ERROR, 'dependency_guard.violation', MessagePriority.CRITICAL],
    [TelemetryLevel.WARNING, 'gate_failure', MessagePriority.NORMAL],
    [TelemetryLevel.ERROR, 'gate_failure', MessagePriority.HIGH],
    [TelemetryLevel.WARNING, 'prefetch_timeout', MessagePriority.CRITICAL],
  ])('maps level %i event %s to priority %i', (level, description, priority) => {
    expect(priorityForEvent(level, description)).toBe(priority);
  });

  it('never lists an event as both escalating and critical', () => {
    for (const name of CRITICAL_EVENTS) expect(ESCALATING_WARNING_EVENTS.has(name)).toBe(false);
  });
});

describe('buildTelemetryPacket', () => {
  const clock = new FakeClock({ wallMs: Date.UTC(2026, 10, 27, 12, 0, 0) });

  it('stamps id, time, source, run id and default health; metric-only packets are NORMAL', () => {
    const packet = buildTelemetryPacket({
      source: 'tolaria',
      trainingRunId: 'run-1',
      clock,
      metrics: [{ name: 'tolaria.step_latency_ms', value: 12.5, unit: 'ms' }],
    });
    expect(packet.packetId).toMatch(/^[0-9a-f-]{36}$/);
    expect(timestampMs(packet.timestamp!)).toBe(clock.wallMs());
    expect(packet.sourceSubsystem).toBe('tolaria');
    expect(packet.trainingRunId).toBe('run-1');
    expect(packet.level).toBe(TelemetryLevel.INFO);
    expect(packet.priority).toBe(MessagePriority.NORMAL);
    expect(packet.systemHealth?.status).toBe(HealthStatus.HEALTHY);
    expect(packet.metrics[0]).toMatchObject({ name: 'tolaria.step_latency_ms', value: 12.5, unit: 'ms' });
  });

  it('sets priority and level to the maximum over the events', () => {
    const packet = buildTelemetryPacket({
      source: 'kasmina',
      packetId: 'p-1',
      clock,
      events: [
        { description: 'seed_blending' },
        { description: 'hook_budget', level: TelemetryLevel.WARNING },
        { description: 'prefetch_timeout', level: TelemetryLevel.WARNING, eventId: 'custom-id' },
      ],
    });
    expect(packet.priority).toBe(MessagePriority.CRITICAL);
    expect(packet.level).toBe(TelemetryLevel.CRITICAL);
    expect(packet.events.map((e) => e.eventId)).toEqual(['p-1:evt-1', 'p-1:evt-2', 'custom-id']);
    // the event itself carries the effective (raised) level
    expect(packet.events[2]?.level).toBe(TelemetryLevel.CRITICAL);
  });

  it('honours a LOW base priority for sheddable packets and never lowers an event below its table value', () => {
    expect(buildTelemetryPacket({ source: 'nissa', basePriority: MessagePriority.LOW }).priority).toBe(MessagePriority.LOW);
    const packet = buildTelemetryPacket({
      source: 'nissa',
      basePriority: MessagePriority.LOW,
      events: [{ description: 'tamiyo_timeout', level: TelemetryLevel.WARNING }],
    });
    expect(packet.priority).toBe(MessagePriority.HIGH);
  });

  it('stores attributes as strings with keys in code-point order, so encoding is deterministic', () => {
    const a = buildTelemetryPacket({
      source: 's',
      packetId: 'x',
      clock,
      events: [{ description: 'e', attributes: { zeta: 1, alpha: true, mid: 5n } }],
    });
    const b = buildTelemetryPacket({
      source: 's',
      packetId: 'x',
      clock,
      events: [{ description: 'e', attributes: { mid: 5n, alpha: true, zeta: 1 } }],
    });
    expect(Object.keys(a.events[0]!.attributes)).toEqual(['alpha', 'mid', 'zeta']);
    expect(a.events[0]!.attributes).toEqual({ alpha: 'true', mid: '5', zeta: '1' });
    expect(toBinary(TelemetryPacketSchema, a)).toEqual(toBinary(TelemetryPacketSchema, b));
    expect(Object.keys(toAttributeMap({ '\u{1F600}': 'a', '\uFF21': 'b' }))).toEqual(['\uFF21', '\u{1F600}']);
  });

  it.each([
    [{ source: '' }, 'telemetry source'],
    [{ source: 's', metrics: [{ name: 'm', value: 1, unit: '' }] }, 'has no unit'],
    [{ source: 's', metrics: [{ name: '', value: 1, unit: 'ms' }] }, 'metric name'],
    [{ source: 's', events: [{ description: '' }] }, 'event description'],
  ])('rejects %j with INVALID_ARGUMENT', (input, message) => {
    let caught: unknown;
    try {
      buildTelemetryPacket(input);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((caught as EsperError).message).toContain(message);
  });
});

describe('MemoryTelemetrySink', () => {
  it('keeps the newest packets up to its capacity and counts what it drops', () => {
    const sink = new MemoryTelemetrySink(2);
    for (const id of ['a', 'b', 'c']) {
      sink.emit(buildTelemetryPacket({ source: 's', packetId: id, events: [{ description: `e-${id}` }] }));
    }
    expect(sink.packets.map((p) => p.packetId)).toEqual(['b', 'c']);
    expect(sink.dropped).toBe(1);
    expect(sink.events('e-c')).toHaveLength(1);
    sink.clear();
    expect(sink.packets).toHaveLength(0);
  });

  it('refuses a capacity below 1', () => {
    expect(() => new MemoryTelemetrySink(0)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});

describe('EsperError', () => {
  it('carries a stable code, details and cause, and is recognised by brand', () => {
    const cause = new Error('disk full');
    const error = new EsperError(ErrorCode.RECORD_LOG_IO_FAILED, 'append failed', { cause, details: { offset: 12 } });
    expect(error.code).toBe(ErrorCode.RECORD_LOG_IO_FAILED);
    expect(error.details).toEqual({ offset: 12 });
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('EsperError');
    expect(isEsperError(error)).toBe(true);
    expect(isEsperError(error, ErrorCode.RECORD_LOG_IO_FAILED)).toBe(true);
    expect(isEsperError(error, ErrorCode.DECODE_FAILED)).toBe(false);
    expect(isEsperError(new Error('x'))).toBe(false);
    expect(isEsperError({ code: ErrorCode.DECODE_FAILED })).toBe(false);
  });
});

describe('FakeClock', () => {
  it('moves monotonic and wall time together and refuses to go backwards', () => {
    const clock = new FakeClock({ monotonicMs: 10, wallMs: 1_000 });
    clock.advance(5);
    expect([clock.monotonicMs(), clock.wallMs()]).toEqual([15, 1_005]);
    clock.setWallMs(0);
    expect([clock.monotonicMs(), clock.wallMs()]).toEqual([15, 0]);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });
});
