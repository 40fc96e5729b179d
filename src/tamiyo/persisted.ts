/**
 * Reading Tamiyo's persisted state through zod schemas: whatever is wrong becomes one typed
 * error naming what was read (the file) and every bad path. Same names and error shape as
 * core's `parsePersisted` on main, which replaces this file when the branches meet.
 */
import type { z } from 'zod';
import { EsperError, type ErrorCode } from '../core/index.js';

/** What is being read, for the error. */
export interface PersistedSource {
  /** The error code of unreadable state (`TAMIYO_GRAPH_INVALID`, ...). */
  readonly code: ErrorCode;
  /** Names what was read, file included: `registry file /var/x.json`. */
  readonly what: string;
  /** Extra error details (`path`, `offset`). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** One problem found in persisted state. */
export interface PersistedIssue {
  /** `$` for the whole value, else `$.windows[0].seedStage`. */
  readonly path: string;
  readonly message: string;
}

/** Persisted state that does not parse or does not fit its schema; `details.paths` lists the bad paths. */
export class PersistedStateError extends EsperError {
  readonly issues: readonly PersistedIssue[];

  constructor(source: PersistedSource, issues: readonly PersistedIssue[], cause?: unknown) {
    super(source.code, `${source.what} is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
      ...(cause === undefined ? {} : { cause }),
      details: { ...source.details, issueCount: issues.length, paths: issues.map((i) => i.path).join(',') },
    });
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
  }
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    const name = String(key);
    return /^[A-Za-z_$][\w$]*$/.test(name) ? `${text}.${name}` : `${text}[${JSON.stringify(name)}]`;
  }, '$');
}

/**
 * `value` checked by `schema` (its output, transforms applied).
 * @throws PersistedStateError (`source.code`) listing every issue with its path
 */
export function parsePersisted<S extends z.ZodType>(schema: S, value: unknown, source: PersistedSource): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new PersistedStateError(
    source,
    parsed.error.issues.map((issue) => ({ path: pathOf(issue.path), message: issue.message })),
    parsed.error,
  );
}

/**
 * JSON `text` (a string, or UTF-8 bytes decoded strictly) checked by `schema`; text that is
 * not JSON is an issue at `$`.
 * @throws PersistedStateError (`source.code`)
 */
export function parsePersistedJson<S extends z.ZodType>(schema: S, text: string | Uint8Array, source: PersistedSource): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text)) as unknown;
  } catch (error) {
    throw new PersistedStateError(source, [{ path: '$', message: 'not valid JSON (or not UTF-8)' }], error);
  }
  return parsePersisted(schema, value, source);
}
