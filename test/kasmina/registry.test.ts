import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { ParameterRegistry, type ParameterOwner } from '../../src/kasmina/registry.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';

let tensorsBefore = 0;
const created: tf.Variable[] = [];
let counter = 0;

function variable(name = `registry-test/v${(counter += 1)}`): tf.Variable {
  const init = tf.zeros([2]);
  const v = tf.variable(init, true, name);
  init.dispose();
  created.push(v);
  return v;
}

function conflictOf(run: () => void): Record<string, unknown> {
  try {
    run();
  } catch (error) {
    if (!isEsperError(error, ErrorCode.KASMINA_REGISTRY_CONFLICT)) throw error;
    return { ...error.details };
  }
  throw new Error('expected a registry conflict');
}

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
});

afterAll(() => {
  for (const v of created) v.dispose();
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

describe('ParameterRegistry', () => {
  it('records seed ownership by identity and answers ownerOf and validateUpdate', () => {
    const registry = new ParameterRegistry();
    const [a, b, host] = [variable(), variable(), variable()];
    registry.registerHost([host]);
    registry.registerSeed('seed-1', [a, b]);
    expect(registry.ownerOf(a)).toEqual({ kind: 'seed', seedId: 'seed-1' });
    expect(registry.ownerOf(host)).toEqual({ kind: 'host' });
    expect(registry.ownerOf(variable())).toBeUndefined();
    expect(registry.validateUpdate('seed-1', [a, b])).toBe(true);
    expect(registry.validateUpdate('seed-1', [])).toBe(true);
    expect(registry.validateUpdate('seed-2', [a])).toBe(false);
    expect(registry.validateUpdate('seed-1', [a, host])).toBe(false);
    expect(registry.validateUpdate('seed-1', [variable()])).toBe(false);
    expect(registry.entries).toBe(3);
    expect(registry.seedIds()).toEqual(['seed-1']);
  });

  it('is idempotent when the same seed registers the same variables again', () => {
    const registry = new ParameterRegistry();
    const [a, b] = [variable(), variable()];
    registry.registerSeed('seed-1', [a, b]);
    const before = registry.snapshot();
    registry.registerSeed('seed-1', [a, b]);
    registry.registerSeed('seed-1', [b]);
    expect(registry.snapshot()).toEqual(before);
    expect(registry.entries).toBe(2);
  });

  it('refuses a variable owned by another seed, records nothing, and names seed, variable and owner', () => {
    const registry = new ParameterRegistry();
    const [shared, fresh] = [variable(), variable()];
    registry.registerSeed('seed-1', [shared]);
    const before = registry.snapshot();
    const details = conflictOf(() => registry.registerSeed('seed-2', [fresh, shared]));
    expect(details).toMatchObject({ seed: 'seed-2', variable: shared.name, owner: 'seed-1', ownerKind: 'seed' });
    // Atomic: `fresh`, processed before the conflict, is not recorded.
    expect(registry.snapshot()).toEqual(before);
    expect(registry.ownerOf(fresh)).toBeUndefined();
    expect(registry.seedIds()).toEqual(['seed-1']);
  });

  it('refuses host and teacher variables to a seed', () => {
    const registry = new ParameterRegistry();
    const [host, teacher] = [variable(), variable()];
    registry.registerHost([host]);
    registry.registerTeacher([teacher]);
    expect(conflictOf(() => registry.registerSeed('seed-1', [host]))).toMatchObject({ seed: 'seed-1', owner: 'host', ownerKind: 'host' });
    expect(conflictOf(() => registry.registerSeed('seed-1', [teacher]))).toMatchObject({
      seed: 'seed-1',
      owner: 'teacher',
      ownerKind: 'teacher',
    });
    expect(registry.seedIds()).toEqual([]);
    expect(registry.validateUpdate('seed-1', [teacher])).toBe(false);
  });

  it('refuses seed or teacher variables to the host, and host variables to the teacher', () => {
    const registry = new ParameterRegistry();
    const [seedVar, teacherVar, hostVar] = [variable(), variable(), variable()];
    registry.registerSeed('seed-1', [seedVar]);
    registry.registerTeacher([teacherVar]);
    registry.registerHost([hostVar]);
    expect(conflictOf(() => registry.registerHost([seedVar]))).toMatchObject({ registrant: 'host', owner: 'seed-1' });
    expect(conflictOf(() => registry.registerHost([teacherVar]))).toMatchObject({ registrant: 'host', owner: 'teacher' });
    expect(conflictOf(() => registry.registerTeacher([hostVar]))).toMatchObject({ registrant: 'teacher', owner: 'host' });
  });

  it('catches a different variable object under a name another owner holds', () => {
    const registry = new ParameterRegistry();
    const original = variable('registry-test/by-name');
    registry.registerSeed('seed-1', [original]);
    original.dispose();
    // tfjs lets the name be reused once the old variable is disposed.
    const rebuilt = variable('registry-test/by-name');
    expect(registry.ownerOf(rebuilt)).toEqual({ kind: 'seed', seedId: 'seed-1' });
    expect(conflictOf(() => registry.registerSeed('seed-2', [rebuilt]))).toMatchObject({
      variable: 'registry-test/by-name',
      owner: 'seed-1',
    });
    // The same seed re-registering a rebuilt variable replaces its stale entry.
    registry.registerSeed('seed-1', [rebuilt]);
    expect(registry.entries).toBe(1);
    expect(registry.validateUpdate('seed-1', [rebuilt])).toBe(true);
    expect(registry.deregisterSeed('seed-1')).toBe(1);
    expect(registry.entries).toBe(0);
  });

  it('deregisters a seed, resets all seeds, resets the teacher, and keeps the host', () => {
    const registry = new ParameterRegistry();
    const [host, teacher, a, b, c] = [variable(), variable(), variable(), variable(), variable()];
    registry.registerHost([host]);
    registry.registerTeacher([teacher]);
    registry.registerSeed('seed-a', [a]);
    registry.registerSeed('seed-b', [b, c]);
    expect(registry.deregisterSeed('seed-a')).toBe(1);
    expect(registry.deregisterSeed('seed-a')).toBe(0);
    expect(registry.ownerOf(a)).toBeUndefined();
    // The freed variable may now go to another seed.
    registry.registerSeed('seed-c', [a]);
    expect(registry.resetSeeds()).toBe(3);
    expect(registry.seedIds()).toEqual([]);
    expect(registry.resetTeacher()).toBe(1);
    expect(registry.snapshot()).toEqual({ hostVariables: [host.name], teacherVariables: [], seeds: [] });
    expect(registry.entries).toBe(1);
  });

  it('rejects an empty seed id', () => {
    const registry = new ParameterRegistry();
    expect(() => registry.registerSeed('', [variable()])).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('keeps every variable with at most one owner and makes failed registrations leave no trace (property)', () => {
    const pool = Array.from({ length: 6 }, () => variable());
    const ownerArb = fc.constantFrom<ParameterOwner>(
      { kind: 'host' },
      { kind: 'teacher' },
      { kind: 'seed', seedId: 'a' },
      { kind: 'seed', seedId: 'b' },
      { kind: 'seed', seedId: 'c' },
    );
    const opArb = fc.oneof(
      fc.record({ op: fc.constant('register' as const), owner: ownerArb, vars: fc.subarray([0, 1, 2, 3, 4, 5]) }),
      fc.record({ op: fc.constant('deregister' as const), seedId: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ op: fc.constant('resetSeeds' as const) }),
      fc.record({ op: fc.constant('resetTeacher' as const) }),
    );
    const label = (owner: ParameterOwner | undefined): string | undefined =>
      owner === undefined ? undefined : owner.kind === 'seed' ? `seed:${owner.seedId}` : owner.kind;

    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        const registry = new ParameterRegistry();
        const model = new Map<number, string>();
        for (const step of ops) {
          switch (step.op) {
            case 'register': {
              const who = label(step.owner) as string;
              const clash = step.vars.some((i) => model.has(i) && model.get(i) !== who);
              const before = registry.snapshot();
              const run = (): void => {
                const vars = step.vars.map((i) => pool[i] as tf.Variable);
                if (step.owner.kind === 'host') registry.registerHost(vars);
                else if (step.owner.kind === 'teacher') registry.registerTeacher(vars);
                else registry.registerSeed(step.owner.seedId, vars);
              };
              if (clash) {
                conflictOf(run);
                expect(registry.snapshot()).toEqual(before);
              } else {
                run();
                for (const i of step.vars) model.set(i, who);
              }
              break;
            }
            case 'deregister':
              registry.deregisterSeed(step.seedId);
              for (const [i, who] of model) if (who === `seed:${step.seedId}`) model.delete(i);
              break;
            case 'resetSeeds':
              registry.resetSeeds();
              for (const [i, who] of model) if (who.startsWith('seed:')) model.delete(i);
              break;
            case 'resetTeacher':
              registry.resetTeacher();
              for (const [i, who] of model) if (who === 'teacher') model.delete(i);
              break;
          }
          pool.forEach((v, i) => expect(label(registry.ownerOf(v))).toBe(model.get(i)));
          expect(registry.entries).toBe(model.size);
        }
      }),
      { numRuns: 200 },
    );
  });
});
