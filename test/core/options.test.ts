import { describe, expect, it } from 'vitest';
import { ErrorCode, type EsperError } from '../../src/core/errors.js';
import { invalidOption, MAX_TIMER_MS, optionChecks, rangeText, showValue } from '../../src/core/options.js';
import { thrownBy } from '../support/thrown.js';

const check = optionChecks('WidgetOptions');
const failure = (fn: () => unknown): EsperError => thrownBy(fn, ErrorCode.INVALID_ARGUMENT);

describe('invalidOption', () => {
  it('names the owner, the field and the value in the message and the details', () => {
    const error = invalidOption('WidgetOptions', 'size', 'an integer ≥ 1', 0);
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.message).toBe('WidgetOptions option size must be an integer ≥ 1, got 0');
    expect(error.details).toEqual({ owner: 'WidgetOptions', field: 'size', value: '0' });
  });
});

describe('showValue', () => {
  it.each([
    ['', '""'],
    ['x'.repeat(200), `"${'x'.repeat(78)}…`],
    [Number.NaN, 'NaN'],
    [-Infinity, '-Infinity'],
    [10n, '10n'],
    [null, 'null'],
    [undefined, 'undefined'],
    [[1], 'an array'],
    [{ secret: 'hunter2' }, 'an object'],
    [() => 1, 'a function'],
  ])('shows %o as %s', (value, shown) => {
    expect(showValue(value)).toBe(shown);
  });
});

describe('rangeText', () => {
  it.each([
    [{}, 'integer'],
    [{ min: 1 }, 'integer ≥ 1'],
    [{ max: 9 }, 'integer ≤ 9'],
    [{ min: 0, max: 65_535 }, 'integer in [0, 65535]'],
    [{ greaterThan: 0 }, 'integer > 0'],
    [{ greaterThan: 0, max: 1 }, 'integer > 0 and ≤ 1'],
  ])('describes %o as %s', (range, text) => {
    expect(rangeText('integer', range)).toBe(text);
  });
});

describe('optionChecks', () => {
  it('returns valid values unchanged', () => {
    expect(check.integer('n', 3, { min: 1, max: 3 })).toBe(3);
    expect(check.number('ratio', 0.5, { min: 0, max: 1 })).toBe(0.5);
    expect(check.positive('budgetMs', 0.25)).toBe(0.25);
    expect(check.nonNegative('delayMs', 0)).toBe(0);
    expect(check.nonEmptyString('name', 'w')).toBe('w');
    expect(check.oneOf('mode', 'b', ['a', 'b'] as const)).toBe('b');
    const fn = (): number => 1;
    expect(check.func('observer', fn)).toBe(fn);
  });

  it.each([
    ['integer', () => check.integer('n', 1.5, { min: 1 }), 'an integer ≥ 1'],
    ['unsafe integer', () => check.integer('n', 2 ** 53, { min: 1 }), 'an integer ≥ 1'],
    ['integer above max', () => check.integer('n', 4, { min: 1, max: 3 }), 'an integer in [1, 3]'],
    ['integer given as text', () => check.integer('n', '3'), 'an integer'],
    ['NaN', () => check.number('ratio', Number.NaN, { min: 0, max: 1 }), 'a finite number in [0, 1]'],
    ['Infinity', () => check.positive('budgetMs', Infinity), 'a finite number > 0'],
    ['zero', () => check.positive('budgetMs', 0), 'a finite number > 0'],
    ['negative', () => check.nonNegative('delayMs', -1), 'a finite number ≥ 0'],
    [
      'timer overflow',
      () => check.number('delayMs', MAX_TIMER_MS + 1, { min: 0, max: MAX_TIMER_MS }),
      `a finite number in [0, ${MAX_TIMER_MS}]`,
    ],
    ['empty string', () => check.nonEmptyString('name', ''), 'a non-empty string'],
    ['non-string', () => check.nonEmptyString('name', 7), 'a non-empty string'],
    ['one-of', () => check.oneOf('mode', 'c', ['a', 'b']), 'one of "a", "b"'],
    ['function', () => check.func('observer', {}), 'a function'],
    ['custom', () => check.fail('store', 'a StreamStore', 3), 'a StreamStore'],
  ])('rejects a bad %s with INVALID_ARGUMENT naming owner, field and expectation', (_label, fn, expected) => {
    const error = failure(fn);
    expect(error.details['owner']).toBe('WidgetOptions');
    expect(error.message).toMatch(new RegExp(`^WidgetOptions option \\w+ must be ${expected.replace(/[[\]()+.]/g, '\\$&')}, got `));
  });

  it('keeps working when a check is taken off its object', () => {
    const { positive, integer } = check;
    expect(positive('x', 1)).toBe(1);
    expect(failure(() => integer('y', -1, { min: 0 })).details['field']).toBe('y');
  });
});
