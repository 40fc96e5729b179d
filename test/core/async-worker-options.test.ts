import { describe, expect, it } from 'vitest';
import { ASYNC_WORKER_DEFAULTS, resolveAsyncWorkerOptions } from '../../src/core/async-worker-options.js';
import { AsyncWorker } from '../../src/core/async-worker.js';
import { ErrorCode } from '../../src/core/errors.js';
import { loadSettings } from '../../src/core/settings.js';
import { thrownBy } from '../support/thrown.js';

function expectInvalid(fn: () => unknown, field: string): void {
  const error = thrownBy(fn, ErrorCode.INVALID_ARGUMENT);
  expect(error.details.field).toBe(field);
  expect(error.message).toContain(field);
}

describe('resolveAsyncWorkerOptions', () => {
  it('applies the documented defaults', () => {
    expect(resolveAsyncWorkerOptions({})).toEqual({
      name: 'esper-async-worker',
      maxConcurrency: 4,
      maxQueueDepth: 1024,
      defaultDeadlineMs: undefined,
      shutdownTimeoutMs: 5000,
    });
    expect(ASYNC_WORKER_DEFAULTS.maxConcurrency).toBe(4);
    expect(Object.isFrozen(resolveAsyncWorkerOptions({}))).toBe(true);
  });

  it('takes the async-worker section of the settings as its options', () => {
    const settings = loadSettings({
      env: { ESPER_ASYNC_WORKER_MAX_CONCURRENCY: '7', ESPER_ASYNC_WORKER_DEFAULT_DEADLINE_MS: '250' },
    });
    const resolved = resolveAsyncWorkerOptions({ ...settings.core.asyncWorker, maxQueueDepth: 9 });
    expect(resolved.maxConcurrency).toBe(7);
    expect(resolved.maxQueueDepth).toBe(9);
    expect(resolved.defaultDeadlineMs).toBe(250);
    expect(resolved.shutdownTimeoutMs).toBe(5000);
  });

  it.each([
    [{ maxConcurrency: 0 }, 'maxConcurrency'],
    [{ maxConcurrency: 1.5 }, 'maxConcurrency'],
    [{ maxConcurrency: Number.NaN }, 'maxConcurrency'],
    [{ maxQueueDepth: -1 }, 'maxQueueDepth'],
    [{ maxQueueDepth: 2.5 }, 'maxQueueDepth'],
    [{ defaultDeadlineMs: 0 }, 'defaultDeadlineMs'],
    [{ defaultDeadlineMs: -5 }, 'defaultDeadlineMs'],
    [{ defaultDeadlineMs: 2 ** 31 }, 'defaultDeadlineMs'],
    [{ shutdownTimeoutMs: -1 }, 'shutdownTimeoutMs'],
    [{ shutdownTimeoutMs: Infinity }, 'shutdownTimeoutMs'],
    [{ name: '' }, 'name'],
  ] as const)('rejects %o with INVALID_ARGUMENT naming %s', (options, field) => {
    expectInvalid(() => resolveAsyncWorkerOptions(options), field);
    expectInvalid(() => new AsyncWorker(options), field);
  });

  it('accepts Infinity as "no default deadline"', () => {
    expect(resolveAsyncWorkerOptions({ defaultDeadlineMs: Infinity }).defaultDeadlineMs).toBeUndefined();
  });
});
