import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { IntegrityReporter } from '../../src/urza/integrity.js';
import { UrzaIntegrityReason, UrzaMetric } from '../../src/urza/names.js';

describe('IntegrityReporter', () => {
  it('counts each failure, emits one CRITICAL event with its attributes, and returns the typed error', () => {
    const sink = new MemoryTelemetrySink();
    const reporter = new IntegrityReporter(sink, new FakeClock());
    const error = reporter.fail({
      blueprintId: 'BP043',
      reason: UrzaIntegrityReason.BSDS_UNVERIFIED,
      problem: 'its safety data sheet fails verification',
      attributes: { detail: 'bad_signature', site_key: 'dense:64' },
    });
    reporter.fail({ blueprintId: 'BP009', reason: UrzaIntegrityReason.DESCRIPTOR_UNDECODABLE, problem: 'x' });
    expect(reporter.count).toBe(2);
    expect(isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)).toBe(true);
    expect(error.details).toEqual({ blueprintId: 'BP043', reason: 'bsds_unverified', siteKey: 'dense:64', detail: 'bad_signature' });
    expect(error.message).toContain('BP043');
    const [first, second] = sink.packets;
    expect(first?.priority).toBe(MessagePriority.CRITICAL);
    expect(first?.events[0]).toMatchObject({
      description: 'integrity_failure',
      level: TelemetryLevel.CRITICAL,
      attributes: { blueprint_id: 'BP043', reason: 'bsds_unverified', detail: 'bad_signature', site_key: 'dense:64' },
    });
    expect(second?.metrics.find((m) => m.name === UrzaMetric.INTEGRITY_FAILURES)?.value).toBe(2);
  });

  it('counts without a sink', () => {
    const reporter = new IntegrityReporter(undefined, new FakeClock());
    reporter.fail({ blueprintId: 'BP001', reason: UrzaIntegrityReason.MISSING_ARTIFACT, problem: 'gone' });
    expect(reporter.count).toBe(1);
  });
});
