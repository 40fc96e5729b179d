/**
 * The settings tree: one section per subsystem, one leaf per key. Adding a key here gives it
 * its type, environment variable, config-file key, validation, redaction and runbook row.
 */
import { MAX_TIMER_MS } from './options.js';
import { setting, type SettingDefinition, type SettingsGroup } from './settings-setting.js';

/**
 * The definition of every settings key, one entry per subsystem section. Each key's TSDoc
 * carries its `@default`; its environment variable follows the naming rule
 * (docs/architecture.md, Core) unless stated.
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
    /**
     * Whether wall-clock latency budgets change what the system does. `enforce`: an epoch
     * over its control budget fails, a slow decision, step or hook pauses or holds growth.
     * `observe`: the same measurements and WARNING events, but no decision depends on
     * wall-clock time, so a run is reproducible from its seed under any machine load
     * (studies run this way). Deadlines of control calls stay enforced either way.
     * @default "enforce"
     */
    latencyBudgets: setting.enum(['enforce', 'observe'], { default: 'enforce' }),
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
     * Bus backend: `memory://` (embedded, in-process), `redis://[:password@]host:port/db`
     * (`rediss://` for TLS), or `redis+cluster://[:password@]host:port` (`rediss+cluster://`),
     * one seed node of a Redis Cluster. The password is redacted in logs. @default "memory://"
     */
    busUrl: setting.url({ default: 'memory://', protocols: ['memory:', 'redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:'] }),
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
    /** URL (http/https) that receives each alert event as a JSON POST; unset means none. Secret. @default unset */
    alertWebhookUrl: setting.secret(),
    /** Deadline of one webhook POST attempt. @default 2000 */
    alertWebhookTimeoutMs: setting.integer({ default: 2_000, min: 1, max: MAX_TIMER_MS }),
    /** Further webhook attempts after a transient failure (network, timeout, 408, 429, 5xx). @default 2 */
    alertWebhookRetries: setting.integer({ default: 2, min: 0, max: 10 }),
    /** Prometheus scrape interval the exported alert rules assume (`for:` = (N − 1) × it). @default 15 */
    prometheusScrapeIntervalSeconds: setting.integer({ default: 15, min: 1 }),
    /** Target of Nissa's SLOs (share of good events). @default 0.99 */
    sloTarget: setting.number({ default: 0.99, greaterThan: 0, max: 0.999_999 }),
    /** A bus message handled later than this after its publication violates the bus-lag SLO. @default 1000 */
    sloBusLagBudgetMs: setting.number({ default: 1_000, greaterThan: 0 }),
    /** The event store (SQLite): telemetry events and field reports. @default "<storage.varDir>/nissa/events.db" */
    eventStorePath: setting.varPath('nissa/events.db'),
    /** Stored events and field reports older than this (by receipt) are pruned. @default 168 */
    eventRetentionHours: setting.integer({ default: 168, min: 1 }),
    /** Rows kept per event-store table (telemetry events, field reports); the oldest go first. @default 1000000 */
    eventMaxRows: setting.integer({ default: 1_000_000, min: 1 }),
    /** Interval between the service's prunes of the event store. @default 60000 */
    eventPruneIntervalMs: setting.integer({ default: 60_000, min: 1, max: MAX_TIMER_MS }),
  },

  /** The training orchestrator. */
  tolaria: {
    /** Deadline of one Tamiyo evaluation, measured from submission. @default 2000 */
    tamiyoTimeoutMs: setting.integer({ default: 2_000, min: 1, max: MAX_TIMER_MS }),
    /** Deadline of one Kasmina command application. @default 2000 */
    kasminaTimeoutMs: setting.integer({ default: 2_000, min: 1, max: MAX_TIMER_MS }),
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
      deadlineMs: setting.integer({ default: 12_000, min: 1, max: MAX_TIMER_MS }),
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

  /** The supervisor of `esper up` / `esper run --distributed` (its services are OS processes). */
  weatherlight: {
    /** First restart delay of a crashed service, doubled per consecutive crash. @default 1000 */
    backoffBaseMs: setting.integer({ default: 1_000, min: 1, max: MAX_TIMER_MS }),
    /** Longest restart delay (before up to 25 % jitter). @default 30000 */
    backoffMaxMs: setting.integer({ default: 30_000, min: 1, max: MAX_TIMER_MS }),
    /** Restarts of one service allowed within `restartWindowMs`; past it the service stays down. @default 5 */
    restartBudget: setting.integer({ default: 5, min: 0 }),
    /** Window of the restart budget. @default 300000 */
    restartWindowMs: setting.integer({ default: 300_000, min: 1 }),
    /** A run of a service this long resets its backoff. @default 60000 */
    healthyAfterMs: setting.integer({ default: 60_000, min: 0 }),
    /** Health and mode are published this often. @default 10000 */
    telemetryIntervalMs: setting.integer({ default: 10_000, min: 1, max: MAX_TIMER_MS }),
    /** How long stopping services may drain before they are killed. @default 10000 */
    drainDeadlineMs: setting.integer({ default: 10_000, min: 0, max: MAX_TIMER_MS }),
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
    /**
     * The GNN policy decides at epoch ends by sampling from its distribution over growth
     * decisions (seeded per run) and its field reports carry the decision context Simic
     * learns from; off, it decodes every head's argmax at every call. @default false
     */
    gnnSampling: setting.boolean({ default: false }),
    /**
     * Seed of the GNN policy's initial weights, the same for every run and for Simic (its
     * version is then `tamiyo-gnn-init-<seed>`); required by `esper serve simic`. Unset, each
     * run draws them from its own seed. @default unset
     */
    gnnInitSeed: setting.optionalInteger({ min: 0 }),
  },
  simic: {
    /** Directory of Simic's durable replay buffer. @default "<storage.varDir>/simic/replay" */
    replayDir: setting.varPath('simic/replay'),
    /** Most field reports the replay buffer holds; the oldest is evicted first. @default 1024 */
    replayCapacity: setting.integer({ default: 1024, min: 1 }),
    /** Field reports older than this (by receipt time) leave the replay buffer. @default 24 */
    replayTtlHours: setting.integer({ default: 24, min: 1 }),
    /** Usable field reports (of the version being trained) per PPO update. @default 32 */
    reportsPerUpdate: setting.integer({ default: 32, min: 1 }),
    /** Simic's current policy, kept across restarts. @default "<storage.varDir>/simic/policy.bin" */
    policyFile: setting.varPath('simic/policy.bin'),
    /**
     * Study task (`name` or `name@version`) of the held-out evaluation before each publish:
     * the candidate, the current policy and the heuristic play it on held-out seeds; empty,
     * no evaluation and nothing is published. @default "spirals-mlp"
     */
    evaluationTask: setting.string({ default: 'spirals-mlp', allowEmpty: true, pattern: /^[a-z0-9-]*(@[0-9]+)?$/ }),
    /** Held-out seeds of each evaluation. @default 4 */
    evaluationSeeds: setting.integer({ default: 4, min: 2, max: 1000 }),
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
