import { describe, expect, it } from 'vitest';
import { ErrorCode, EsperError, FakeClock } from '../../src/core/index.js';
import { backoff, failureReason, ForgeGovernor } from '../../src/tezzeret/forge-governor.js';

function governor(opened: string[] = [], overrides: Partial<ConstructorParameters<typeof ForgeGovernor>[0]> = {}) {
  return new ForgeGovernor({
    maxRetries: 3,
    backoffBaseMs: 100,
    backoffMaxMs: 250,
    breakerFailureThreshold: 10,
    breakerOpenTimeoutMs: 1_000,
    clock: new FakeClock(),
    onBreakerOpen: (reason) => opened.push(reason),
    ...overrides,
  });
}

const timeout = new EsperError(ErrorCode.TEZZERET_COMPILE_TIMEOUT, 'late');

describe('ForgeGovernor', () => {
  it('backs off exponentially up to the cap, and gives up after maxRetries', () => {
    const g = governor();
    const transient = new Error('flaky');
    expect([1, 2, 3, 4].map((attempt) => g.failed(transient, attempt))).toEqual([100, 200, 250, undefined]);
    expect(g.consecutiveFailures).toBe(4);
  });

  it('never retries a terminal error', () => {
    expect(governor().failed(new EsperError(ErrorCode.KARN_PARAMETER_INVALID, 'bad knob'), 1)).toBeUndefined();
  });

  it('turns conservative after a timeout and back after a success', () => {
    const g = governor();
    expect(g.strategy).toBe('standard');
    g.failed(timeout, 1);
    expect(g.strategy).toBe('conservative');
    g.succeeded();
    expect(g).toMatchObject({ strategy: 'standard', consecutiveFailures: 0 });
  });

  it('opens the breaker at the threshold: conservative, refusing, reported once', () => {
    const opened: string[] = [];
    const g = governor(opened, { breakerFailureThreshold: 2 });
    g.failed(new Error('down'), 1);
    expect(g.allow()).toBe(true);
    g.failed(new Error('down'), 2);
    expect(opened).toEqual(['Error']);
    expect(g).toMatchObject({ breakerOpen: true, conservativeMode: true });
    expect(g.allow()).toBe(false);
  });

  it('names a failure by timeout, error code or class', () => {
    expect([timeout, new EsperError(ErrorCode.KARN_SITE_UNSUPPORTED, 'x'), new RangeError('x'), 'text'].map(failureReason)).toEqual([
      'timeout',
      ErrorCode.KARN_SITE_UNSUPPORTED,
      'RangeError',
      'string',
    ]);
  });

  it('backoff waits and stops at once on abort', async () => {
    await backoff(1, undefined);
    const controller = new AbortController();
    const waiting = backoff(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});
