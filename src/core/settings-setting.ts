/**
 * The leaves of the settings tree: how one key is parsed from its environment variable,
 * validated, defaulted and shown in logs, and the builders of each kind of key.
 */
import { z } from 'zod';
import { DECIMAL_TEXT, INTEGER_TEXT } from './numeric-text.js';
import { rangeText } from './options.js';

/** Placeholder that replaces secret values in logs and error messages. */
export const REDACTED = '[redacted]';

/** A view of the settings resolved so far, for defaults derived from other keys. */
export type ResolvedTree = { readonly [key: string]: unknown };

/** How one settings key is parsed, validated, defaulted and displayed. Build with {@link setting}. */
export class SettingDefinition<T> {
  constructor(
    readonly spec: {
      /** What a valid value looks like, for error messages ("integer ≥ 1"). */
      readonly expected: string;
      /** Validates a typed value (config file, overrides). */
      readonly schema: z.ZodType<T>;
      /** Parses and validates an environment string. */
      readonly envSchema: z.ZodType<T>;
      /** The default, possibly derived from keys without derived defaults. */
      readonly defaultValue: (resolved: ResolvedTree) => T;
      /** Whether the default reads other keys (resolved in a second pass). */
      readonly derived: boolean;
      /** Human form of the default, for {@link listSettings}. */
      readonly defaultLabel: string;
      /** Explicit environment variable name, overriding the naming rule. */
      readonly env?: string;
      /** Whether the value must never be logged. */
      readonly secret: boolean;
      /** Log-safe form of a valid value. */
      display(value: T): unknown;
      /** Log-safe form of a raw (possibly invalid) input, for error messages. */
      displayInput(input: unknown): string;
    },
  ) {}
}

/** A definition of any value type (its methods are bivariant, so every `T` fits). */
export type AnySetting = SettingDefinition<unknown>;

/** A section of the settings tree: leaves and nested sections. */
export interface SettingsGroup {
  readonly [key: string]: AnySetting | SettingsGroup;
}

interface CommonOptions {
  /** Explicit environment variable name, when the naming rule must not apply. */
  readonly env?: string;
}

const BOOLEAN_TRUE = ['true', '1', 'yes', 'on'];
const BOOLEAN_FALSE = ['false', '0', 'no', 'off'];

/** Log-safe text of a raw input for error messages (cut at 120 characters). */
export function showInput(input: unknown): string {
  const text = JSON.stringify(input) ?? String(input);
  return text.length <= 120 ? text : `${text.slice(0, 119)}…`;
}

function plain<T>(
  expected: string,
  schema: z.ZodType<T>,
  envSchema: z.ZodType<T>,
  defaultValue: T,
  options: CommonOptions = {},
): SettingDefinition<T> {
  return new SettingDefinition<T>({
    expected,
    schema,
    envSchema,
    defaultValue: () => defaultValue,
    derived: false,
    defaultLabel: defaultValue === undefined ? 'unset' : JSON.stringify(defaultValue),
    ...(options.env === undefined ? {} : { env: options.env }),
    secret: false,
    display: (value) => value,
    displayInput: showInput,
  });
}

/** Replaces the password of a URL; unparsable input loses its whole user-info part. */
export function redactUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed !== undefined) {
    if (parsed.password === '') return url;
    const { protocol, username, host, pathname, search, hash } = parsed;
    return `${protocol}//${username}:${REDACTED}@${host}${pathname}${search}${hash}`;
  }
  const scheme = url.indexOf('://');
  const at = url.lastIndexOf('@');
  if (scheme >= 0 && at > scheme) return `${url.slice(0, scheme + 3)}${REDACTED}${url.slice(at)}`;
  return url;
}

