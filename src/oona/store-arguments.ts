/**
 * Argument checks shared by the two `StreamStore` implementations, so a bad call fails the
 * same way (`INVALID_ARGUMENT` naming the field) on Redis and in memory instead of
 * surfacing as a Redis syntax error on one and silently working on the other.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import type { EntryFields, ReadGroupOptions } from './stream-store.js';
import { parseEntryId } from './stream-store.js';

/** The `INVALID_ARGUMENT` error for `field`. */
export function invalidArgument(field: string, message: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `${field} ${message}`, { details: { field } });
}

/** Checks a stream or group name: a non-empty string. */
export function checkName(field: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0) throw invalidArgument(field, 'must be a non-empty string');
}

/** Checks entry fields: at least one, each value a `Uint8Array`. */
export function checkFields(fields: EntryFields): void {
  if (typeof fields !== 'object' || fields === null) throw invalidArgument('fields', 'must be an object');
  const names = Object.keys(fields);
  if (names.length === 0) throw invalidArgument('fields', 'must hold at least one field');
  for (const name of names) {
    if (name.length === 0) throw invalidArgument('fields', 'must not hold an empty field name');
    if (!(fields[name] instanceof Uint8Array)) throw invalidArgument(`fields.${name}`, 'must be a Uint8Array');
  }
}

/** Checks a positive integer count. */
export function checkCount(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw invalidArgument(field, `must be a positive integer, got ${value}`);
}

/** Checks a non-negative integer duration in ms. */
export function checkDurationMs(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(field, `must be a non-negative integer number of ms, got ${value}`);
  }
}

/** Checks an entry id (`<ms>-<seq>`). */
export function checkEntryId(field: string, id: string): void {
  try {
    parseEntryId(id);
  } catch {
    throw invalidArgument(field, `must be a stream entry id <ms>-<seq>, got ${JSON.stringify(id)}`);
  }
}

/** Checks the arguments of `readGroup`. */
export function checkReadGroup(group: string, consumer: string, streams: readonly string[], options: ReadGroupOptions): void {
  checkName('group', group);
  checkName('consumer', consumer);
  if (!Array.isArray(streams) || streams.length === 0) throw invalidArgument('streams', 'must list at least one stream');
  for (const stream of streams) checkName('streams[]', stream);
  if (new Set(streams).size !== streams.length) throw invalidArgument('streams', 'must not repeat a stream');
  checkCount('count', options.count);
  checkDurationMs('blockMs', options.blockMs);
}
