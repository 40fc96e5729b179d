/** The schema of Kasmina's checkpointed state: what fits goes through unchanged, anything else names its path. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { KASMINA_STATE_VERSION, parseKasminaState, type KasminaState } from '../../src/kasmina/kasmina-state.js';
import { BlendMode, BlendModeSource, SeedLifecycleStage as S } from '../../src/leyline/index.js';

const STATE: KasminaState = {
  version: KASMINA_STATE_VERSION,
  step: 40,
  epoch: 1,
  lossEwma: 0.42,
  embargo: [['hidden2', 45]],
  counters: { commandsApplied: 3, gateFailures: 1, illegalTransitions: 0, isolationChecks: 6, seedsCulled: 1, seedsFossilized: 0 },
  seeds: [
    {
      seedId: 's1',
      siteId: 'hidden1',
      blueprintId: 'BP001',
      commandId: 'c1',
      germinatedEpoch: 0,
      history: [
        { from: S.SEED_STAGE_DORMANT, to: S.SEED_STAGE_GERMINATED, step: 0 },
        { from: S.SEED_STAGE_GERMINATED, to: S.SEED_STAGE_TRAINING, step: 0 },
        { from: S.SEED_STAGE_TRAINING, to: S.SEED_STAGE_BLENDING, step: 20 },
      ],
      kernel: { attached: true, phase: 'blended', latencyMs: 3.5, parameters: 272 },
      blend: {
        plan: { mode: BlendMode.CHANNEL, source: BlendModeSource.OPERATOR, alphaVec: [0.5, 1], alphaLo: 0, alphaHi: 1 },
        alpha: 0.25,
        steps: 20,
      },
      progress: { activeSteps: 20, paused: false, lossAtGermination: 0.5 },
      gradients: { sum: 10, count: 20, finite: false, last: null },
      contribution: { value: 0.02, step: 30 },
      isolation: { violations: 0, lastLeak: 1e-9 },
      fate: { cullReason: '', embargoUntilStep: 0, retire: false },
    },
  ],
  retired: [
    {
      seedId: 's0',
      siteId: 'hidden2',
      blueprintId: 'BP002',
      commandId: 'c0',
      germinatedStep: 1,
      fate: S.SEED_STAGE_CULLED,
      fateStep: 5,
      fateReason: 'cull_command',
      parameters: 64,
      history: [{ from: S.SEED_STAGE_DORMANT, to: S.SEED_STAGE_GERMINATED, step: 1 }],
    },
  ],
};

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
