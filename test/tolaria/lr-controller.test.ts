import { describe, expect, it } from 'vitest';
import { isEsperError, ErrorCode } from '../../src/core/index.js';
import { LrController, LR_SCHEDULE_DEFAULTS } from '../../src/tolaria/lr-controller.js';

describe('LrController', () => {
  it('keeps the base rate under the constant policy and reports itself disabled', () => {
    const lr = new LrController(0.01);
    expect(lr.enabled).toBe(false);
    expect([0, 1, 500, 10_000].map((s) => lr.rate(s, Math.floor(s / 100)))).toEqual([0.01, 0.01, 0.01, 0.01]);
  });

  it('anneals cosine from base to minLr over totalSteps and then stays at minLr', () => {
    const lr = new LrController(0.1, { policy: 'cosine', totalSteps: 100, minLr: 0.001 });
    expect(lr.enabled).toBe(true);
    expect(lr.rate(0, 0)).toBeCloseTo(0.1, 12);
    expect(lr.rate(50, 0)).toBeCloseTo(0.001 + (0.1 - 0.001) * 0.5, 12);
    expect(lr.rate(100, 0)).toBeCloseTo(0.001, 12);
    expect(lr.rate(250, 0)).toBeCloseTo(0.001, 12);
    const rates = Array.from({ length: 101 }, (_, s) => lr.rate(s, 0));
    expect(rates.every((r, i) => i === 0 || r <= (rates[i - 1] as number))).toBe(true);
  });

  it('decays by gamma every stepSizeEpochs under the step policy (epoch clock)', () => {
    const lr = new LrController(0.08, { policy: 'step', stepSizeEpochs: 2, gamma: 0.5 });
    expect([0, 1, 2, 3, 4, 6].map((e) => lr.rate(999, e))).toEqual([0.08, 0.08, 0.04, 0.04, 0.02, 0.01]);
  });

  it('warms up linearly from the start factor, governing the very first step, then runs the schedule from zero', () => {
    const lr = new LrController(1, { policy: 'cosine', warmupSteps: 4, warmupStartFactor: 0.1, totalSteps: 10 });
    expect([0, 1, 2, 3].map((s) => lr.rate(s, 0))).toEqual([0.25, 0.5, 0.75, 1]);
    expect(lr.rate(4, 0)).toBe(1); // cosine at t = 0
    expect(lr.rate(9, 0)).toBeCloseTo(0.5, 12); // cosine at t = 5 of 10
    const slow = new LrController(1, { warmupSteps: 100, warmupStartFactor: 0.1 });
    expect(slow.rate(0, 0)).toBe(0.1); // floor, since 1/100 < 0.1
    expect(slow.enabled).toBe(true);
  });

  it('matches the reference test: with warm-up 2 and cosine t_max 10, the rate rises then falls', () => {
    const lr = new LrController(0.1, { policy: 'cosine', warmupSteps: 2, totalSteps: 10 });
    const [r0, r1, r2, r3] = [0, 1, 2, 3].map((s) => lr.rate(s, 0)) as [number, number, number, number];
    expect(r1).toBeGreaterThanOrEqual(r0);
    expect(r3).toBeLessThanOrEqual(r2);
  });

  it.each([
    [{ policy: 'linear' as never }, 'lrSchedule.policy'],
    [{ warmupSteps: -1 }, 'lrSchedule.warmupSteps'],
    [{ warmupStartFactor: 0 }, 'lrSchedule.warmupStartFactor'],
    [{ totalSteps: 0 }, 'lrSchedule.totalSteps'],
    [{ gamma: 1.5 }, 'lrSchedule.gamma'],
    [{ stepSizeEpochs: 0.5 }, 'lrSchedule.stepSizeEpochs'],
    [{ minLr: 1 }, 'lrSchedule.minLr'],
  ])('rejects %j naming the field', (options, field) => {
    let caught: unknown;
    try {
      new LrController(0.1, options);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((caught as { details: { field: string } }).details.field).toBe(field);
  });

  it('has the reference defaults', () => {
    expect(LR_SCHEDULE_DEFAULTS).toMatchObject({ policy: 'constant', warmupSteps: 0, totalSteps: 10_000, stepSizeEpochs: 10, gamma: 0.5 });
  });
});
