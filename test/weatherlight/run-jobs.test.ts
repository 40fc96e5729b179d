/**
 * `runJobs`, the pool `esper learn` plays episodes and evaluations in: results in job order
 * whatever order the jobs finish in, never more than `concurrency` at once, and a failure
 * thrown only once every job has settled (none is left running behind it).
 */
import { describe, expect, it } from 'vitest';
import { runJobs } from '../../src/weatherlight/index.js';

/** A job that finishes when `release` is called, recording how many ran at once. */
function gate() {
  let open!: () => void;
  const released = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { released, release: () => open() };
}

describe('runJobs', () => {
  it('returns results in job order, at most `concurrency` jobs running at once', async () => {
    let running = 0;
    let most = 0;
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    const jobs = gates.map((g, i) => async () => {
      running += 1;
      most = Math.max(most, running);
      started.push(i);
      await g.released;
      running -= 1;
      return i * 10;
    });
    const result = runJobs('test-pool', jobs, 2);
    // Release in reverse order of start, as they come: later jobs finish first.
    for (let released = 0; released < gates.length;) {
      await new Promise((resolve) => setImmediate(resolve));
      const waiting = started.filter((i) => i >= released);
      for (const i of waiting.reverse()) gates[i]?.release();
      released = started.length;
    }
    expect(await result).toEqual([0, 10, 20, 30, 40]);
    expect(most).toBe(2);
  });

  it('throws the first failure only after every other job has settled', async () => {
    const slow = gate();
    let slowDone = false;
    const jobs = [
      async () => {
        throw new Error('job 0 broke');
      },
      async () => {
        await slow.released;
        slowDone = true;
        return 1;
      },
    ];
    let settled = false;
    const outcome = runJobs('test-pool', jobs, 2).catch((error: unknown) => {
      settled = true;
      return error;
    });
    // Job 0 has long failed; the pool still waits for job 1.
    for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    slow.release();
    const error = await outcome;
    expect((error as Error).message).toBe('job 0 broke');
    expect(slowDone).toBe(true);
  });
});
