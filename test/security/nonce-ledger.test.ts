import { describe, expect, it } from 'vitest';
import { FakeClock, isEsperError, ErrorCode, MemoryTelemetrySink } from '../../src/core/index.js';
import { MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import {
  DEFAULT_NONCE_LEDGER_MAX_ENTRIES,
  DEFAULT_NONCE_TTL_SECONDS,
  NonceLedger,
  resolveNonceLedgerOptions,
} from '../../src/security/nonce-ledger.js';
import type { NonceStore } from '../../src/security/nonce-store.js';

describe('NonceLedger', () => {
  it('defaults to the reference TTL of 300 s and cap of 10,000 entries', () => {
    const ledger = new NonceLedger({ clock: new FakeClock() });
    expect(DEFAULT_NONCE_TTL_SECONDS).toBe(300);
    expect(DEFAULT_NONCE_LEDGER_MAX_ENTRIES).toBe(10_000);
    expect(ledger.snapshot()).toEqual({
      size: 0,
      evictionsTotal: 0,
      purgedTotal: 0,
      ttlSeconds: 300,
      maxEntries: 10_000,
    });
  });

  it('rejects a replayed nonce within its TTL', () => {
    const clock = new FakeClock();
    const ledger = new NonceLedger({ clock, ttlSeconds: 10 });
    expect(ledger.register('n-1')).toBe(true);
    clock.advance(9_999);
    expect(ledger.register('n-1')).toBe(false);
    expect(ledger.has('n-1')).toBe(true);
    expect(ledger.size).toBe(1);
  });

  it('keeps the first expiry when a replay is refused', () => {
    const clock = new FakeClock();
    const ledger = new NonceLedger({ clock, ttlSeconds: 10 });
    ledger.register('n-1');
    clock.advance(9_000);
    expect(ledger.register('n-1')).toBe(false);
    clock.advance(1_000);
    // The replay did not extend the lifetime: exactly at first expiry the nonce is gone.
    expect(ledger.has('n-1')).toBe(false);
    expect(ledger.register('n-1')).toBe(true);
  });

  it('accepts a nonce again once its TTL has passed, purging it on register', () => {
    const clock = new FakeClock();
    const ledger = new NonceLedger({ clock, ttlSeconds: 10 });
    ledger.register('n-1');
    ledger.register('n-2');
    clock.advance(10_000);
    expect(ledger.has('n-1')).toBe(false);
    expect(ledger.register('n-1')).toBe(true);
    expect(ledger.snapshot()).toMatchObject({ size: 1, purgedTotal: 2, evictionsTotal: 0 });
  });

  it('purges expired nonces without a register call', () => {
    const clock = new FakeClock();
    const ledger = new NonceLedger({ clock, ttlSeconds: 10 });
    ledger.register('old-1');
    ledger.register('old-2');
    clock.advance(5_000);
    ledger.register('young');
    expect(ledger.purgeExpired()).toBe(0);

    clock.advance(5_000);
    expect(ledger.purgeExpired()).toBe(2);
    expect(ledger.size).toBe(1);
    expect(ledger.has('young')).toBe(true);

    clock.advance(5_000);
    expect(ledger.purgeExpired()).toBe(1);
    expect(ledger.snapshot()).toMatchObject({ size: 0, purgedTotal: 3 });
  });

  it('evicts the oldest nonces at maxEntries, counts them and emits one WARNING per truncation', () => {
    const clock = new FakeClock();
    const sink = new MemoryTelemetrySink();
    const ledger = new NonceLedger({ clock, maxEntries: 3, sink, source: 'kasmina' });
    for (const nonce of ['a', 'b', 'c']) ledger.register(nonce);
    expect(sink.packets).toHaveLength(0);

    expect(ledger.register('d')).toBe(true);
    expect(ledger.size).toBe(3);
    expect(ledger.has('a')).toBe(false);
    expect(['b', 'c', 'd'].every((n) => ledger.has(n))).toBe(true);
    expect(ledger.snapshot()).toMatchObject({ size: 3, evictionsTotal: 1, purgedTotal: 0 });

    const events = sink.events('nonce_ledger_truncated');
    expect(events).toHaveLength(1);
    expect(events[0]?.level).toBe(TelemetryLevel.WARNING);
    expect(events[0]?.attributes).toMatchObject({ size: '3', evicted: '1', max_entries: '3' });
    const packet = sink.packets[0];
    expect(packet?.sourceSubsystem).toBe('kasmina');
    expect(packet?.priority).toBe(MessagePriority.NORMAL);
    expect(packet?.metrics.find((m) => m.name === 'kasmina.nonce_ledger.evictions_total')?.value).toBe(1);

    ledger.register('e');
    expect(ledger.snapshot().evictionsTotal).toBe(2);
    expect(sink.events('nonce_ledger_truncated')).toHaveLength(2);
    // An evicted nonce is forgotten: registering it again succeeds (and evicts 'c').
    expect(ledger.register('a')).toBe(true);
    expect(ledger.has('c')).toBe(false);
  });

  it('counts evictions without a sink', () => {
    const ledger = new NonceLedger({ clock: new FakeClock(), maxEntries: 1 });
    ledger.register('a');
    ledger.register('b');
    expect(ledger.snapshot()).toMatchObject({ size: 1, evictionsTotal: 1 });
  });

  it('purges expired nonces before deciding to evict', () => {
    const clock = new FakeClock();
    const sink = new MemoryTelemetrySink();
    const ledger = new NonceLedger({ clock, maxEntries: 2, ttlSeconds: 1, sink });
    ledger.register('a');
    ledger.register('b');
    clock.advance(1_000);
    ledger.register('c');
    expect(ledger.snapshot()).toMatchObject({ size: 1, evictionsTotal: 0, purgedTotal: 2 });
    expect(sink.packets).toHaveLength(0);
  });

  it('clears every nonce on an administrative reset and keeps the totals', () => {
    const clock = new FakeClock();
    const ledger = new NonceLedger({ clock, maxEntries: 2 });
    for (const nonce of ['a', 'b', 'c']) ledger.register(nonce);
    expect(ledger.clear()).toBe(2);
    expect(ledger.has('b')).toBe(false);
    expect(ledger.register('b')).toBe(true);
    expect(ledger.snapshot()).toMatchObject({ size: 1, evictionsTotal: 1 });
  });

  it('stays bounded over many registrations, accounting for every nonce it drops', () => {
    const clock = new FakeClock();
    const ledger = new NonceLedger({ clock, ttlSeconds: 1, maxEntries: 500 });
    let refused = 0;
    let maxSize = 0;
    for (let i = 0; i < 50_000; i += 1) {
      if (!ledger.register(`n-${i}`)) refused += 1;
      maxSize = Math.max(maxSize, ledger.size);
      clock.advance(i % 2); // 2 registrations per ms: 2,000 live nonces > the cap of 500
    }
    const { size, evictionsTotal, purgedTotal } = ledger.snapshot();
    expect(refused).toBe(0);
    expect(maxSize).toBe(500);
    expect(evictionsTotal).toBeGreaterThan(0);
    expect(size + evictionsTotal + purgedTotal).toBe(50_000);
  });

  it('reports the reference gauges under its source', () => {
    const ledger = new NonceLedger({ clock: new FakeClock(), source: 'tamiyo' });
    ledger.register('a');
    expect(ledger.metrics()).toEqual([
      { name: 'tamiyo.nonce_ledger.size', value: 1, unit: 'count' },
      { name: 'tamiyo.nonce_ledger.evictions_total', value: 0, unit: 'count' },
      { name: 'tamiyo.nonce_ledger.ttl_seconds', value: 300, unit: 's' },
    ]);
  });

  it.each([
    [{ ttlSeconds: 0 }, 'ttlSeconds'],
    [{ ttlSeconds: Number.NaN }, 'ttlSeconds'],
    [{ maxEntries: 0 }, 'maxEntries'],
    [{ maxEntries: 1.5 }, 'maxEntries'],
    [{ source: '' }, 'source'],
  ])('refuses invalid options %j, naming the field', (options, field) => {
    let caught: unknown;
    try {
      resolveNonceLedgerOptions(options);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((caught as { details: Record<string, unknown> }).details['field']).toBe(field);
  });

  describe('with a store', () => {
    /** A store whose writes fail after `okWrites` successful ones (unit-test fake). */
    function failingStore(okWrites: number): NonceStore & { closed: boolean } {
      let writes = 0;
      return {
        location: 'test-store',
        closed: false,
        load: () => Promise.resolve({ records: [{ nonce: 'stored', expiresAtMs: Date.UTC(2026, 0, 1) + 5_000 }], truncatedTailBytes: 0 }),
        record: () => (writes++ < okWrites ? Promise.resolve(true) : Promise.reject(new Error('disk full'))),
        clear: () => Promise.resolve(),
        close() {
          this.closed = true;
          return Promise.resolve();
        },
      };
    }

    it('starts from the stored nonces, never for longer than its TTL', async () => {
      const clock = new FakeClock();
      const ledger = await NonceLedger.open({ store: failingStore(1), clock, ttlSeconds: 2 });
      expect(ledger.has('stored')).toBe(true);
      clock.advance(2_000);
      expect(ledger.has('stored')).toBe(false);
    });

    it('reports a failed write CRITICAL and refuses further nonces with NONCE_STORE_FAILED', async () => {
      const sink = new MemoryTelemetrySink();
      const store = failingStore(1);
      const ledger = await NonceLedger.open({ store, clock: new FakeClock(), sink });
      expect(ledger.register('a')).toBe(true);
      expect(ledger.register('b')).toBe(true);
      await expect(ledger.flush()).rejects.toMatchObject({ code: ErrorCode.NONCE_STORE_FAILED });
      expect(sink.packets.flatMap((p) => p.events)).toEqual([
        expect.objectContaining({ description: 'nonce_store_failed', level: TelemetryLevel.CRITICAL }),
      ]);
      expect(() => ledger.register('c')).toThrow(expect.objectContaining({ code: ErrorCode.NONCE_STORE_FAILED }) as Error);
      await expect(ledger.close()).rejects.toMatchObject({ code: ErrorCode.NONCE_STORE_FAILED });
      expect(store.closed).toBe(true);
    });
  });
});
