import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/clock.js';
import { MemoryStreamStore } from '../../src/oona/memory-stream-store.js';
import { body, bodyOf, describeStreamStoreConformance } from './stream-store.conformance.js';

describeStreamStoreConformance('MemoryStreamStore', { makeStore: () => new MemoryStreamStore() });

describe('MemoryStreamStore with a fake clock', () => {
  it('stamps ids with the wall clock and bumps the sequence within one millisecond', async () => {
    const clock = new FakeClock({ wallMs: 1_000 });
    const store = new MemoryStreamStore({ clock });
    expect(await store.add('s', body('a'))).toBe('1000-0');
    expect(await store.add('s', body('b'))).toBe('1000-1');
    clock.advance(5);
    expect(await store.add('s', body('c'))).toBe('1005-0');
    expect(await store.add('other', body('d'))).toBe('1005-0');
    await store.close();
  });

  it('keeps the last ms and bumps the sequence when the wall clock goes backwards', async () => {
    const clock = new FakeClock({ wallMs: 5_000 });
    const store = new MemoryStreamStore({ clock });
    expect(await store.add('s', body('a'))).toBe('5000-0');
    clock.setWallMs(4_000);
    expect(await store.add('s', body('b'))).toBe('5000-1');
    expect(await store.add('s', body('c'))).toBe('5000-2');
    clock.setWallMs(5_001);
    expect(await store.add('s', body('d'))).toBe('5001-0');
    await store.close();
  });

  it('measures idle time on the monotonic clock', async () => {
    const clock = new FakeClock();
    const store = new MemoryStreamStore({ clock });
    await store.ensureGroup('s', 'g', '0');
    await store.add('s', body('work'));
    await store.readGroup('g', 'dead', ['s'], { count: 1, blockMs: 0 });
    clock.advance(999);
    expect(await store.autoClaim('s', 'g', 'rescuer', 1_000, 10)).toEqual([]);
    clock.advance(1);
    const claimed = await store.autoClaim('s', 'g', 'rescuer', 1_000, 10);
    expect(claimed.map((entry) => [bodyOf(entry), entry.deliveryCount])).toEqual([['work', 2]]);
    clock.advance(999);
    expect(await store.autoClaim('s', 'g', 'other', 1_000, 10)).toEqual([]);
    await store.close();
  });
});
