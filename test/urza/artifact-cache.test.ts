import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/index.js';
import { ArtifactCache } from '../../src/urza/artifact-cache.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('ArtifactCache', () => {
  it('serves an entry within its TTL and drops it after, counting hits, misses and expiries', () => {
    const clock = new FakeClock();
    const cache = new ArtifactCache<string>({ maxEntries: 4, ttlMs: 1_000, clock });
    expect(cache.get('BP001', 'dense:8')).toBeUndefined();
    cache.put('BP001', 'dense:8', bytes('a'), 'record-a', cache.generation);
    expect(cache.get('BP001', 'dense:8')?.record).toBe('record-a');
    clock.advance(1_000);
    expect(cache.get('BP001', 'dense:8')).toBeUndefined();
    expect(cache.stats()).toEqual({ hits: 1, misses: 2, expired: 1, evictions: 0, size: 0 });
  });

  it('evicts the least recently used entry beyond maxEntries, and caches nothing at 0', () => {
    const cache = new ArtifactCache<string>({ maxEntries: 2, ttlMs: 60_000, clock: new FakeClock() });
    for (const id of ['a', 'b']) cache.put(id, 's', bytes(id), id, cache.generation);
    cache.get('a', 's');
    cache.put('c', 's', bytes('c'), 'c', cache.generation);
    expect(cache.get('b', 's')).toBeUndefined();
    expect(cache.get('a', 's')?.record).toBe('a');
    expect(cache.stats().evictions).toBe(1);
    const off = new ArtifactCache<string>({ maxEntries: 0, ttlMs: 60_000, clock: new FakeClock() });
    off.put('a', 's', bytes('a'), 'a', off.generation);
    expect(off.stats().size).toBe(0);
  });

  it('does not cache bytes read before an invalidation (a save racing a load)', () => {
    const cache = new ArtifactCache<string>({ maxEntries: 4, ttlMs: 60_000, clock: new FakeClock() });
    const before = cache.generation;
    cache.invalidate('BP001', 'dense:8');
    cache.put('BP001', 'dense:8', bytes('stale'), 'stale', before);
    expect(cache.stats().size).toBe(0);
  });

  it('invalidates one site or every site of a blueprint, and no other blueprint', () => {
    const cache = new ArtifactCache<string>({ maxEntries: 8, ttlMs: 60_000, clock: new FakeClock() });
    for (const [id, site] of [
      ['BP1', 'x'],
      ['BP1', 'y'],
      ['BP10', 'x'],
    ] as const) {
      cache.put(id, site, bytes(id), `${id}/${site}`, cache.generation);
    }
    cache.invalidate('BP1', 'x');
    expect(cache.stats().size).toBe(2);
    cache.invalidate('BP1');
    expect(cache.stats().size).toBe(1);
    expect(cache.get('BP10', 'x')?.record).toBe('BP10/x');
  });
});
