import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock } from '../../src/core/index.js';
import { KernelCache, type KernelCacheOptions } from '../../src/kasmina/kernel-cache.js';
import { thrownBy } from '../support/thrown.js';

function artifact(tag: number): { bytes: Uint8Array; checksum: string; guardDigest: string } {
  return { bytes: new Uint8Array([tag, tag + 1, tag + 2]), checksum: `sum-${tag}`, guardDigest: `guard-${tag}` };
}

describe('KernelCache', () => {
  it('serves a stored entry with its checksum, guard digest, site key and load time, counting hits and misses', () => {
    const clock = new FakeClock({ monotonicMs: 1_000 });
    const cache = new KernelCache({ capacity: 4, ttlSeconds: 60, clock });
    expect(cache.get('BP001', 'dense:8')).toBeUndefined();
    cache.set('BP001', 'dense:8', artifact(1));
    const entry = cache.get('BP001', 'dense:8');
    expect(entry).toMatchObject({ checksum: 'sum-1', guardDigest: 'guard-1', siteKey: 'dense:8', loadedAtMs: 1_000 });
    expect([...(entry?.bytes ?? [])]).toEqual([1, 2, 3]);
    expect(cache.stats()).toMatchObject({ size: 1, capacity: 4, hits: 1, misses: 1, evictions: 0, expired: 0, hitRate: 0.5 });
  });

  it('keys entries by blueprint and site key', () => {
    const cache = new KernelCache({ clock: new FakeClock() });
    cache.set('BP001', 'dense:8', artifact(1));
    cache.set('BP001', 'dense:16', artifact(2));
    expect(cache.get('BP001', 'dense:16')?.checksum).toBe('sum-2');
    expect(cache.get('BP001', 'dense:8')?.checksum).toBe('sum-1');
    expect(cache.get('BP002', 'dense:8')).toBeUndefined();
  });

  it('stores a copy of the bytes, so the caller cannot poison the cache', () => {
    const cache = new KernelCache({ clock: new FakeClock() });
    const input = artifact(7);
    cache.set('BP001', 's', input);
    input.bytes[0] = 99;
    expect(cache.get('BP001', 's')?.bytes[0]).toBe(7);
  });

  it('evicts the least recently used entry at capacity, counting it', () => {
    const cache = new KernelCache({ capacity: 2, clock: new FakeClock() });
    cache.set('A', 's', artifact(1));
    cache.set('B', 's', artifact(2));
    cache.get('A', 's'); // A is now the most recent
    cache.set('C', 's', artifact(3));
    expect(cache.get('B', 's')).toBeUndefined();
    expect(cache.get('A', 's')).toBeDefined();
    expect(cache.get('C', 's')).toBeDefined();
    expect(cache.stats()).toMatchObject({ size: 2, evictions: 1, expired: 0 });
    // Replacing an existing key evicts nothing.
    cache.set('A', 's', artifact(4));
    expect(cache.stats()).toMatchObject({ size: 2, evictions: 1 });
    expect(cache.get('A', 's')?.checksum).toBe('sum-4');
  });

  it('treats an entry older than its TTL as an expired eviction and a miss', () => {
    const clock = new FakeClock();
    const cache = new KernelCache({ ttlSeconds: 10, clock });
    cache.set('A', 's', artifact(1));
    clock.advance(10_000);
    expect(cache.get('A', 's')).toBeDefined(); // served for exactly the TTL
    clock.advance(1);
    expect(cache.get('A', 's')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 0, hits: 1, misses: 1, evictions: 1, expired: 1 });
  });

  it('cleanup removes only expired entries and returns how many', () => {
    const clock = new FakeClock();
    const cache = new KernelCache({ ttlSeconds: 10, clock });
    cache.set('old-1', 's', artifact(1));
    cache.set('old-2', 's', artifact(2));
    clock.advance(6_000);
    cache.set('young', 's', artifact(3));
    clock.advance(5_000);
    expect(cache.cleanup()).toBe(2);
    expect(cache.size).toBe(1);
    expect(cache.get('young', 's')).toBeDefined();
    expect(cache.stats()).toMatchObject({ expired: 2, evictions: 2 });
    expect(cache.cleanup()).toBe(0);
  });

  it('delete, deleteBlueprint and clear remove entries without counting evictions, keeping counters', () => {
    const cache = new KernelCache({ clock: new FakeClock() });
    cache.set('A', 's1', artifact(1));
    cache.set('A', 's2', artifact(2));
    cache.set('B', 's1', artifact(3));
    cache.set('C', 's1', artifact(4));
    cache.get('C', 's1');
    expect(cache.delete('C', 's1')).toBe(true);
    expect(cache.delete('C', 's1')).toBe(false);
    expect(cache.deleteBlueprint('A')).toBe(2);
    expect(cache.deleteBlueprint('A')).toBe(0);
    expect(cache.clear()).toBe(1);
    expect(cache.stats()).toMatchObject({ size: 0, hits: 1, evictions: 0, expired: 0 });
  });

  it('rejects a bad capacity or TTL, naming the field', () => {
    const fieldOf = (options: KernelCacheOptions): unknown =>
      thrownBy(() => new KernelCache(options), ErrorCode.INVALID_ARGUMENT).details['field'];
    expect(fieldOf({ capacity: 0 })).toBe('capacity');
    expect(fieldOf({ capacity: 1.5 })).toBe('capacity');
    expect(fieldOf({ ttlSeconds: 0 })).toBe('ttlSeconds');
    expect(fieldOf({ ttlSeconds: Infinity })).toBe('ttlSeconds');
  });

  it('never exceeds capacity and keeps hits + misses equal to lookups (property)', () => {
    const opArb = fc.oneof(
      fc.record({ op: fc.constant('set' as const), key: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('get' as const), key: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 4_000 }) }),
      fc.record({ op: fc.constant('cleanup' as const) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(opArb, { maxLength: 60 }), (capacity, ops) => {
        const clock = new FakeClock();
        const cache = new KernelCache({ capacity, ttlSeconds: 5, clock });
        let lookups = 0;
        for (const step of ops) {
          if (step.op === 'set') cache.set(`bp-${step.key}`, 's', artifact(step.key));
          else if (step.op === 'get') {
            lookups += 1;
            const entry = cache.get(`bp-${step.key}`, 's');
            if (entry !== undefined) {
              expect(entry.checksum).toBe(`sum-${step.key}`);
              expect(clock.monotonicMs() - entry.loadedAtMs).toBeLessThanOrEqual(5_000);
            }
          } else if (step.op === 'advance') clock.advance(step.ms);
          else cache.cleanup();
          const stats = cache.stats();
          expect(stats.size).toBeLessThanOrEqual(capacity);
          expect(stats.hits + stats.misses).toBe(lookups);
          expect(stats.expired).toBeLessThanOrEqual(stats.evictions);
        }
      }),
      { numRuns: 200 },
    );
  });
});
