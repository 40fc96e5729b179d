/** The schema of Kasmina's checkpointed state: what fits goes through unchanged, anything else names its path. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { parseKasminaState } from '../../src/kasmina/kasmina-state.js';
import { BlendMode } from '../../src/leyline/index.js';
import { SAMPLE_STATE as STATE } from './fixtures/state.js';

/** Every leaf of `value` with its path in the error's notation (`$.seeds[0].blend.alpha`). */
function leaves(value: unknown, path = '$'): { path: string; value: unknown; keys: (string | number)[] }[] {
  const walk = (v: unknown, p: string, keys: (string | number)[]): { path: string; value: unknown; keys: (string | number)[] }[] => {
    if (Array.isArray(v)) return v.flatMap((item, i) => walk(item, `${p}[${i}]`, [...keys, i]));
    if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, item]) => walk(item, `${p}.${k}`, [...keys, k]));
    return [{ path: p, value: v, keys }];
  };
  return walk(value, path, []);
}

function withLeaf(keys: readonly (string | number)[], replacement: unknown): unknown {
  const copy = structuredClone(STATE) as unknown as Record<string | number, unknown>;
  let target = copy;
  for (const key of keys.slice(0, -1)) target = target[key] as Record<string | number, unknown>;
  target[keys.at(-1) as string | number] = replacement;
  return copy;
}

function issuePaths(value: unknown): string[] {
  try {
    parseKasminaState(value);
  } catch (error) {
    expect(isEsperError(error, ErrorCode.KASMINA_STATE_INVALID)).toBe(true);
    return String((error as { details: Record<string, unknown> }).details['paths']).split(',');
  }
  return [];
}

describe('parseKasminaState', () => {
  it('returns a state that fits unchanged, also after a trip through JSON', () => {
    expect(parseKasminaState(JSON.parse(JSON.stringify(STATE)))).toEqual(STATE);
  });

  it('refuses another version, an unknown stage, a plan without a mode and unknown fields, naming each', () => {
    expect(issuePaths({ ...STATE, version: 2 })).toEqual(['$.version']);
    expect(issuePaths({ ...STATE, retired: [{ ...STATE.retired[0], fate: 99 }] })).toEqual(['$.retired[0].fate']);
    const seed = STATE.seeds[0]!;
    const unspecified = { ...seed, blend: { ...seed.blend, plan: { ...seed.blend.plan, mode: BlendMode.UNSPECIFIED } } };
    expect(issuePaths({ ...STATE, seeds: [unspecified] })).toEqual(['$.seeds[0].blend.plan.mode']);
    expect(issuePaths({ ...STATE, seeds: [{ ...seed, extra: 1 }] })).toEqual(['$.seeds[0]']);
    expect(issuePaths('not a state')).toEqual(['$']);
    expect(issuePaths({ ...STATE, step: -1, epoch: 0.5 })).toEqual(['$.step', '$.epoch']);
  });

  it('refuses any leaf of the wrong type, naming its path (property)', () => {
    const all = leaves(STATE);
    fc.assert(
      fc.property(fc.constantFrom(...all), (leaf) => {
        const wrong = typeof leaf.value === 'string' ? 42 : 'x';
        expect(issuePaths(withLeaf(leaf.keys, wrong))).toContain(leaf.path);
      }),
      { numRuns: all.length * 2 },
    );
  });
});
