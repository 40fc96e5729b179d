import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { RiskReason } from '../../src/leyline/index.js';
import { FieldReportBuilder, type FieldReportBuilderOptions } from '../../src/tamiyo/field-reports.js';
import { RUN_ID, seedCommand } from './fixtures/field-report-samples.js';
import { errorOf } from './fixtures/errors.js';

const options: FieldReportBuilderOptions = { trainingRunId: RUN_ID, policyVersion: () => 'v1', telemetry: new MemoryTelemetrySink() };

function snapshot(): { windows: Record<string, unknown>[] } & Record<string, unknown> {
  const builder = new FieldReportBuilder(options);
  builder.open(seedCommand('c1'), {
    epoch: 0,
    seedId: 'seed-a',
    blueprintId: 'bp',
    reason: RiskReason.POLICY,
    decisionDelta: { riskScore: 0.5 },
  });
  return JSON.parse(JSON.stringify(builder.toJSON())) as { windows: Record<string, unknown>[] };
}

describe('field-report windows snapshot', () => {
  it('round-trips through JSON', () => {
    const good = snapshot();
    expect(FieldReportBuilder.restore(good, options).toJSON()).toEqual(good);
  });

  it.each([
    ['a mistyped number', (s: ReturnType<typeof snapshot>) => (s.windows[0]!['lossDeltaSum'] = 'x'), '$.windows[0].lossDeltaSum'],
    ['a missing field', (s: ReturnType<typeof snapshot>) => delete s.windows[0]!['seedStage'], '$.windows[0].seedStage'],
    [
      'an unknown delta slot',
      (s: ReturnType<typeof snapshot>) => ((s.windows[0]!['decisionDelta'] as Record<string, number>)['bogus'] = 1),
      '$.windows[0].decisionDelta',
    ],
    ['a duplicate command id', (s: ReturnType<typeof snapshot>) => s.windows.push({ ...s.windows[0]! }), '$.windows[1].commandId'],
    ['another version', (s: ReturnType<typeof snapshot>) => (s['version'] = 2), '$.version'],
  ])('refuses %s, naming the source and the field', (_what, corrupt, field) => {
    const broken = snapshot();
    corrupt(broken);
    const error = errorOf(() => FieldReportBuilder.restore(broken, options, '/var/tamiyo/windows.json'));
    expect(isEsperError(error, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ path: '/var/tamiyo/windows.json', paths: field });
    expect((error as Error).message).toContain('/var/tamiyo/windows.json');
  });

  it("refuses another run's snapshot and a non-object", () => {
    const otherRun = errorOf(() => FieldReportBuilder.restore(snapshot(), { ...options, trainingRunId: 'run-other' }));
    expect(isEsperError(otherRun, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    expect((otherRun as { details: Record<string, unknown> }).details['paths']).toBe('$.trainingRunId');
    expect(
      isEsperError(
        errorOf(() => FieldReportBuilder.restore(null, options)),
        ErrorCode.TAMIYO_FIELD_REPORT_INVALID,
      ),
    ).toBe(true);
  });
});
