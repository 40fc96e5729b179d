import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import {
  HEURISTIC_POLICY_DEFAULTS,
  resolveHeuristicPolicyOptions,
  type HeuristicPolicyOptions,
} from '../../src/tamiyo/heuristic-options.js';

describe('heuristic policy options', () => {
  it('resolves to the anchor defaults', () => {
    expect(resolveHeuristicPolicyOptions()).toMatchObject({ ...HEURISTIC_POLICY_DEFAULTS, rotation: undefined });
  });

  it('rejects invalid options, naming the field', () => {
    const cases: [HeuristicPolicyOptions, string][] = [
      [{ maxSeeds: 0 }, 'maxSeeds'],
      [{ minEpochs: 1.5 }, 'minEpochs'],
      [{ pruneAccuracyDrop: -0.1 }, 'pruneAccuracyDrop'],
      [{ penaltyDecayPerEpoch: 1.5 }, 'penaltyDecayPerEpoch'],
      [{ plateauRelativeImprovement: Number.NaN }, 'plateauRelativeImprovement'],
      [{ rotation: [] }, 'rotation'],
      [{ rotation: ['BP001', 'BP001'] }, 'rotation'],
      [{ version: ' ' }, 'version'],
    ];
    for (const [options, field] of cases) {
      let caught: unknown;
      try {
        resolveHeuristicPolicyOptions(options);
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT), field).toBe(true);
      expect((caught as { details?: { field?: string } }).details?.field).toBe(field);
    }
  });
});