/** Builders of settings leaves; each returns a definition with its zod schemas. */
export const setting = {
  integer(options: { default: number; min?: number; max?: number } & CommonOptions) {
    let schema = z.number().int();
    if (options.min !== undefined) schema = schema.min(options.min);
    if (options.max !== undefined) schema = schema.max(options.max);
    const envSchema = z.string().regex(INTEGER_TEXT).transform(Number).pipe(schema);
    return plain(rangeText('integer', options), schema, envSchema, options.default, options);
  },

  number(options: { default: number; min?: number; max?: number; greaterThan?: number } & CommonOptions) {
    let schema = z.number();
    if (options.min !== undefined) schema = schema.min(options.min);
    if (options.greaterThan !== undefined) schema = schema.gt(options.greaterThan);
    if (options.max !== undefined) schema = schema.max(options.max);
    const envSchema = z.string().regex(DECIMAL_TEXT).transform(Number).pipe(schema);
    const expected = rangeText('number', options);
    return plain(expected, schema, envSchema, options.default, options);
  },

  /** An integer with no default: unset unless a source sets it. */
  optionalInteger(options: { min?: number; max?: number } & CommonOptions) {
    let schema = z.number().int();
    if (options.min !== undefined) schema = schema.min(options.min);
    if (options.max !== undefined) schema = schema.max(options.max);
    const envSchema = z.string().regex(INTEGER_TEXT).transform(Number).pipe(schema);
    const expected = rangeText('integer', options);
    return plain<number | undefined>(expected, schema, envSchema, undefined, options);
  },

  boolean(options: { default: boolean } & CommonOptions) {
    const envSchema = z.stringbool({ truthy: BOOLEAN_TRUE, falsy: BOOLEAN_FALSE });
    const expected = 'boolean (true/false, 1/0, yes/no, on/off)';
    return plain(expected, z.boolean(), envSchema, options.default, options);
  },

  string(options: { default: string; allowEmpty?: boolean; pattern?: RegExp } & CommonOptions) {
    let schema = z.string();
    if (options.allowEmpty !== true) schema = schema.min(1);
    if (options.pattern !== undefined) schema = schema.regex(options.pattern);
    const expected =
      options.pattern !== undefined
        ? `string matching ${options.pattern.source}`
        : options.allowEmpty === true
          ? 'string'
          : 'non-empty string';
    return plain(expected, schema, schema, options.default, options);
  },

  /** A closed set of strings. Environment values match case-insensitively. */
  enum<const V extends readonly [string, ...string[]]>(values: V, options: { default: V[number] } & CommonOptions) {
    const schema = z.enum(values);
    const envSchema = z
      .string()
      .transform((raw) => values.find((value) => value.toLowerCase() === raw.toLowerCase()) ?? raw)
      .pipe(schema);
    const expected = `one of ${values.map((value) => JSON.stringify(value)).join(', ')}`;
    return plain<V[number]>(expected, schema as z.ZodType<V[number]>, envSchema, options.default, options);
  },

  /** A URL with one of `protocols` (e.g. `redis:`). Its password is redacted in logs. */
  url(options: { default: string; protocols: readonly string[] } & CommonOptions) {
    const schema = z.string().refine((raw) => {
      try {
        return options.protocols.includes(new URL(raw).protocol);
      } catch {
        return false;
      }
    });
    const expected = `URL with scheme ${options.protocols.map((p) => `${p}//`).join(' or ')}`;
    const base = plain(expected, schema, schema, options.default, options);
    return new SettingDefinition<string>({
      ...base.spec,
      display: (value) => redactUrl(value),
      displayInput: (input) => (typeof input === 'string' ? showInput(redactUrl(input)) : showInput(input)),
    });
  },

  /** A secret string with no default. Never shown: logs and errors print {@link REDACTED}. */
  secret(options: CommonOptions = {}) {
    const schema = z.string().min(1);
    return new SettingDefinition<string | undefined>({
      expected: 'non-empty string',
      schema,
      envSchema: schema,
      defaultValue: () => undefined,
      derived: false,
      defaultLabel: 'unset',
      ...(options.env === undefined ? {} : { env: options.env }),
      secret: true,
      display: (value) => (value === undefined ? undefined : REDACTED),
      displayInput: () => REDACTED,
    });
  },

  /**
   * A filesystem path whose default lies under `storage.varDir`. An explicit value is used
   * as given.
   */
  varPath(relative: string) {
    const schema = z.string().min(1);
    return new SettingDefinition<string>({
      expected: 'non-empty path',
      schema,
      envSchema: schema,
      defaultValue: (resolved) => {
        const storage = resolved['storage'] as { varDir: string };
        return `${storage.varDir.replace(/\/+$/, '')}/${relative}`;
      },
      derived: true,
      defaultLabel: `"<storage.varDir>/${relative}"`,
      secret: false,
      display: (value) => value,
      displayInput: showInput,
    });
  },
};

/** Whether `node` is a section rather than a leaf. */
export function isGroup(node: AnySetting | SettingsGroup): node is SettingsGroup {
  return !(node instanceof SettingDefinition);
}
