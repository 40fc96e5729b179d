/**
 * Option checks for `resolveXOptions()` functions: one error for a bad option
 * (`INVALID_ARGUMENT` naming the owner, the field and the value) and the common validators.
 */
import { ErrorCode, EsperError } from './errors.js';

/** The longest delay a Node timer honours, in ms (longer delays fire after 1 ms). */
export const MAX_TIMER_MS = 2_147_483_647;

/** Bounds of a numeric option; `greaterThan` is an open lower bound. */
export interface NumericRange {
  readonly min?: number;
  readonly max?: number;
  readonly greaterThan?: number;
}

const MAX_SHOWN_CHARS = 80;

/**
 * A short, log-safe text of a value for error messages: strings quoted and cut, numbers as
 * written, objects and functions by kind only (they may hold secrets or be huge).
 */
export function showValue(value: unknown): string {
  switch (typeof value) {
    case 'string': {
      const text = JSON.stringify(value);
      return text.length <= MAX_SHOWN_CHARS ? text : `${text.slice(0, MAX_SHOWN_CHARS - 1)}…`;
    }
    case 'bigint':
      return `${value}n`;
    case 'function':
      return 'a function';
    case 'object':
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
    default:
      return String(value);
  }
}

/** `integer ≥ 1`, `number > 0`, `integer in [0, 65535]`: the text of a kind and its bounds. */
export function rangeText(kind: string, range: NumericRange = {}): string {
  const { min, max, greaterThan } = range;
  const low = greaterThan !== undefined ? `> ${greaterThan}` : min !== undefined ? `≥ ${min}` : '';
  if (low !== '' && max !== undefined) {
    return greaterThan === undefined ? `${kind} in [${min}, ${max}]` : `${kind} ${low} and ≤ ${max}`;
  }
  if (low !== '') return `${kind} ${low}`;
  if (max !== undefined) return `${kind} ≤ ${max}`;
  return kind;
}

/**
 * The `INVALID_ARGUMENT` error for one bad option:
 * `<owner> option <field> must be <expected>, got <value>`, with `details` `{ owner, field,
 * value }` (the value as {@link showValue} shows it). Never pass a secret as `value`.
 */
export function invalidOption(owner: string, field: string, expected: string, value: unknown): EsperError {
  const shown = showValue(value);
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `${owner} option ${field} must be ${expected}, got ${shown}`, {
    details: { owner, field, value: shown },
  });
}

/** The validators of one owner; each returns the checked value or throws {@link invalidOption}. */
export interface OptionChecks {
  /** A safe integer within `range`. */
  integer(field: string, value: unknown, range?: Omit<NumericRange, 'greaterThan'>): number;
  /** A finite number within `range`. */
  number(field: string, value: unknown, range?: NumericRange): number;
  /** A finite number > 0. */
  positive(field: string, value: unknown): number;
  /** A finite number ≥ 0. */
  nonNegative(field: string, value: unknown): number;
  /** A string of at least one character. */
  nonEmptyString(field: string, value: unknown): string;
  /** One of `allowed` (compared with `===`). */
  oneOf<const V>(field: string, value: unknown, allowed: readonly V[]): V;
  /** A function (a callback or a collaborator's method). */
  func<F extends (...args: never[]) => unknown>(field: string, value: unknown): F;
  /** Throws {@link invalidOption} for a check of the caller's own. */
  fail(field: string, expected: string, value: unknown): never;
}

/** Whether `value` lies within `range`. */
export function inRange(value: number, { min, max, greaterThan }: NumericRange): boolean {
  return (min === undefined || value >= min) && (max === undefined || value <= max) && (greaterThan === undefined || value > greaterThan);
}

/**
 * The validators of `owner` (the class or options type named in messages):
 *
 * ```ts
 * const check = optionChecks('RecordLogOptions');
 * const maxRecords = check.integer('groupCommitMaxRecords', options.groupCommitMaxRecords ?? 256, { min: 1 });
 * ```
 */
export function optionChecks(owner: string): OptionChecks {
  const fail = (field: string, expected: string, value: unknown): never => {
    throw invalidOption(owner, field, expected, value);
  };
  const number = (field: string, value: unknown, range: NumericRange = {}): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || !inRange(value, range)) {
      fail(field, `a ${rangeText('finite number', range)}`, value);
    }
    return value as number;
  };
  return {
    integer(field, value, range = {}) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || !inRange(value, range)) {
        fail(field, `an ${rangeText('integer', range)}`, value);
      }
      return value as number;
    },
    number,
    positive: (field, value) => number(field, value, { greaterThan: 0 }),
    nonNegative: (field, value) => number(field, value, { min: 0 }),
    nonEmptyString(field, value) {
      if (typeof value !== 'string' || value.length === 0) fail(field, 'a non-empty string', value);
      return value as string;
    },
    oneOf(field, value, allowed) {
      if (!allowed.includes(value as (typeof allowed)[number])) {
        fail(field, `one of ${allowed.map((v) => showValue(v)).join(', ')}`, value);
      }
      return value as (typeof allowed)[number];
    },
    func<F extends (...args: never[]) => unknown>(field: string, value: unknown): F {
      if (typeof value !== 'function') fail(field, 'a function', value);
      return value as F;
    },
    fail,
  };
}
