/**
 * The one grammar of numbers written as text, shared by settings from the environment and
 * command-line flags: decimal only, so `''`, `' 1'`, `0x3`, `1_000`, `Infinity` are refused
 * (`Number()` would take them), and an integer has no fraction or exponent (`1e1`).
 */
import { ErrorCode, EsperError } from './errors.js';
import { inRange, rangeText, showValue, type NumericRange } from './options.js';

/** A decimal integer: optional `-`, digits. */
export const INTEGER_TEXT = /^-?\d+$/;
/** A decimal number: optional `-`, digits with an optional fraction, optional exponent. */
export const DECIMAL_TEXT = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Options of {@link parseNumericFlag}. */
export interface NumericFlagOptions extends NumericRange {
  /**
   * Whether only a (safe) integer is accepted; otherwise any finite decimal.
   * @default false
   */
  readonly integer?: boolean;
}

/**
 * The value of a numeric command-line flag, strictly: a decimal integer (`integer: true`)
 * or finite decimal within the range.
 *
 * ```ts
 * const seed = parseNumericFlag('seed', values.seed, { integer: true, min: 0 });
 * ```
 *
 * @param flag the flag's name, with or without its dashes (`seed`, `--seed`)
 * @throws EsperError `FLAG_INVALID` naming the flag, with `details` `{ flag, value, expected }`
 */
export function parseNumericFlag(flag: string, text: string, options: NumericFlagOptions = {}): number {
  const integer = options.integer === true;
  const value = (integer ? INTEGER_TEXT : DECIMAL_TEXT).test(text) ? Number(text) : Number.NaN;
  if ((integer ? Number.isSafeInteger(value) : Number.isFinite(value)) && inRange(value, options)) return value;
  const name = `--${flag.replace(/^-+/, '')}`;
  const expected = integer ? `an ${rangeText('integer', options)}` : `a ${rangeText('number', options)}`;
  const shown = showValue(text);
  throw new EsperError(ErrorCode.FLAG_INVALID, `${name} must be ${expected}, got ${shown}`, {
    details: { flag: name, value: shown, expected },
  });
}
