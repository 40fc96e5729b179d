/** `esper run`'s policy spec: a learned policy file drawn (`learned:`) or greedy (`greedy:`). */
import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/core/index.js';
import { resolveRunConfig } from '../../src/cli/run-config.js';
import { isLearnedPolicyRef, learnedPolicyOf } from '../../src/tamiyo/index.js';

describe('learned policy specs', () => {
  it('learned:<file> draws its decisions, greedy:<file> takes the most likely choice', () => {
    expect(learnedPolicyOf('learned:/x/policy.bin')).toEqual({ file: '/x/policy.bin', decide: 'sample' });
    expect(learnedPolicyOf('greedy:/x/policy.bin')).toEqual({ file: '/x/policy.bin', decide: 'mode' });
    for (const spec of ['learned:', 'greedy:', 'heuristic', 'gnn', 'mode:/x', '/x/policy.bin']) {
      expect(learnedPolicyOf(spec)).toBeUndefined();
      expect(isLearnedPolicyRef(spec)).toBe(false);
    }
  });

  it('esper run accepts both and refuses an empty file', () => {
    const flags = (policy: string) => ({
      config: undefined,
      dataset: undefined,
      seed: undefined,
      epochs: undefined,
      policy,
      'no-baseline': false,
    });
    expect(resolveRunConfig(flags('greedy:/x/policy.bin')).policy).toBe('greedy:/x/policy.bin');
    expect(resolveRunConfig(flags('learned:/x/policy.bin')).policy).toBe('learned:/x/policy.bin');
    expect(() => resolveRunConfig(flags('greedy:'))).toThrow(SettingsError);
  });
});
