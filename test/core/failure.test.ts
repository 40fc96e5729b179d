import { describe, expect, it } from 'vitest';
import { ErrorCode, EsperError } from '../../src/core/errors.js';
import { describeError, errorLabel, errorMessage, reasonOf } from '../../src/core/failure.js';

const typed = new EsperError(ErrorCode.WORKER_TIMEOUT, 'task t exceeded 5 ms');

describe('failure descriptions', () => {
  it.each([
    [typed, 'task t exceeded 5 ms', `${ErrorCode.WORKER_TIMEOUT}: task t exceeded 5 ms`, ErrorCode.WORKER_TIMEOUT],
    [new TypeError('x is not a function'), 'x is not a function', 'x is not a function', 'TypeError'],
    ['a string', 'a string', 'a string', 'string'],
    [undefined, 'undefined', 'undefined', 'undefined'],
  ])('describe %o', (error, message, description, label) => {
    expect(errorMessage(error)).toBe(message);
    expect(describeError(error)).toBe(description);
    expect(errorLabel(error)).toBe(label);
  });
});

describe('reasonOf', () => {
  const byCode = { [ErrorCode.WORKER_TIMEOUT]: 'timeout', [ErrorCode.WORKER_CANCELLED]: 'cancelled' } as const;

  it('picks the reason of an Esper error by its code', () => {
    expect(reasonOf(typed, byCode, () => 'other')).toBe('timeout');
  });

  it('falls back for other codes and for anything that is not an Esper error', () => {
    expect(reasonOf(new EsperError(ErrorCode.BREAKER_OPEN, 'open'), byCode, errorLabel)).toBe(ErrorCode.BREAKER_OPEN);
    expect(reasonOf(new RangeError('r'), byCode, errorLabel)).toBe('RangeError');
    expect(reasonOf({ code: ErrorCode.WORKER_TIMEOUT }, byCode, () => 'not typed')).toBe('not typed');
  });

  it('never reads inherited keys as codes', () => {
    const forged = new EsperError('toString' as ErrorCode, 'odd');
    expect(reasonOf(forged, byCode, () => 'fallback')).toBe('fallback');
  });
});
