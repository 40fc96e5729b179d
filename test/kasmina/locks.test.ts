import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/index.js';
import { KeyedLocks } from '../../src/kasmina/locks.js';

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Lets queued microtasks and promise continuations run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
}

describe('KeyedLocks', () => {
  it('runs one holder per key at a time', async () => {
    const locks = new KeyedLocks();
    const first = gate();
    const trace: string[] = [];
    const a = locks.runExclusive('bp-1', async () => {
      trace.push('a:start');
      await first.promise;
      trace.push('a:end');
      return 'a';
    });
    const b = locks.runExclusive('bp-1', () => {
      trace.push('b:start');
      return 'b';
    });
    await settle();
    expect(trace).toEqual(['a:start']);
    expect(locks.isLocked('bp-1')).toBe(true);
    expect(locks.waiting('bp-1')).toBe(1);
    first.open();
    expect((await a).value).toBe('a');
    expect((await b).value).toBe('b');
    expect(trace).toEqual(['a:start', 'a:end', 'b:start']);
  });

  it('lets different keys run in parallel', async () => {
    const locks = new KeyedLocks();
    const hold = gate();
    const trace: string[] = [];
    const a = locks.runExclusive('bp-1', async () => {
      trace.push('a:start');
      await hold.promise;
    });
    const b = locks.runExclusive('bp-2', () => {
      trace.push('b:done');
    });
    await b;
    // bp-2 finished while bp-1 is still held.
    expect(trace).toEqual(['a:start', 'b:done']);
    expect(locks.isLocked('bp-1')).toBe(true);
    hold.open();
    await a;
  });

  it('serves waiters in arrival order', async () => {
    const locks = new KeyedLocks();
    const hold = gate();
    const order: number[] = [];
    const holder = locks.runExclusive('k', () => hold.promise);
    const waiters = [1, 2, 3, 4, 5].map((n) => locks.runExclusive('k', () => void order.push(n)));
    await settle();
    expect(locks.waiting('k')).toBe(5);
    hold.open();
    await Promise.all([holder, ...waiters]);
    expect(order).toEqual([1, 2, 3, 4, 5]);
  });

  it('releases the lock when the holder throws, and the error propagates', async () => {
    const locks = new KeyedLocks();
    const failing = locks.runExclusive('k', () => {
      throw new Error('boom');
    });
    const next = locks.runExclusive('k', () => 'after');
    await expect(failing).rejects.toThrow('boom');
    expect((await next).value).toBe('after');
    expect(locks.size).toBe(0);
  });

  it('keeps no per-key state once every holder has released', async () => {
    const locks = new KeyedLocks();
    await Promise.all(Array.from({ length: 20 }, (_, i) => locks.runExclusive(`bp-${i % 4}`, async () => i)));
    expect(locks.size).toBe(0);
    expect(locks.isLocked('bp-0')).toBe(false);
    expect(locks.waiting('bp-0')).toBe(0);
  });

  it('reports the time spent waiting on the injected clock (0 when the lock was free)', async () => {
    const clock = new FakeClock();
    const locks = new KeyedLocks({ clock });
    const hold = gate();
    const first = locks.runExclusive('k', () => hold.promise);
    const second = locks.runExclusive('k', () => 'x');
    await settle();
    clock.advance(150);
    hold.open();
    expect((await first).waitedMs).toBe(0);
    expect(await second).toEqual({ value: 'x', waitedMs: 150 });
  });

  it('gives up a wait when its signal aborts, without disturbing the queue', async () => {
    const locks = new KeyedLocks();
    const hold = gate();
    const holder = locks.runExclusive('k', () => hold.promise);
    const controller = new AbortController();
    const abandoned = locks.runExclusive('k', () => 'never', { signal: controller.signal });
    const kept = locks.runExclusive('k', () => 'kept');
    await settle();
    controller.abort(new Error('caller gave up'));
    await expect(abandoned).rejects.toThrow('caller gave up');
    expect(locks.waiting('k')).toBe(1);
    hold.open();
    await holder;
    expect((await kept).value).toBe('kept');
    expect(locks.size).toBe(0);
    // An already-aborted signal never queues.
    await expect(locks.runExclusive('k', () => 1, { signal: AbortSignal.abort(new Error('pre-aborted')) })).rejects.toThrow('pre-aborted');
    expect(locks.size).toBe(0);
  });
});
