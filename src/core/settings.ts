/**
 * `EsperSettings`: the one configuration object of an Esper process, grouped by subsystem.
 *
 * Every key is a leaf of {@link SETTINGS_DEFINITION}, which says how the key is parsed
 * from its environment variable, validated (zod), defaulted and shown in logs. Values come
 * from, highest first: `overrides` (CLI flags, tests) → environment (`ESPER_*`) → JSON
 * config file → defaults. All problems are collected and reported in one
 * `SETTINGS_INVALID` error.
 *
 * Environment variable names follow one rule: `ESPER_` + the key's path with each
 * camelCase segment in SCREAMING_SNAKE_CASE, joined by `_`
 * (`oona.emergencyMaxPerMin` → `ESPER_OONA_EMERGENCY_MAX_PER_MIN`). Exceptions, stated in
 * their TSDoc: the signing secrets keep `ESPER_LEYLINE_SECRET` / `ESPER_LEYLINE_KEYS` (also
 * turned into a key ring by `KeyRing.fromSettings`), and the async worker knobs are `ESPER_ASYNC_WORKER_*` (shorter
 * than the rule's `ESPER_CORE_ASYNC_WORKER_*`). This module is the only reader of the
 * other variables: components take their section of the settings as options.
 * `ESPER_CONFIG_FILE` names the config file.
 *
 * To add a section: add one entry to {@link SETTINGS_DEFINITION}. Its type, environment
 * variables, file keys, validation and redaction follow from that entry.
 *
 * Deliberate deviations from the prototype (reference prototype-tolaria-oona-nissa-weatherlight
 * §1.4): names carry the `ESPER_` prefix; unknown `ESPER_*` variables and unknown file keys
 * are errors, not ignored; invalid numbers are errors, not a silent fallback to the default.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, EsperError } from './errors.js';

// ---------------------------------------------------------------------------------------
// Leaf definitions
// ---------------------------------------------------------------------------------------

/** Placeholder that replaces secret values in logs and error messages. */
export const REDACTED = '[redacted]';

/** A view of the settings resolved so far, for defaults derived from other keys. */
type ResolvedTree = { readonly [key: string]: unknown };

