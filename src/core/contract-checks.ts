/**
 * Field checks shared by the typed contract helpers (`decisions.ts`, `training-metrics.ts`).
 * Internal to core: not exported from `index.ts`.
 *
 * One {@link ContractChecker} runs the same checks on both sides of a contract; only the
 * code of a missing required field differs: a producer passing an empty id made a bad
 * argument (INVALID_ARGUMENT), a consumer receiving one got an incomplete message
 * (CONTRACT_FIELD_MISSING). Every error names the offending field by its proto path in
 * `details.field`.
 */
import type { DescEnum } from '@bufbuild/protobuf';
import { ErrorCode, EsperError } from './errors.js';

/** Which side of a contract runs the checks. */
export type ContractSide = 'producer' | 'consumer';

const UINT32_MAX = 0xffff_ffff;

/** Matches a lone surrogate; in `u` mode a well-formed pair is one code point. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Runs contract field checks, throwing a typed {@link EsperError} naming the field. */
export class ContractChecker {
  constructor(readonly side: ContractSide) {}

  /** Throws INVALID_ARGUMENT about `field`. */
  invalid(field: string, message: string, details: Record<string, string | number> = {}): never {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${field}: ${message}`, {
      details: { ...details, field },
    });
  }

  /** Throws the side's missing-field error about `field`. */
  missing(field: string, message: string): never {
    const code = this.side === 'consumer' ? ErrorCode.CONTRACT_FIELD_MISSING : ErrorCode.INVALID_ARGUMENT;
    throw new EsperError(code, `${field}: ${message}`, { details: { field } });
  }

  /** Throws CONTRACT_BOUND_EXCEEDED when a list holds more than `max` entries. */
  listBound(field: string, entries: number, max: number): void {
    if (entries > max) {
      throw new EsperError(ErrorCode.CONTRACT_BOUND_EXCEEDED, `${field}: ${entries} entries exceeds the bound of ${max}`, {
        details: { field, entries, max },
      });
    }
  }

  /** Requires a finite number. */
  finite(field: string, value: number): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.invalid(field, `must be a finite number, got ${String(value)}`, {
        value: String(value),
      });
    }
    return value;
  }

  /**
   * Converts a finite number to the value a proto `float` field will carry: rounded to
   * float32 (so encode → decode gives back the same number) and with -0 made +0 (so equal
   * values have equal bytes). Values beyond the float32 range are rejected, not saturated
   * to infinity.
   */
  float32(field: string, value: number): number {
    this.finite(field, value);
    const rounded = Math.fround(value);
    if (!Number.isFinite(rounded)) {
      this.invalid(field, `${value} is outside the float32 range`, { value: String(value) });
    }
    return rounded === 0 ? 0 : rounded;
  }

  /** Requires `min ≤ value ≤ max` (and a finite value). */
  range(field: string, value: number, min: number, max: number): void {
    this.finite(field, value);
    if (value < min || value > max) {
      this.invalid(field, `must be in [${min}, ${max}], got ${value}`, { value, min, max });
    }
  }

  /** Requires a finite value ≥ 0. */
  nonNegative(field: string, value: number): void {
    this.finite(field, value);
    if (value < 0) this.invalid(field, `must be ≥ 0, got ${value}`, { value });
  }

  /** Requires a finite value > 0. */
  positive(field: string, value: number): void {
    this.finite(field, value);
    if (!(value > 0)) this.invalid(field, `must be > 0, got ${value}`, { value });
  }

  /** Requires an integer in the uint32 range. */
  uint32(field: string, value: number): number {
    if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
      this.invalid(field, `must be an integer in [0, ${UINT32_MAX}], got ${String(value)}`, {
        value: String(value),
      });
    }
    return value;
  }

  /**
   * Requires a value the enum declares. With `allowZero: false` the zero value
   * (UNSPECIFIED/UNKNOWN) counts as a missing field.
   */
  enumValue(field: string, schema: DescEnum, value: number, allowZero: boolean): void {
    if (!schema.values.some((v) => v.number === value)) {
      this.invalid(field, `unknown ${schema.name} value ${String(value)}`, {
        value: String(value),
      });
    }
    if (!allowZero && value === 0) {
      this.missing(field, `${schema.name} must not be ${schema.values[0]?.name ?? 'zero'}`);
    }
  }

  /**
   * Requires well-formed UTF-16 (no lone surrogates, which protobuf would silently replace
   * with U+FFFD) and, when `required`, a non-blank value.
   */
  text(field: string, value: string, required: boolean): string {
    if (typeof value !== 'string') {
      this.invalid(field, `must be a string, got ${typeof value}`);
    }
    if (LONE_SURROGATE.test(value)) this.invalid(field, 'is not well-formed Unicode');
    if (required && value.trim().length === 0) this.missing(field, 'must not be empty');
    return value;
  }
}

/**
 * Orders strings by their UTF-8 bytes, which is code point order: what Python's `sorted`
 * gives for `str`, unlike JavaScript's default UTF-16 code unit order (the two disagree
 * between astral characters and U+E000–U+FFFF). Used to sort repeated `{name, value}`
 * entries inside signed messages the same way in every language.
 */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
