import { describe, expect, it } from 'vitest';
import { ErrorCode, type EsperError } from '../../src/core/errors.js';
import { parseNumericFlag } from '../../src/core/numeric-text.js';
import { thrownBy } from '../support/thrown.js';

const flagError = (fn: () => unknown): EsperError => thrownBy(fn, ErrorCode.FLAG_INVALID);

describe('parseNumericFlag', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    ['-3', -3],
    ['007', 7],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
  ])('reads integer %j', (text, value) => {
    expect(parseNumericFlag('seed', text, { integer: true })).toBe(value);
  });

  // What `Number()` took before: '' → 0, '0x3' → 3, '1e1' → 10.
  it.each(['', ' 1', '1 ', '0x3', '0b1', '0o7', '1e1', '1.0', '1.5', '+1', '1_000', 'Infinity', 'NaN', '9007199254740993', '٣'])(
    'refuses %j as an integer flag, naming the flag',
    (text) => {
      const error = flagError(() => parseNumericFlag('seed', text, { integer: true, min: 0 }));
      expect(error.details).toMatchObject({ flag: '--seed', value: JSON.stringify(text), expected: 'an integer ≥ 0' });
      expect(error.message).toBe(`--seed must be an integer ≥ 0, got ${JSON.stringify(text)}`);
    },
  );

  it.each([
    ['0.002', 0.002],
    ['.5', 0.5],
    ['2.', 2],
    ['1e-3', 0.001],
    ['3', 3],
  ])('reads decimal %j', (text, value) => {
    expect(parseNumericFlag('--lr', text, { greaterThan: 0 })).toBe(value);
  });

  it.each(['', '0x3', '1e400', 'Infinity', '-', '.', '1..2', '0'])('refuses %j as a decimal > 0', (text) => {
    expect(flagError(() => parseNumericFlag('--lr', text, { greaterThan: 0 })).details['flag']).toBe('--lr');
  });

  it('checks the range', () => {
    expect(parseNumericFlag('epochs', '1', { integer: true, min: 1, max: 10 })).toBe(1);
    expect(flagError(() => parseNumericFlag('epochs', '-1', { integer: true, min: 1 })).details['expected']).toBe('an integer ≥ 1');
    expect(flagError(() => parseNumericFlag('epochs', '11', { integer: true, min: 1, max: 10 })).details['expected']).toBe(
      'an integer in [1, 10]',
    );
  });
});
