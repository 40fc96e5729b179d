/** The error a call throws, checked to be an `EsperError` (with `code`, when given). */
import { expect } from 'vitest';
import { isEsperError, type ErrorCode, type EsperError } from '../../src/core/errors.js';

/** Runs `fn` and returns the `EsperError` it throws; fails the test if it returns, or throws anything else. */
export function thrownBy(fn: () => unknown, code?: ErrorCode): EsperError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isEsperError(caught), `expected an EsperError, got ${String(caught)}`).toBe(true);
  if (code !== undefined) expect((caught as EsperError).code).toBe(code);
  return caught as EsperError;
}
