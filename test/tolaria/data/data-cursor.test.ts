/**
 * DataCursor: deterministic per-epoch order, exact epoch coverage with a short last batch,
 * and resumption from a checkpointed state that continues exactly like an uninterrupted
 * cursor (property-tested over sizes, seeds, batch-size sequences and stop points).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import type { DataCursorState } from '../../../src/tolaria/dataset.js';
import { DataCursor } from '../../../src/tolaria/data/data-cursor.js';

const epochOf = (cursor: DataCursor, batchSize: number): number[] => {
  const out: number[] = [];
  do out.push(...cursor.nextBatch(batchSize));
  while (!cursor.epochEnded);
  return out;
};

function invalidArgument(fn: () => unknown): boolean {
  try {
    fn();
  } catch (error) {
    return isEsperError(error, ErrorCode.INVALID_ARGUMENT);
  }
  return false;
}

describe('DataCursor', () => {
  it('visits every index exactly once per epoch, with a short last batch, then rolls over', () => {
    const cursor = new DataCursor({ size: 10, seed: 1 });
    expect(cursor.batchesPerEpoch(4)).toBe(3);
    const sizes: number[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const batch = cursor.nextBatch(4);
      sizes.push(batch.length);
      seen.push(...batch);
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(cursor.state()).toEqual({ seed: 1, epoch: 0, position: 10 });
    expect(cursor.epochEnded).toBe(true);
    const next = cursor.nextBatch(4);
    expect(cursor.state()).toEqual({ seed: 1, epoch: 1, position: 4 });
    expect(next.length).toBe(4);
  });

  it('shuffles each epoch differently, deterministically from the seed', () => {
    const a = new DataCursor({ size: 50, seed: 7 });
    const b = new DataCursor({ size: 50, seed: 7 });
    const c = new DataCursor({ size: 50, seed: 8 });
    const a0 = epochOf(a, 16);
    const a1 = epochOf(a, 16);
    expect(epochOf(b, 16)).toEqual(a0);
    expect(epochOf(b, 16)).toEqual(a1);
    expect(a1).not.toEqual(a0);
    expect(epochOf(c, 16)).not.toEqual(a0);
    expect([...a1].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    // The epoch order does not depend on the batch size used to walk it.
    expect(epochOf(new DataCursor({ size: 50, seed: 7 }), 3)).toEqual(a0);
  });

  it('walks 0…size−1 in order every epoch when shuffle is off', () => {
    const cursor = new DataCursor({ size: 5, seed: 3, shuffle: false });
    expect(epochOf(cursor, 2)).toEqual([0, 1, 2, 3, 4]);
    expect(epochOf(cursor, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(cursor.epoch).toBe(1);
  });

  it('resumes from state() exactly where an uninterrupted cursor continues, including at an epoch end', () => {
    const reference = new DataCursor({ size: 23, seed: 11 });
    const interrupted = new DataCursor({ size: 23, seed: 11 });
    for (let i = 0; i < 5; i += 1) reference.nextBatch(7);
    for (let i = 0; i < 4; i += 1) interrupted.nextBatch(7); // ends epoch 0 exactly at 23
    const saved: DataCursorState = JSON.parse(JSON.stringify(interrupted.state())) as DataCursorState;
    expect(saved).toEqual({ seed: 11, epoch: 0, position: 23 });
    const restored = DataCursor.restore(saved, { size: 23 });
    restored.nextBatch(7);
    expect(restored.state()).toEqual(reference.state());
    for (let i = 0; i < 10; i += 1) expect(restored.nextBatch(5)).toEqual(reference.nextBatch(5));
  });

  it('hands out copies: mutating a batch does not change the indices that follow', () => {
    const a = new DataCursor({ size: 6, seed: 2 });
    const b = new DataCursor({ size: 6, seed: 2 });
    a.nextBatch(3).fill(0);
    b.nextBatch(3);
    expect(a.nextBatch(3)).toEqual(b.nextBatch(3));
    expect([...a.nextBatch(6)].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('rejects invalid sizes, seeds, batch sizes and states with INVALID_ARGUMENT', () => {
    expect(invalidArgument(() => new DataCursor({ size: 0, seed: 1 }))).toBe(true);
    expect(invalidArgument(() => new DataCursor({ size: 4, seed: -1 }))).toBe(true);
    expect(invalidArgument(() => new DataCursor({ size: 4, seed: 1 }).nextBatch(0))).toBe(true);
    expect(invalidArgument(() => new DataCursor({ size: 4, seed: 1 }).nextBatch(1.5))).toBe(true);
    expect(invalidArgument(() => DataCursor.restore({ seed: 1, epoch: 0, position: 5 }, { size: 4 }))).toBe(true);
    expect(invalidArgument(() => DataCursor.restore({ seed: 1, epoch: -1, position: 0 }, { size: 4 }))).toBe(true);
    expect(invalidArgument(() => DataCursor.restore(null as unknown as DataCursorState, { size: 4 }))).toBe(true);
  });

  it('property: restore(state()) continues identically for any sizes, seeds, batch sizes and stop point', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.nat({ max: 2 ** 31 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }),
        (size, seed, shuffle, before, after) => {
          const reference = new DataCursor({ size, seed, shuffle });
          const interrupted = new DataCursor({ size, seed, shuffle });
          for (const n of before) {
            expect(interrupted.nextBatch(n)).toEqual(reference.nextBatch(n));
          }
          const restored = DataCursor.restore(interrupted.state(), { size, shuffle });
          for (const n of after) {
            expect(restored.nextBatch(n)).toEqual(reference.nextBatch(n));
          }
          expect(restored.state()).toEqual(reference.state());
        },
      ),
      { numRuns: 200 },
    );
  });
});
