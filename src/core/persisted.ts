/**
 * Reading persisted state (exports, snapshots, registries, headers) through a zod schema:
 * whatever is wrong becomes one typed error that names what was read and every bad path.
 */
import type { z } from 'zod';
import { EsperError, type ErrorCode } from './errors.js';
import { formatJsonSyntaxProblem, parseJsonText } from './json-text.js';

/** What is being read, for the error. */
export interface PersistedSource {
  /** The owner's code for unreadable state (`TAMIYO_GRAPH_INVALID`, `TENSOR_WEIGHTS_INVALID`). */
  readonly code: ErrorCode;
  /** Names what was read in the message: `registry file /var/x.json`, `policy header of /p.bin`. */
  readonly what: string;
  /** Extra details (`path`, `offset`). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** One problem found in persisted state. */
export interface PersistedIssue {
  /** Where: `$` for the whole value, else `$.seeds[2].stage`. */
  readonly path: string;
  /** What is wrong there. */
  readonly message: string;
}

/** Persisted state that does not parse or does not fit its schema. */
export class PersistedStateError extends EsperError {
  /** Every problem found, in the order the schema reported them. */
  readonly issues: readonly PersistedIssue[];

  constructor(source: PersistedSource, issues: readonly PersistedIssue[], cause?: unknown) {
    const listed = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
    super(source.code, `${source.what} is invalid: ${listed}`, {
      ...(cause === undefined ? {} : { cause }),
      details: { ...source.details, issueCount: issues.length, paths: issues.map((issue) => issue.path).join(',') },
    });
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
  }
}

function pathText(path: readonly PropertyKey[]): string {
  let text = '$';
  for (const key of path) {
    text +=
      typeof key === 'number'
        ? `[${key}]`
        : /^[A-Za-z_$][\w$]*$/.test(String(key))
          ? `.${String(key)}`
          : `[${JSON.stringify(String(key))}]`;
  }
  return text;
}

/**
 * `value` checked by `schema` (its output, with transforms applied).
 * @throws PersistedStateError (`source.code`) listing every issue with its path
 *
 * ```ts
 * const table = parsePersisted(RegistrySchema, raw, { code: ErrorCode.TAMIYO_GRAPH_INVALID, what: `registry file ${file}` });
 * ```
 */
export function parsePersisted<S extends z.ZodType>(schema: S, value: unknown, source: PersistedSource): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new PersistedStateError(
    source,
    parsed.error.issues.map((issue) => ({ path: pathText(issue.path), message: issue.message })),
    parsed.error,
  );
}

/**
 * JSON `text` (a string, or UTF-8 bytes decoded strictly) checked by `schema`. A syntax
 * error is reported at path `$` with its line and column; the text is never quoted.
 * @throws PersistedStateError (`source.code`)
 */
export function parsePersistedJson<S extends z.ZodType>(schema: S, text: string | Uint8Array, source: PersistedSource): z.output<S> {
  const json = parseJsonText(text);
  if (!json.ok) throw new PersistedStateError(source, [{ path: '$', message: `not valid JSON (${formatJsonSyntaxProblem(json)})` }]);
  return parsePersisted(schema, json.value, source);
}
