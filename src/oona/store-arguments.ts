/**
 * Argument checks shared by the two `StreamStore` implementations, so a bad call fails the
 * same way (`INVALID_ARGUMENT` naming the field) on Redis and in memory instead of
 * surfacing as a Redis syntax error on one and silently working on the other.
 */
import { MAX_TIMER_MS, optionChecks, type OptionChecks } from '../core/index.js';
import type { EntryFields, ReadGroupOptions } from './stream-store.js';
import { parseEntryId } from './stream-store.js';

const check: OptionChecks = optionChecks('StreamStore');

/** Checks a stream or group name: a non-empty string. */
export function checkName(field: string, value: string): void {
  check.nonEmptyString(field, value);
}

/** Checks where a new group starts: `'$'` (new entries) or `'0'` (everything retained). */
export function checkStart(start: string): void {
  check.oneOf('start', start, ['$', '0']);
}

/** Checks entry fields: at least one, each named and each value a `Uint8Array`. */
export function checkFields(fields: EntryFields): void {
  if (typeof fields !== 'object' || fields === null) check.fail('fields', 'an object', fields);
  const names = Object.keys(fields);
  if (names.length === 0) check.fail('fields', 'an object holding at least one field', fields);
  for (const name of names) {
    if (name.length === 0) check.fail('fields', 'fields with non-empty names', fields);
    if (!(fields[name] instanceof Uint8Array)) check.fail(`fields.${name}`, 'a Uint8Array', fields[name]);
  }
}

/** Checks a positive integer count. */
export function checkCount(field: string, value: number): void {
  check.integer(field, value, { min: 1 });
}

/** Checks a non-negative integer duration in ms. */
export function checkDurationMs(field: string, value: number): void {
  check.integer(field, value, { min: 0 });
}

/** Checks an entry id (`<ms>-<seq>`). */
export function checkEntryId(field: string, id: string): void {
  try {
    parseEntryId(id);
  } catch {
    check.fail(field, 'a stream entry id <ms>-<seq>', id);
  }
}

/** Checks the arguments of `readGroup`. */
export function checkReadGroup(group: string, consumer: string, streams: readonly string[], options: ReadGroupOptions): void {
  checkName('group', group);
  checkName('consumer', consumer);
  if (!Array.isArray(streams) || streams.length === 0) check.fail('streams', 'a non-empty list of streams', streams);
  for (const stream of streams) checkName('streams[]', stream);
  if (new Set(streams).size !== streams.length) check.fail('streams', 'a list of distinct streams', streams);
  checkCount('count', options.count);
  // A blocking read waits on a timer in memory.
  check.integer('blockMs', options.blockMs, { min: 0, max: MAX_TIMER_MS });
}