/** How one settings key is parsed, validated, defaulted and displayed. */
class SettingDefinition<T> {
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
type AnySetting = SettingDefinition<unknown>;

interface SettingsGroup {
  readonly [key: string]: AnySetting | SettingsGroup;
}

interface CommonOptions {
  /** Explicit environment variable name, when the naming rule must not apply. */
  readonly env?: string;
}

const INTEGER_TEXT = /^-?\d+$/;
const DECIMAL_TEXT = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const BOOLEAN_TRUE = ['true', '1', 'yes', 'on'];
const BOOLEAN_FALSE = ['false', '0', 'no', 'off'];
/** Node clamps longer timer delays to 1 ms, so longer durations cannot be honoured. */
const MAX_TIMER_MS = 2_147_483_647;

function showInput(input: unknown): string {
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

function rangeText(kind: string, min?: number, max?: number, greaterThan?: number): string {
  const low = greaterThan !== undefined ? `> ${greaterThan}` : min !== undefined ? `≥ ${min}` : '';
  if (low !== '' && max !== undefined) {
    return greaterThan === undefined ? `${kind} in [${min}, ${max}]` : `${kind} ${low} and ≤ ${max}`;
  }
  if (low !== '') return `${kind} ${low}`;
  if (max !== undefined) return `${kind} ≤ ${max}`;
  return kind;
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
const setting = {
  integer(options: { default: number; min?: number; max?: number } & CommonOptions) {
    let schema = z.number().int();
    if (options.min !== undefined) schema = schema.min(options.min);
    if (options.max !== undefined) schema = schema.max(options.max);
    const envSchema = z.string().regex(INTEGER_TEXT).transform(Number).pipe(schema);
    return plain(rangeText('integer', options.min, options.max), schema, envSchema, options.default, options);
  },

  number(options: { default: number; min?: number; max?: number; greaterThan?: number } & CommonOptions) {
    let schema = z.number();
    if (options.min !== undefined) schema = schema.min(options.min);
    if (options.greaterThan !== undefined) schema = schema.gt(options.greaterThan);
    if (options.max !== undefined) schema = schema.max(options.max);
    const envSchema = z.string().regex(DECIMAL_TEXT).transform(Number).pipe(schema);
    const expected = rangeText('number', options.min, options.max, options.greaterThan);
    return plain(expected, schema, envSchema, options.default, options);
  },

  /** An integer with no default: unset unless a source sets it. */
  optionalInteger(options: { min?: number; max?: number } & CommonOptions) {
    let schema = z.number().int();
    if (options.min !== undefined) schema = schema.min(options.min);
    if (options.max !== undefined) schema = schema.max(options.max);
    const envSchema = z.string().regex(INTEGER_TEXT).transform(Number).pipe(schema);
    const expected = rangeText('integer', options.min, options.max);
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

// ---------------------------------------------------------------------------------------
// The settings tree — one entry per section
// ---------------------------------------------------------------------------------------

/**
 * The definition of every settings key, one entry per subsystem section. Each key's TSDoc
 * carries its `@default`; its environment variable follows the naming rule in the module
 * comment unless stated.
 */
export const SETTINGS_DEFINITION = {
  /** Shared foundations. */
  core: {
    /**
     * The one shared async worker (Tamiyo inference, Urza metadata, Kasmina prefetch);
     * this section is `AsyncWorkerOptions`-shaped. Env names are `ESPER_ASYNC_WORKER_*`.
     */
    asyncWorker: {
      /** Tasks running at once. Env `ESPER_ASYNC_WORKER_MAX_CONCURRENCY`. @default 4 */
      maxConcurrency: setting.integer({
        default: 4,
        min: 1,
        env: 'ESPER_ASYNC_WORKER_MAX_CONCURRENCY',
      }),
      /**
       * Tasks waiting for a slot before `submit` is refused (back-pressure); 0 means run now
       * or reject. Env `ESPER_ASYNC_WORKER_MAX_QUEUE_DEPTH`. @default 1024
       */
      maxQueueDepth: setting.integer({
        default: 1_024,
        min: 0,
        env: 'ESPER_ASYNC_WORKER_MAX_QUEUE_DEPTH',
      }),
      /**
       * Deadline of a task that sets none, measured from submission; unset means none.
       * Env `ESPER_ASYNC_WORKER_DEFAULT_DEADLINE_MS`. @default unset
       */
      defaultDeadlineMs: setting.optionalInteger({
        min: 1,
        max: MAX_TIMER_MS,
        env: 'ESPER_ASYNC_WORKER_DEFAULT_DEADLINE_MS',
      }),
      /**
       * How long shutdown waits for running tasks before cancelling them.
       * Env `ESPER_ASYNC_WORKER_SHUTDOWN_TIMEOUT_MS`. @default 5000
       */
      shutdownTimeoutMs: setting.integer({
        default: 5_000,
        min: 0,
        max: MAX_TIMER_MS,
        env: 'ESPER_ASYNC_WORKER_SHUTDOWN_TIMEOUT_MS',
      }),
    },
    /** Minimum level of log lines (pino levels). @default "info" */
    logLevel: setting.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      default: 'info',
    }),
  },

  /** Command signing and verification. The key ring itself is parsed by `src/security`. */
  security: {
    /**
     * Single HMAC-SHA256 secret (UTF-8), used as key id `default`. Secret.
     * Env `ESPER_LEYLINE_SECRET`. @default unset
     */
    leylineSecret: setting.secret({ env: 'ESPER_LEYLINE_SECRET' }),
    /**
     * Key ring as `id:secret,id:secret`, the first key active. Secret.
     * Env `ESPER_LEYLINE_KEYS`. @default unset
     */
    leylineKeys: setting.secret({ env: 'ESPER_LEYLINE_KEYS' }),
    /** Commands issued longer ago than this are stale. @default 60000 */
    freshnessWindowMs: setting.integer({ default: 60_000, min: 1 }),
    /** Commands issued further in the future than this are rejected. @default 5000 */
    futureSkewMs: setting.integer({ default: 5_000, min: 0 }),
    /** How long a seen nonce is remembered (replay window). @default 300 */
    nonceTtlSeconds: setting.integer({ default: 300, min: 1 }),
    /** Nonces remembered at most; the oldest are evicted (and counted) beyond. @default 10000 */
    nonceMaxEntries: setting.integer({ default: 10_000, min: 1 }),
  },

  /** The message fabric. */
  oona: {
    /**
     * Bus backend: `memory://` (embedded, in-process) or `redis://[:password@]host:port/db`
     * (`rediss://` for TLS). The password is redacted in logs. @default "memory://"
     */
    busUrl: setting.url({ default: 'memory://', protocols: ['memory:', 'redis:', 'rediss:'] }),
    /** Prepended to every stream and key name (isolates tests sharing one Redis). @default "" */
    streamPrefix: setting.string({ default: '', allowEmpty: true, pattern: /^[A-Za-z0-9._:-]*$/ }),
    /** Handling attempts before a message goes to the dead-letter stream. @default 5 */
    maxAttempts: setting.integer({ default: 5, min: 1 }),
    /** Entries read per stream per poll. @default 32 */
    readCount: setting.integer({ default: 32, min: 1 }),
    /** How long a poll blocks waiting for new entries. @default 500 */
    blockMs: setting.integer({ default: 500, min: 1, max: MAX_TIMER_MS }),
    /** A pending entry idle this long (its consumer died) is reclaimed and handled. @default 60000 */
    reclaimIdleMs: setting.integer({ default: 60_000, min: 1, max: MAX_TIMER_MS }),
    /** How often each subscription looks for entries to reclaim. @default 5000 */
    reclaimIntervalMs: setting.integer({ default: 5_000, min: 1, max: MAX_TIMER_MS }),
    /** Emergency-stream budget (token bucket): publishes per minute. @default 120 */
    emergencyMaxPerMin: setting.integer({ default: 120, min: 1 }),
    /** Depth (undelivered + unacknowledged) at which a stream is under back-pressure. @default 10000 */
    maxBacklog: setting.integer({ default: 10_000, min: 1 }),
    /** How long a never-shed publish waits out back-pressure or an outage. @default 5000 */
    publishDeadlineMs: setting.integer({ default: 5_000, min: 1, max: MAX_TIMER_MS }),
    /** Acknowledged messages older than this are trimmed by housekeeping. @default 900000 */
    retentionMs: setting.integer({ default: 900_000, min: 1 }),
    /** Kernel prefetch requests older than this are dead-lettered as stale. @default 60000 */
    kernelFreshnessWindowMs: setting.integer({ default: 60_000, min: 1 }),
    /** Kernel request ids remembered against replay. @default 4096 */
    kernelNonceCacheSize: setting.integer({ default: 4_096, min: 1 }),
  },

  /** Files on disk. */
  storage: {
    /** Root of everything an embedded process writes. @default "./var" */
    varDir: setting.string({ default: './var' }),
    /** Urza's SQLite catalog. @default "<storage.varDir>/urza/catalog.db" */
    urzaDatabasePath: setting.varPath('urza/catalog.db'),
    /** Urza's kernel artifact files. @default "<storage.varDir>/urza/artifacts" */
    urzaArtifactDir: setting.varPath('urza/artifacts'),
  },

  /** Observability. */
  nissa: {
    /** Address the HTTP server (metrics, health, live view) binds. @default "127.0.0.1" */
    httpHost: setting.string({ default: '127.0.0.1' }),
    /** Port of the HTTP server; 0 picks a free port. @default 9100 */
    httpPort: setting.integer({ default: 9_100, min: 0, max: 65_535 }),
    /** Whether alert rules are evaluated. @default true */
    alertsEnabled: setting.boolean({ default: true }),
    /** Feature coverage below this ratio counts towards the coverage alert. @default 0.7 */
    coverageAlertThreshold: setting.number({ default: 0.7, min: 0, max: 1 }),
    /** Consecutive low-coverage packets that raise the coverage alert. @default 3 */
    coverageAlertConsecutive: setting.integer({ default: 3, min: 1 }),
    /** BSDS risk score at or above which a blueprint counts as elevated risk. @default 0.8 */
    bsdsElevatedRiskThreshold: setting.number({ default: 0.8, min: 0, max: 1 }),
  },

  /** The training orchestrator. */
  tolaria: {
    /** Deadline of one Tamiyo evaluation, measured from submission. @default 2000 */
    tamiyoTimeoutMs: setting.integer({ default: 2_000, min: 1 }),
    /** Deadline of one Kasmina command application. @default 2000 */
    kasminaTimeoutMs: setting.integer({ default: 2_000, min: 1 }),
    /** Budget of one epoch's control overhead; over it the epoch fails. @default 250 */
    epochBudgetMs: setting.number({ default: 250, greaterThan: 0 }),
    /** Budget of the per-step hooks. @default 50 */
    hookBudgetMs: setting.number({ default: 50, greaterThan: 0 }),
    /** Two-tier rollback (in-memory fast cache, then checkpoint restore). */
    rollback: {
      /** Whether rollback is armed. @default false */
      enabled: setting.boolean({ default: false }),
      /** Size cap of the in-memory fast rollback cache. @default 32 */
      fastCacheMaxMb: setting.integer({ default: 32, min: 1 }),
      /**
       * Deadline of a full restore from the last checkpoint; past it training halts. The
       * reference SLA (12 s) rather than the prototype's 250 ms, which a checkpoint read
       * and verify cannot meet for real models. @default 12000
       */
      deadlineMs: setting.integer({ default: 12_000, min: 1 }),
      /** Steps between fast-cache snapshots. @default 1 */
      snapshotSteps: setting.integer({ default: 1, min: 1 }),
    },
    /** The emergency protocol. */
    emergency: {
      /** Whether the emergency controller runs. @default false */
      enabled: setting.boolean({ default: false }),
      /** Cap on emergency broadcasts per minute. @default 60 */
      bypassMaxPerMin: setting.integer({ default: 60, min: 1 }),
      /** Consecutive failed epochs that trigger a level-4 halt. @default 3 */
      l4FailedEpochs: setting.integer({ default: 3, min: 1 }),
    },
  },

  /** The seed executor. */
  kasmina: {
    /** Budget of one kernel fetch (library load + rebuild); over it G2 fails. @default 250 */
    kernelLatencyBudgetMs: setting.number({ default: 250, greaterThan: 0 }),
    /** A prefetch unanswered for this many kernel budgets times out (CRITICAL). @default 2 */
    prefetchTimeoutFactor: setting.number({ default: 2, greaterThan: 0 }),
    /** Steps a seed trains in isolation (alpha 0) before G2 decides on blending. @default 100 */
    trainingSteps: setting.integer({ default: 100, min: 1 }),
    /** Steps of the alpha ramp in BLENDING (sigmoid schedule). @default 50 */
    blendingSteps: setting.integer({ default: 50, min: 1 }),
    /** Temperature of the sigmoid alpha schedule, in steps. @default 8 */
    alphaTemperature: setting.number({ default: 8, greaterThan: 0 }),
    /** Steps at full alpha in SHADOWING before the stability re-check. @default 50 */
    shadowingSteps: setting.integer({ default: 50, min: 1 }),
    /** Minimum steps in PROBATIONARY before a validation may fossilize or cull. @default 50 */
    probationSteps: setting.integer({ default: 50, min: 1 }),
    /**
     * Counterfactual contribution (validation accuracy with the seed minus with its alpha
     * at 0) a seed needs to be fossilized; below it the seed is culled. @default 0.01
     */
    minContribution: setting.number({ default: 0.01, min: -1, max: 1 }),
    /** Steps a culled seed's site stays embargoed before it may be reset. @default 100 */
    embargoSteps: setting.integer({ default: 100, min: 0 }),
    /** Steps between direct isolation checks of training/blending seeds. @default 10 */
    isolationCheckEverySteps: setting.integer({ default: 10, min: 1 }),
    /** Verified kernel artifacts kept in memory (LRU). @default 32 */
    kernelCacheCapacity: setting.integer({ default: 32, min: 1 }),
    /** How long a cached artifact stays valid. @default 300 */
    kernelCacheTtlSeconds: setting.integer({ default: 300, min: 1 }),
    /** Epochs between periodic memory cleanups. @default 10 */
    gcEveryEpochs: setting.integer({ default: 10, min: 1 }),
    /** A per-blueprint lock wait longer than this raises `cache_lock_contention`. @default 100 */
    lockContentionWarnMs: setting.number({ default: 100, greaterThan: 0 }),
  },

  /** The controller. */
  tamiyo: {
    /** Budget of one policy inference. @default 5 */
    stepTimeoutMs: setting.number({ default: 5, greaterThan: 0 }),
    /** Budget of one Urza metadata lookup. @default 25 */
    metadataTimeoutMs: setting.number({ default: 25, greaterThan: 0 }),
    /** Whether the risk engine starts in conservative mode. @default false */
    conservativeMode: setting.boolean({ default: false }),
    /** Stored policies. @default "<storage.varDir>/tamiyo/policies" */
    policyDir: setting.varPath('tamiyo/policies'),
    /** Durable field-report log. @default "<storage.varDir>/tamiyo/field-reports.wal" */
    fieldReportWalPath: setting.varPath('tamiyo/field-reports.wal'),
    /** Field reports older than this are dropped when the log is rewritten. @default 24 */
    fieldReportRetentionHours: setting.integer({ default: 24, min: 1 }),
    /** Publish attempts of one field report before it is reported failed. @default 3 */
    fieldReportMaxRetries: setting.integer({ default: 3, min: 0 }),
  },
} as const satisfies SettingsGroup;

type SettingsOf<G> = {
  readonly [K in keyof G]: G[K] extends SettingDefinition<infer T> ? T : SettingsOf<G[K]>;
};

type OverridesOf<G> = {
  readonly [K in keyof G]?: G[K] extends SettingDefinition<infer T> ? T : OverridesOf<G[K]>;
};

/** The resolved, frozen configuration of one Esper process. */
export type EsperSettings = SettingsOf<typeof SETTINGS_DEFINITION>;

/** Any subset of {@link EsperSettings}; the highest-precedence source. */
export type SettingsOverrides = OverridesOf<typeof SETTINGS_DEFINITION>;

// ---------------------------------------------------------------------------------------
// Flattened view of the tree
// ---------------------------------------------------------------------------------------

/** Environment variables that are not settings keys but are known (not typos). */
export const SETTINGS_META_ENV = Object.freeze({
  /** Path of a JSON config file with the same nested shape as {@link EsperSettings}. */
  configFile: 'ESPER_CONFIG_FILE',
});

interface Leaf {
  readonly path: readonly string[];
  readonly dotted: string;
  readonly envVar: string;
  readonly definition: AnySetting;
}

function screamingSnake(segment: string): string {
  return segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The environment variable of a key path, by the naming rule. */
function envVarFor(path: readonly string[]): string {
  return `ESPER_${path.map(screamingSnake).join('_')}`;
}

function isGroup(node: AnySetting | SettingsGroup): node is SettingsGroup {
  return !(node instanceof SettingDefinition);
}

function collectLeaves(group: SettingsGroup, prefix: readonly string[], out: Leaf[]): Leaf[] {
  for (const [key, node] of Object.entries(group)) {
    const path = [...prefix, key];
    if (isGroup(node)) {
      collectLeaves(node, path, out);
    } else {
      out.push({
        path,
        dotted: path.join('.'),
        envVar: node.spec.env ?? envVarFor(path),
        definition: node,
      });
    }
  }
  return out;
}

const LEAVES: readonly Leaf[] = (() => {
  const leaves = collectLeaves(SETTINGS_DEFINITION, [], []);
  const seen = new Map<string, string>([[SETTINGS_META_ENV.configFile, '(config file)']]);
  for (const leaf of leaves) {
    const clash = seen.get(leaf.envVar);
    if (clash !== undefined) {
      throw new Error(`settings ${clash} and ${leaf.dotted} share env var ${leaf.envVar}`);
    }
    seen.set(leaf.envVar, leaf.dotted);
  }
  return leaves;
})();

const KNOWN_ENV_VARS: ReadonlySet<string> = new Set([SETTINGS_META_ENV.configFile, ...LEAVES.map((leaf) => leaf.envVar)]);

/** One settings key, for documentation and `esper config` listings. */
export interface SettingInfo {
  /** Dotted path in {@link EsperSettings} and in the config file (`oona.busUrl`). */
  readonly path: string;
  /** Environment variable that sets it. */
  readonly envVar: string;
  /** What a valid value looks like. */
  readonly expected: string;
  /** The default, as text (`4`, `"memory://"`, `unset`). */
  readonly defaultLabel: string;
  /** Whether the value is redacted in logs. */
  readonly secret: boolean;
}

/** Every settings key, in definition order. */
export function listSettings(): readonly SettingInfo[] {
  return LEAVES.map((leaf) => ({
    path: leaf.dotted,
    envVar: leaf.envVar,
    expected: leaf.definition.spec.expected,
    defaultLabel: leaf.definition.spec.defaultLabel,
    secret: leaf.definition.spec.secret,
  }));
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/** Where a settings problem was found. */
export type SettingsSource = 'env' | 'file' | 'overrides';

/** One problem found while loading settings. Never contains a secret value. */
export interface SettingsIssue {
  readonly source: SettingsSource;
  /**
   * The offending name: the environment variable (`env`), or the dotted key inside the
   * file or overrides (`file`, `overrides`; empty for a problem with the whole file).
   */
  readonly key: string;
  /** Dotted settings path the problem concerns, when it names a known key. */
  readonly settingPath?: string;
  /** The config file's path (`file` only). */
  readonly file?: string;
  /** What is wrong (`expected integer ≥ 1, got "0"`). */
  readonly message: string;
}

/** Thrown by {@link loadSettings}: every problem found, in one error. */
export class SettingsError extends EsperError {
  /** Every problem, in the order found (env, then file, then overrides). */
  readonly issues: readonly SettingsIssue[];

  constructor(issues: readonly SettingsIssue[]) {
    const lines = issues.map((issue) => `  - ${formatSettingsIssue(issue)}`);
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(ErrorCode.SETTINGS_INVALID, `invalid settings (${count}):\n${lines.join('\n')}`, {
      details: {
        issueCount: issues.length,
        keys: issues.map((issue) => issue.key || (issue.file ?? issue.source)).join(','),
      },
    });
    this.issues = Object.freeze(issues.map((issue) => Object.freeze({ ...issue })));
  }
}

/** One line describing an issue: `<where>: <message>`. */
export function formatSettingsIssue(issue: SettingsIssue): string {
  switch (issue.source) {
    case 'env':
      return `${issue.key}: ${issue.message}`;
    case 'file':
      return issue.key === ''
        ? `config file ${issue.file ?? ''}: ${issue.message}`
        : `config file ${issue.file ?? ''} at ${issue.key}: ${issue.message}`;
    case 'overrides':
      return `overrides.${issue.key}: ${issue.message}`;
  }
}

/** Options of {@link loadSettings}. */
export interface LoadSettingsOptions {
  /**
   * The environment to read.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Path of a JSON config file with the same nested shape as {@link EsperSettings}
   * (relative paths resolve against the working directory).
   * @default the `ESPER_CONFIG_FILE` environment variable, else no file
   */
  readonly configFile?: string;
  /** Values that win over every other source (CLI flags, tests). */
  readonly overrides?: SettingsOverrides;
  /**
   * What to do with an `ESPER_*` variable that names no setting: `'error'` (a typo is
   * reported) or `'ignore'`.
   * @default 'error'
   */
  readonly unknownEnv?: 'error' | 'ignore';
}

type Layer = Map<string, unknown>;

/**
 * Resolves the settings: `overrides` → environment → config file → defaults, per key.
 * Validates everything and throws one {@link SettingsError} (`SETTINGS_INVALID`) listing
 * every problem. The result is deeply frozen.
 */
export function loadSettings(options: LoadSettingsOptions = {}): EsperSettings {
  const env = options.env ?? process.env;
  const issues: SettingsIssue[] = [];

  const envLayer = readEnvLayer(env, options.unknownEnv ?? 'error', issues);
  const configFile = options.configFile ?? env[SETTINGS_META_ENV.configFile];
  let fileLayer: Layer = new Map();
  if (options.configFile === undefined && configFile === '') {
    const message = 'expected a file path, got ""';
    issues.push({ source: 'env', key: SETTINGS_META_ENV.configFile, message });
  } else if (configFile !== undefined) {
    fileLayer = readFileLayer(configFile, issues);
  }
  const overridesLayer = new Map<string, unknown>();
  if (options.overrides !== undefined) {
    readTree(options.overrides, SETTINGS_DEFINITION, [], overridesLayer, (issue) => issues.push({ source: 'overrides', ...issue }));
  }
  if (issues.length > 0) throw new SettingsError(issues);

  const layers: readonly Layer[] = [overridesLayer, envLayer, fileLayer];
  const values = new Map<string, unknown>();
  const partial: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    const layer = layers.find((candidate) => candidate.has(leaf.dotted));
    if (layer === undefined && leaf.definition.spec.derived) continue;
    const value = layer === undefined ? leaf.definition.spec.defaultValue(partial) : layer.get(leaf.dotted);
    values.set(leaf.dotted, value);
    setPath(partial, leaf.path, value);
  }
  // Derived defaults read only keys without derived defaults, all resolved above. The
  // result is rebuilt so its keys keep definition order.
  const root: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    const value = values.has(leaf.dotted) ? values.get(leaf.dotted) : leaf.definition.spec.defaultValue(partial);
    setPath(root, leaf.path, value);
  }
  return deepFreeze(root) as EsperSettings;
}

function readEnvLayer(env: Readonly<Record<string, string | undefined>>, unknownEnv: 'error' | 'ignore', issues: SettingsIssue[]): Layer {
  const layer: Layer = new Map();
  for (const leaf of LEAVES) {
    const raw = env[leaf.envVar];
    if (raw === undefined) continue;
    const parsed = leaf.definition.spec.envSchema.safeParse(raw);
    if (parsed.success) {
      layer.set(leaf.dotted, parsed.data);
    } else {
      issues.push({
        source: 'env',
        key: leaf.envVar,
        settingPath: leaf.dotted,
        message: `expected ${leaf.definition.spec.expected}, got ${leaf.definition.spec.displayInput(raw)}`,
      });
    }
  }
  if (unknownEnv === 'error') {
    for (const name of Object.keys(env).sort()) {
      if (!name.startsWith('ESPER_') || KNOWN_ENV_VARS.has(name) || env[name] === undefined) continue;
      // The value is not shown: an unknown variable may well be a misspelt secret.
      issues.push({ source: 'env', key: name, message: unknownMessage(name, KNOWN_ENV_VARS) });
    }
  }
  return layer;
}

function readFileLayer(file: string, issues: SettingsIssue[]): Layer {
  const layer: Layer = new Map();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    issues.push({ source: 'file', key: '', file, message: `cannot be read (${reason})` });
    return layer;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // V8's message may quote the text around the error, which may be a secret: keep only
    // the position.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    const where = position === undefined ? '' : ` (at position ${position})`;
    issues.push({ source: 'file', key: '', file, message: `is not valid JSON${where}` });
    return layer;
  }
  if (!isPlainObject(json)) {
    issues.push({ source: 'file', key: '', file, message: 'must hold a JSON object' });
    return layer;
  }
  readTree(json, SETTINGS_DEFINITION, [], layer, (issue) => issues.push({ source: 'file', file, ...issue }));
  return layer;
}

type IssueSink = (issue: Omit<SettingsIssue, 'source' | 'file'>) => void;

/** Walks a nested input against the definition: unknown keys, bad groups, bad leaves. */
function readTree(input: object, group: SettingsGroup, prefix: readonly string[], layer: Layer, report: IssueSink): void {
  const known = new Set(Object.keys(group));
  for (const [key, value] of Object.entries(input)) {
    const path = [...prefix, key];
    const dotted = path.join('.');
    const node = group[key];
    if (node === undefined || !known.has(key)) {
      report({ key: dotted, message: unknownMessage(key, known) });
      continue;
    }
    if (value === undefined) continue;
    if (isGroup(node)) {
      if (isPlainObject(value)) readTree(value, node, path, layer, report);
      else {
        const message = `expected an object, got ${showInput(value)}`;
        report({ key: dotted, settingPath: dotted, message });
      }
      continue;
    }
    const parsed = node.spec.schema.safeParse(value);
    if (parsed.success) layer.set(dotted, parsed.data);
    else {
      report({
        key: dotted,
        settingPath: dotted,
        message: `expected ${node.spec.expected}, got ${node.spec.displayInput(value)}`,
      });
    }
  }
}

function unknownMessage(name: string, candidates: Iterable<string>): string {
  const suggestion = closest(name, candidates);
  return suggestion === undefined ? 'unknown setting' : `unknown setting (did you mean ${suggestion}?)`;
}

/** The candidate within edit distance ⌈len/4⌉ of `name`, if any (typo hints). */
function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.ceil(name.length / 4)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function setPath(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------

/**
 * A plain copy of `settings` safe to log: secrets read {@link REDACTED} (or are absent when
 * unset) and URL passwords are replaced. Log it once at start.
 */
export function redactSettings(settings: EsperSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    let value: unknown = settings;
    for (const key of leaf.path) value = (value as Record<string, unknown> | undefined)?.[key];
    setPath(out, leaf.path, leaf.definition.spec.display(value));
  }
  return out;
}
