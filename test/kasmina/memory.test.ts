import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock } from '../../src/core/index.js';
import { KernelCache } from '../../src/kasmina/kernel-cache.js';
import { MemoryGovernor } from '../../src/kasmina/memory.js';
import { thrownBy } from '../support/thrown.js';

function setup(gcEveryEpochs = 10): { clock: FakeClock; cache: KernelCache; governor: MemoryGovernor } {
  const clock = new FakeClock();
  const cache = new KernelCache({ capacity: 8, ttlSeconds: 10, clock });
  return { clock, cache, governor: new MemoryGovernor({ cache, gcEveryEpochs, clock }) };
}

function fill(cache: KernelCache, ...blueprints: string[]): void {
  for (const id of blueprints) cache.set(id, 's', { bytes: new Uint8Array([1]), checksum: id, guardDigest: id });
}

describe('MemoryGovernor', () => {
  it('sweeps expired entries every gcEveryEpochs epochs and counts the sweeps', () => {
    const { clock, cache, governor } = setup(10);
    fill(cache, 'A', 'B');
    clock.advance(11_000);
    fill(cache, 'C');
    expect(governor.onEpoch(0)).toEqual({ ran: false, expired: 0, gcCounter: 0, epoch: 0 });
    expect(governor.onEpoch(9)).toEqual({ ran: false, expired: 0, gcCounter: 0, epoch: 9 });
    expect(cache.size).toBe(3);
    expect(governor.onEpoch(10)).toEqual({ ran: true, expired: 2, gcCounter: 1, epoch: 10 });
    expect(cache.size).toBe(1);
    expect(governor.lastGcEpoch).toBe(10);
    expect(governor.lastGcAtMs).toBe(11_000);
    expect(governor.onEpoch(19).ran).toBe(false);
    expect(governor.onEpoch(20)).toEqual({ ran: true, expired: 0, gcCounter: 2, epoch: 20 });
  });

  it('restarts the count from a rewound epoch (rollback) instead of stalling', () => {
    const { governor } = setup(5);
    expect(governor.onEpoch(20).ran).toBe(true);
    // Rolled back to epoch 12: the next sweep is 5 epochs after it, not after 20.
    expect(governor.onEpoch(12).ran).toBe(false);
    expect(governor.lastGcEpoch).toBe(12);
    expect(governor.onEpoch(16).ran).toBe(false);
    expect(governor.onEpoch(17)).toMatchObject({ ran: true, gcCounter: 2 });
  });

  it('cleanup removes expired entries only', () => {
    const { clock, cache, governor } = setup();
    fill(cache, 'A');
    clock.advance(10_001);
    fill(cache, 'B');
    expect(governor.cleanup()).toBe(1);
    expect(cache.get('B', 's')).toBeDefined();
  });

  it('emergencyCleanup drops every cache entry and reports how many', () => {
    const { cache, governor } = setup();
    fill(cache, 'A', 'B', 'C');
    expect(governor.emergencyCleanup()).toEqual({ kernelCacheCleared: 3 });
    expect(cache.size).toBe(0);
    expect(governor.emergencyCleanup()).toEqual({ kernelCacheCleared: 0 });
  });

  it('rejects a negative epoch and a bad gcEveryEpochs', () => {
    const { governor, cache } = setup();
    const fieldOf = (fn: () => unknown): unknown => thrownBy(fn, ErrorCode.INVALID_ARGUMENT).details['field'];
    expect(fieldOf(() => governor.onEpoch(-1))).toBe('epoch');
    expect(fieldOf(() => governor.onEpoch(1.5))).toBe('epoch');
    expect(fieldOf(() => new MemoryGovernor({ cache, gcEveryEpochs: 0 }))).toBe('gcEveryEpochs');
  });
});
