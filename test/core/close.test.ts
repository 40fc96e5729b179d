import { describe, expect, it } from 'vitest';
import { closeOnce, runCleanup } from '../../src/core/close.js';
import { ErrorCode, EsperError } from '../../src/core/errors.js';

describe('runCleanup', () => {
  it('runs every step in order, awaiting each', async () => {
    const order: string[] = [];
    await runCleanup('thing', [
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        order.push('a');
      },
      () => order.push('b'),
    ]);
    expect(order).toEqual(['a', 'b']);
  });

  it('skips false, null and undefined steps (conditional steps)', async () => {
    const order: string[] = [];
    const owns = false as boolean;
    await runCleanup('thing', [owns && (() => order.push('store')), null, undefined, () => order.push('last')]);
    expect(order).toEqual(['last']);
  });

  it('runs the later steps when one fails, then rejects with that very error', async () => {
    const order: string[] = [];
    const typed = new EsperError(ErrorCode.RECORD_LOG_IO_FAILED, 'disk gone');
    const outcome = runCleanup('log', [
      () => order.push('first'),
      () => {
        throw typed;
      },
      () => order.push('third'),
    ]);
    await expect(outcome).rejects.toBe(typed);
    expect(order).toEqual(['first', 'third']);
  });

  it('rejects with an AggregateError of every failure, in step order, when several fail', async () => {
    const first = new Error('one');
    const second = new Error('two');
    const error = await runCleanup('bus', [() => Promise.reject(first), () => 'ok', () => Promise.reject(second)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AggregateError);
    expect((error as AggregateError).errors).toEqual([first, second]);
    expect((error as AggregateError).message).toBe('closing bus failed in 2 steps');
  });
});

describe('closeOnce', () => {
  it('runs the close once and hands every call the first call’s promise', async () => {
    let runs = 0;
    const close = closeOnce(async (reason: string) => {
      runs += 1;
      return reason;
    });
    const first = close('first');
    expect(close('second')).toBe(first);
    expect(await first).toBe('first');
    expect(await close('third')).toBe('first');
    expect(runs).toBe(1);
  });

  it('turns a synchronous throw into the shared rejection, and does not run again', async () => {
    let runs = 0;
    const close = closeOnce((): Promise<void> => {
      runs += 1;
      throw new Error('bad');
    });
    const first = close();
    await expect(first).rejects.toThrow('bad');
    expect(close()).toBe(first);
    expect(runs).toBe(1);
  });

  it('gives `await using` the same close through Symbol.asyncDispose', async () => {
    let closed = 0;
    class Resource implements AsyncDisposable {
      readonly #close = closeOnce(async () => {
        closed += 1;
      });
      close(): Promise<void> {
        return this.#close();
      }
      [Symbol.asyncDispose](): Promise<void> {
        return this.#close();
      }
    }
    const outer = new Resource();
    {
      await using resource = outer;
      expect(resource).toBe(outer);
    }
    await outer.close();
    expect(closed).toBe(1);
  });
});
