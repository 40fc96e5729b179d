import { describe, expect, it } from 'vitest';
import { Backoff, delay, raceAbort } from '../../src/oona/waits.js';

describe('delay', () => {
  it('resolves true when the time elapsed', async () => {
    expect(await delay(1)).toBe(true);
  });

  it('resolves false at once when a signal aborts, before or during the wait', async () => {
    const before = new AbortController();
    before.abort();
    expect(await delay(60_000, [before.signal])).toBe(false);
    const during = new AbortController();
    const waiting = delay(60_000, [undefined, during.signal]);
    during.abort();
    expect(await waiting).toBe(false);
  });
});

describe('raceAbort', () => {
  it('settles with the promise when no signal aborts', async () => {
    const controller = new AbortController();
    await expect(raceAbort(Promise.resolve(7), [controller.signal])).resolves.toBe(7);
    await expect(raceAbort(Promise.reject(new Error('boom')), [controller.signal])).rejects.toThrow('boom');
  });

  it('rejects with the abort reason when a signal aborts first', async () => {
    const controller = new AbortController();
    const never = new Promise<number>(() => undefined);
    const racing = raceAbort(never, [controller.signal]);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(racing).rejects.toBe(reason);
  });
});

describe('Backoff', () => {
  it('grows exponentially with jitter and stays under its cap', () => {
    const backoff = new Backoff(10, 80);
    const waits = Array.from({ length: 8 }, () => backoff.next());
    expect(waits[0]).toBeGreaterThanOrEqual(5);
    expect(waits[0]).toBeLessThanOrEqual(10);
    expect(waits[3]).toBeGreaterThanOrEqual(40);
    for (const ms of waits) expect(ms).toBeLessThanOrEqual(80);
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(10);
  });

  it('rejects an initial wait above its cap', () => {
    expect(() => new Backoff(100, 10)).toThrow(RangeError);
  });
});
