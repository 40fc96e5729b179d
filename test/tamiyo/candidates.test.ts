import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { BlueprintDescriptorSchema, BSDSSchema, HealthStatus, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { admitCandidates, type BlueprintCandidate, type BsdsVerifier } from '../../src/tamiyo/candidates.js';
import { TamiyoEvent } from '../../src/tamiyo/names.js';
import { errorOf } from './fixtures/errors.js';

const trusting: BsdsVerifier = { verify: () => ({ ok: true }) };

function candidate(blueprintId: string, sheetFor?: string): BlueprintCandidate {
  return {
    descriptor: create(BlueprintDescriptorSchema, { blueprintId }),
    ...(sheetFor === undefined ? {} : { bsds: create(BSDSSchema, { blueprintId: sheetFor }) }),
  };
}

function admit(candidates: readonly BlueprintCandidate[], verifier: BsdsVerifier | undefined) {
  const telemetry = new MemoryTelemetrySink();
  const admitted = admitCandidates(candidates, { verifier, telemetry, trainingRunId: 'run-c', clock: new FakeClock() });
  return { ...admitted, telemetry };
}

describe('admitCandidates', () => {
  it('keeps sheet-less candidates and those whose sheet verifies, in order', () => {
    const { accepted, rejected, telemetry } = admit([candidate('BP001'), candidate('BP002', 'BP002')], trusting);
    expect(accepted.map((c) => c.descriptor.blueprintId)).toEqual(['BP001', 'BP002']);
    expect(rejected).toEqual([]);
    expect(telemetry.packets).toEqual([]);
  });

  it('leaves out a sheet that names another blueprint, as an integrity failure, without asking the verifier', () => {
    let asked = 0;
    const counting: BsdsVerifier = { verify: () => ((asked += 1), { ok: true }) };
    const { accepted, rejected, telemetry } = admit([candidate('BP001', 'BP009')], counting);
    expect(accepted).toEqual([]);
    expect(rejected).toEqual([{ blueprintId: 'BP001', reason: 'sheet is for BP009' }]);
    expect(asked).toBe(0);
    const packet = telemetry.packets[0];
    expect(packet?.priority).toBe(MessagePriority.CRITICAL);
    expect(packet?.systemHealth?.status).toBe(HealthStatus.CRITICAL);
    expect(telemetry.events(TamiyoEvent.INTEGRITY_FAILURE)[0]).toMatchObject({
      level: TelemetryLevel.CRITICAL,
      attributes: { subject: 'bsds', blueprint_id: 'BP001' },
    });
  });

  it.each([
    ['a blank blueprint id', [candidate(' ')]],
    ['a duplicate blueprint id', [candidate('BP001'), candidate('BP001')]],
  ])('refuses %s with INVALID_ARGUMENT', (_what, candidates) => {
    expect(
      isEsperError(
        errorOf(() => admit(candidates, trusting)),
        ErrorCode.INVALID_ARGUMENT,
      ),
    ).toBe(true);
  });

  it('refuses a sheet when no verifier is given', () => {
    const error = errorOf(() => admit([candidate('BP001', 'BP001')], undefined));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });
});
