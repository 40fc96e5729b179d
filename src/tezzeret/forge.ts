/**
 * The Tezzeret forge (reference prototype-blueprint-pipeline §3): compiles a list of
 * (blueprint, site) jobs into Urza, resumably, with a per-job deadline, retries with
 * backoff, a breaker and conservative mode, and announces each artifact on Oona.
 *
 * Job WAL. Every job appends a durable `started` record before it compiles and a `done`
 * record (with the artifact checksum) after Urza committed the artifact. A later `run`
 * skips a job whose last record is `done` only after loading it back from Urza and
 * finding the same checksum (Urza re-verifies the file's SHA-256 on that load); every
 * other job — never started, interrupted after `started`, failed, or done but missing or
 * different in Urza — is compiled again. Urza's save is atomic, so a crash at any point
 * leaves the catalog with either no artifact for the interrupted job or a complete one;
 * redoing the job replaces it. When a run ends with every job done the WAL is compacted
 * to one `done` record per job.
 *
 * Deliberate deviations from the prototype:
 * - Deadlines. The compile runs through an {@link AsyncWorker} with the job's deadline.
 *   Compilation is synchronous tensor work, so the deadline can only fire at the compile's
 *   own awaits; the forge therefore also compares the measured duration with the deadline
 *   when the compile returns, and an overrun counts as a timeout whose artifact is
 *   discarded (never saved). The forge always waits for an abandoned compile to settle
 *   before starting the next one (no two compiles at once, no leaked tensors). The
 *   prototype's clamp of the timeout to ≥ 1 s is not kept.
 * - A job that fails is retried (transient errors only, up to `maxRetries`) with
 *   exponential backoff; a job that still fails is recorded `failed` and the run goes on
 *   with the next job. The run stops (jobs left for the next run) only when the breaker
 *   refuses, instead of propagating the first exception.
 * - The breaker is the core {@link CircuitBreaker}, so it has a half-open state
 *   (`tezzeret.breaker.state` = 0 closed, 1 half-open, 2 open).
 * - Conservative mode (§3.2) is entered after a compile timeout or when the breaker opens,
 *   and left after the next successful compile. In it the forge compiles with its
 *   conservative compiler — by default one prewarm pass at batch 1 instead of the standard
 *   compiler's N passes — and gives the compile twice the deadline. tfjs has no compile
 *   strategies to switch, so "conservative" means less measurement work and more time.
 * - The forge publishes `KernelCatalogUpdate` itself when given a bus (the prototype only
 *   did so through its pipeline notifier). A failed publish is counted and reported but
 *   does not fail the job: the artifact is already in Urza.
 */
import { create } from '@bufbuild/protobuf';
import {
  AsyncWorker,
  buildTelemetryPacket,
  CircuitBreaker,
  ErrorCode,
  EsperError,
  isEsperError,
  RecordLog,
  systemClock,
  type Clock,
  type EventInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  CircuitBreakerState,
  KernelCatalogUpdateSchema,
  SeedSiteKind,
  TelemetryLevel,
  type BlueprintDescriptor,
  type SeedSiteDescriptor,
} from '../leyline/index.js';
import type { KarnCatalog, BlueprintParameters } from '../karn/index.js';
import type { Bus } from '../oona/index.js';
import { sha256Hex } from './artifact.js';
import { TezzeretCompiler, type CompiledArtifact, type CompileOptions } from './compiler.js';

/** Telemetry source of the forge's packets. */
export const TEZZERET_FORGE_SOURCE = 'tezzeret';

/** Forge metric names, spelled as reference §3.3 / §7 gives them (plus `skipped`/`resumed`/`timed_out`). */
export const TezzeretForgeMetric = {
  BREAKER_STATE: 'tezzeret.breaker.state',
  BREAKER_OPEN_TOTAL: 'tezzeret.breaker.open_total',
  COMPILE_CONSECUTIVE_FAILURES: 'tezzeret.compile.consecutive_failures',
  BREAKER_CONSECUTIVE_FAILURES: 'tezzeret.breaker.consecutive_failures',
  MODE_CONSERVATIVE: 'tezzeret.mode.conservative',
  JOBS_TOTAL: 'tezzeret.jobs.total',
  JOBS_STARTED: 'tezzeret.jobs.started',
  JOBS_COMPLETED: 'tezzeret.jobs.completed',
  JOBS_FAILED: 'tezzeret.jobs.failed',
  JOBS_RETRIED: 'tezzeret.jobs.retried',
  /** Jobs skipped because the WAL says done and Urza holds the same checksum. */
  JOBS_SKIPPED: 'tezzeret.jobs.skipped',
  /** Jobs redone because the WAL shows them started but not done (a crash). */
  JOBS_RESUMED: 'tezzeret.jobs.resumed',
  FAILED_ATTEMPTS: 'tezzeret.compilation.failed_attempts',
  TIMED_OUT: 'tezzeret.compilation.timed_out',
  PUBLISH_FAILED: 'tezzeret.publish.failed',
} as const;

/** Union of {@link TezzeretForgeMetric} values. */
export type TezzeretForgeMetric = (typeof TezzeretForgeMetric)[keyof typeof TezzeretForgeMetric];

/** Forge event names (reference §3.1–§3.2, §7). */
export const TezzeretForgeEvent = {
  COMPILE_STARTED: 'tezzeret.compile_started',
  COMPILE_SUCCEEDED: 'tezzeret.compile_succeeded',
  COMPILE_FAILED: 'tezzeret.compile_failed',
  BREAKER_OPEN: 'tezzeret.breaker_open',
  BREAKER_OPEN_SKIP: 'tezzeret.breaker_open_skip',
} as const;

/** Union of {@link TezzeretForgeEvent} values. */
export type TezzeretForgeEvent = (typeof TezzeretForgeEvent)[keyof typeof TezzeretForgeEvent];

/** Compile strategies of the forge. */
export const ForgeStrategy = { STANDARD: 'standard', CONSERVATIVE: 'conservative' } as const;

/** Union of {@link ForgeStrategy} values. */
export type ForgeStrategy = (typeof ForgeStrategy)[keyof typeof ForgeStrategy];

/** The slice of {@link TezzeretCompiler} the forge uses. */
export interface ForgeCompiler {
  readonly catalog: KarnCatalog;
  compile(
    descriptor: BlueprintDescriptor,
    parameters: BlueprintParameters,
    site: SeedSiteDescriptor,
    options: CompileOptions,
  ): Promise<CompiledArtifact>;
}

/** One forge job: a blueprint compiled for one site. */
export interface ForgeJob {
  readonly blueprintId: string;
  readonly site: SeedSiteDescriptor;
  /** Urza site key of the artifact. @default {@link siteKeyOf}(site) */
  readonly siteKey?: string;
}

/**
 * The slice of an artifact library the forge needs — Urza's `UrzaLibrary` provides it.
 * Declared here so Tezzeret does not depend on Urza (Urza loads artifacts through
 * Tezzeret's loader); the composition root passes the library in.
 */
export interface ForgeArtifactStore {
  save(input: {
    readonly descriptor: BlueprintDescriptor;
    readonly siteKey: string;
    readonly artifact: Uint8Array;
    readonly guardDigest: string;
    readonly compileMs: number;
    readonly prewarm: { readonly p50Ms: number; readonly p95Ms: number };
  }): Promise<{ readonly checksum: string; readonly guardDigest: string }>;
  /** Loads and verifies an artifact; throws `URZA_NOT_FOUND` / `URZA_INTEGRITY_FAILURE`. */
  load(blueprintId: string, siteKey: string): Promise<{ readonly record: { readonly checksum: string; readonly guardDigest: string } }>;
  /** The reference consumers fetch the artifact by (`KernelCatalogUpdate.artifact_ref`). */
  artifactRef(blueprintId: string, siteKey: string): string;
}

/** Options of {@link TezzeretForge}. */
export interface TezzeretForgeOptions {
  readonly compiler: ForgeCompiler;
  /**
   * Compiler used in conservative mode.
   * @default a `TezzeretCompiler` on the same catalog with one prewarm pass at batch 1
   */
  readonly conservativeCompiler?: ForgeCompiler;
  readonly library: ForgeArtifactStore;
  /** Where `KernelCatalogUpdate` is published. @default none (nothing published) */
  readonly bus?: Bus;
  /** Receives one packet per job outcome and per breaker event. @default none */
  readonly telemetry?: TelemetrySink;
  /** Path of the job WAL (a core `RecordLog` of JSON records); its directory is created. */
  readonly walPath: string;
  /** Deadline of one compile attempt, in milliseconds (doubled in conservative mode). @default 60000 */
  readonly timeoutMs?: number;
  /** Further attempts of a job after a transient failure. @default 2 */
  readonly maxRetries?: number;
  /** First retry delay, in milliseconds; doubles per retry. @default 100 */
  readonly backoffBaseMs?: number;
  /** Longest retry delay, in milliseconds. @default 5000 */
  readonly backoffMaxMs?: number;
  /** Consecutive failed attempts that open the breaker. @default 3 */
  readonly breakerFailureThreshold?: number;
  /** How long the breaker stays open, in milliseconds. @default min(60000, 2 × timeoutMs) */
  readonly breakerOpenTimeoutMs?: number;
  /** Seed of a job's weights. @default a hash of the job key (stable across runs) */
  readonly seedOf?: (job: Required<ForgeJob>) => number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link TezzeretForgeOptions}. */
export const TEZZERET_FORGE_DEFAULTS = Object.freeze({
  timeoutMs: 60_000,
  maxRetries: 2,
  backoffBaseMs: 100,
  backoffMaxMs: 5_000,
  breakerFailureThreshold: 3,
  breakerOpenTimeoutMsCap: 60_000,
});

/** Outcome of one job in a run. */
export interface ForgeJobResult {
  readonly blueprintId: string;
  readonly siteKey: string;
  readonly status: 'completed' | 'skipped' | 'failed' | 'not_attempted';
  /** Artifact checksum (completed and skipped jobs). */
  readonly checksum?: string;
  readonly guardDigest?: string;
  readonly strategy?: ForgeStrategy;
  readonly attempts: number;
  /** Whether the WAL showed this job started but not done (an interrupted job). */
  readonly resumed: boolean;
  /** `timeout`, an error code, or an error class name (failed jobs). */
  readonly reason?: string;
}

/** Summary of {@link TezzeretForge.run}. */
export interface ForgeRunSummary {
  readonly jobs: readonly ForgeJobResult[];
  readonly completed: number;
  readonly skipped: number;
  readonly resumed: number;
  readonly failed: number;
  readonly notAttempted: number;
  /** Whether the run stopped early because the breaker refused. */
  readonly stoppedByBreaker: boolean;
  readonly durationMs: number;
}

type WalRecord =
  | { readonly v: 1; readonly type: 'started'; readonly job: string; readonly attempt: number; readonly strategy: ForgeStrategy }
  | { readonly v: 1; readonly type: 'done'; readonly job: string; readonly checksum: string; readonly guardDigest: string }
  | { readonly v: 1; readonly type: 'failed'; readonly job: string; readonly reason: string };

type WalState = { readonly type: 'started' } | { readonly type: 'done'; readonly checksum: string } | { readonly type: 'failed' };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Urza site key of a site: `<kind>:<d1>x<d2>…`, e.g. `dense:256`, `conv:16x16x32`. */
export function siteKeyOf(site: SeedSiteDescriptor): string {
  const kind = (SeedSiteKind[site.kind] as string | undefined)?.toLowerCase() ?? `kind${site.kind}`;
  return `${kind}:${site.shape.join('x')}`;
}

/** Every descriptor of `catalog` × every site in `sites` that its family fits, in catalog order. */
export function forgeJobsFor(catalog: KarnCatalog, sites: readonly SeedSiteDescriptor[]): ForgeJob[] {
  const jobs: ForgeJob[] = [];
  for (const descriptor of catalog.list()) {
    const family = catalog.familyOf(descriptor.blueprintId);
    for (const site of sites) if (family.fits(site)) jobs.push({ blueprintId: descriptor.blueprintId, site, siteKey: siteKeyOf(site) });
  }
  return jobs;
}

const TERMINAL_CODES: ReadonlySet<string> = new Set([
  ErrorCode.INVALID_ARGUMENT,
  ErrorCode.KARN_BLUEPRINT_NOT_FOUND,
  ErrorCode.KARN_PARAMETER_INVALID,
  ErrorCode.KARN_SITE_UNSUPPORTED,
]);

function isTransient(error: unknown): boolean {
  return !(isEsperError(error) && TERMINAL_CODES.has(error.code));
}

function reasonOf(error: unknown): string {
  if (isEsperError(error, ErrorCode.TEZZERET_COMPILE_TIMEOUT)) return 'timeout';
  if (isEsperError(error)) return error.code;
  return error instanceof Error ? error.name : typeof error;
}

function invalid(field: string, value: unknown, expected: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `TezzeretForgeOptions.${field} must be ${expected}, got ${String(value)}`, {
    details: { field },
  });
}

function sleepMs(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Forges kernel artifacts into Urza with a job WAL; see the module comment for the
 * recovery, deadline, retry, breaker and conservative-mode rules. One `run` at a time.
 */
export class TezzeretForge {
  readonly #compiler: ForgeCompiler;
  readonly #conservative: ForgeCompiler;
  readonly #library: ForgeArtifactStore;
  readonly #bus: Bus | undefined;
  readonly #telemetry: TelemetrySink | undefined;
  readonly #walPath: string;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #breaker: CircuitBreaker;
  readonly #seedOf: (job: Required<ForgeJob>) => number;
  readonly #clock: Clock;
  readonly #metrics = new Map<TezzeretForgeMetric, number>();
  #conservativeMode = false;
  #consecutiveFailures = 0;
  #running = false;

  constructor(options: TezzeretForgeOptions) {
    const timeoutMs = options.timeoutMs ?? TEZZERET_FORGE_DEFAULTS.timeoutMs;
    const maxRetries = options.maxRetries ?? TEZZERET_FORGE_DEFAULTS.maxRetries;
    const backoffBaseMs = options.backoffBaseMs ?? TEZZERET_FORGE_DEFAULTS.backoffBaseMs;
    const backoffMaxMs = options.backoffMaxMs ?? TEZZERET_FORGE_DEFAULTS.backoffMaxMs;
    const threshold = options.breakerFailureThreshold ?? TEZZERET_FORGE_DEFAULTS.breakerFailureThreshold;
    const openMs = options.breakerOpenTimeoutMs ?? Math.min(TEZZERET_FORGE_DEFAULTS.breakerOpenTimeoutMsCap, 2 * timeoutMs);
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw invalid('timeoutMs', timeoutMs, 'a finite number > 0');
    if (!(Number.isInteger(maxRetries) && maxRetries >= 0)) throw invalid('maxRetries', maxRetries, 'an integer ≥ 0');
    if (!(Number.isFinite(backoffBaseMs) && backoffBaseMs >= 0)) throw invalid('backoffBaseMs', backoffBaseMs, 'a finite number ≥ 0');
    if (!(Number.isFinite(backoffMaxMs) && backoffMaxMs >= backoffBaseMs))
      throw invalid('backoffMaxMs', backoffMaxMs, 'a finite number ≥ backoffBaseMs');
    if (typeof options.walPath !== 'string' || options.walPath.length === 0) throw invalid('walPath', options.walPath, 'a non-empty path');
    this.#compiler = options.compiler;
    this.#conservative =
      options.conservativeCompiler ?? new TezzeretCompiler({ catalog: options.compiler.catalog, prewarmSamples: 1, prewarmBatch: 1 });
    this.#library = options.library;
    this.#bus = options.bus;
    this.#telemetry = options.telemetry;
    this.#walPath = options.walPath;
    this.#timeoutMs = timeoutMs;
    this.#maxRetries = maxRetries;
    this.#backoffBaseMs = backoffBaseMs;
    this.#backoffMaxMs = backoffMaxMs;
    this.#clock = options.clock ?? systemClock;
    this.#breaker = new CircuitBreaker({
      name: 'tezzeret-forge',
      failureThreshold: threshold,
      openTimeoutMs: openMs,
      clock: this.#clock,
      onStateChange: (change) => {
        if (change.to !== CircuitBreakerState.CIRCUIT_STATE_OPEN) return;
        this.#conservativeMode = true;
        this.#emit([
          {
            description: TezzeretForgeEvent.BREAKER_OPEN,
            level: TelemetryLevel.ERROR,
            attributes: { backoff_ms: openMs, failures: this.#consecutiveFailures, reason: change.snapshot.lastFailureReason ?? '' },
          },
        ]);
      },
    });
    this.#seedOf = options.seedOf ?? ((job) => Number.parseInt(sha256Hex(encoder.encode(jobKey(job))).slice(0, 8), 16));
    for (const name of Object.values(TezzeretForgeMetric)) this.#metrics.set(name, 0);
  }

  /** Whether conservative mode is on. */
  get conservativeMode(): boolean {
    return this.#conservativeMode;
  }

  /** Forges every default descriptor of the compiler's catalog × every site in `sites` it fits. */
  forgeAll(sites: readonly SeedSiteDescriptor[], options: { signal?: AbortSignal } = {}): Promise<ForgeRunSummary> {
    return this.run(forgeJobsFor(this.#compiler.catalog, sites), options);
  }

  /**
   * Runs `jobs` in order, skipping those the WAL shows done and Urza verifies, redoing the
   * rest. Resolves with a summary; failed jobs are reported there, not thrown. Throws
   * `INVALID_STATE` when a run is already in progress, `TEZZERET_FORGE_WAL_INVALID` for an
   * unreadable WAL record, and the abort reason when `signal` aborts (between steps).
   */
  async run(jobs: readonly ForgeJob[], options: { signal?: AbortSignal } = {}): Promise<ForgeRunSummary> {
    if (this.#running) throw new EsperError(ErrorCode.INVALID_STATE, 'TezzeretForge.run is already in progress');
    this.#running = true;
    const startMs = this.#clock.monotonicMs();
    const wal = await RecordLog.open(this.#walPath);
    const worker = new AsyncWorker({ name: 'tezzeret-forge', maxConcurrency: 1, maxQueueDepth: 1 });
    try {
      const states = await readWal(wal);
      const results: ForgeJobResult[] = [];
      let stoppedByBreaker = false;
      const normalised = jobs.map((j) => ({ blueprintId: j.blueprintId, site: j.site, siteKey: j.siteKey ?? siteKeyOf(j.site) }));
      for (const job of normalised) {
        const key = jobKey(job);
        if (stoppedByBreaker) {
          results.push({ blueprintId: job.blueprintId, siteKey: job.siteKey, status: 'not_attempted', attempts: 0, resumed: false });
          continue;
        }
        options.signal?.throwIfAborted();
        const state = states.get(key);
        if (state?.type === 'done') {
          const verified = await this.#verify(job, state.checksum);
          if (verified !== undefined) {
            this.#bump(TezzeretForgeMetric.JOBS_SKIPPED);
            results.push({
              ...identify(job),
              status: 'skipped',
              checksum: state.checksum,
              guardDigest: verified,
              attempts: 0,
              resumed: false,
            });
            continue;
          }
        }
        const resumed = state?.type === 'started';
        if (resumed) this.#bump(TezzeretForgeMetric.JOBS_RESUMED);
        const { result, stop } = await this.#forgeJob(job, wal, worker, resumed, options.signal);
        if (stop) {
          stoppedByBreaker = true;
          this.#emit([
            {
              description: TezzeretForgeEvent.BREAKER_OPEN_SKIP,
              level: TelemetryLevel.WARNING,
              attributes: { blueprint_id: job.blueprintId, site_key: job.siteKey },
            },
          ]);
        }
        results.push(result);
      }
      this.#metrics.set(TezzeretForgeMetric.JOBS_TOTAL, (this.#metrics.get(TezzeretForgeMetric.JOBS_TOTAL) ?? 0) + normalised.length);
      if (results.every((r) => r.status === 'completed' || r.status === 'skipped')) await compactWal(wal);
      const count = (status: ForgeJobResult['status']): number => results.filter((r) => r.status === status).length;
      return {
        jobs: results,
        completed: count('completed'),
        skipped: count('skipped'),
        resumed: results.filter((r) => r.resumed).length,
        failed: count('failed'),
        notAttempted: count('not_attempted'),
        stoppedByBreaker,
        durationMs: this.#clock.monotonicMs() - startMs,
      };
    } finally {
      this.#running = false;
      await worker.close();
      await wal.close();
    }
  }

  /** Forge metrics (names in {@link TezzeretForgeMetric}), gauges refreshed. */
  metricsSnapshot(): Record<string, number> {
    const snapshot = this.#breaker.snapshot();
    this.#metrics.set(TezzeretForgeMetric.BREAKER_STATE, breakerGauge(snapshot.state));
    this.#metrics.set(TezzeretForgeMetric.BREAKER_OPEN_TOTAL, snapshot.openedTotal);
    this.#metrics.set(TezzeretForgeMetric.COMPILE_CONSECUTIVE_FAILURES, this.#consecutiveFailures);
    this.#metrics.set(TezzeretForgeMetric.BREAKER_CONSECUTIVE_FAILURES, this.#consecutiveFailures);
    this.#metrics.set(TezzeretForgeMetric.MODE_CONSERVATIVE, this.#conservativeMode ? 1 : 0);
    return Object.fromEntries(this.#metrics);
  }

  /** The guard digest when Urza holds `job` with `checksum` (file verified on load), else undefined. */
  async #verify(job: Required<ForgeJob>, checksum: string): Promise<string | undefined> {
    try {
      const loaded = await this.#library.load(job.blueprintId, job.siteKey);
      return loaded.record.checksum === checksum ? loaded.record.guardDigest : undefined;
    } catch (error) {
      if (isEsperError(error, ErrorCode.URZA_NOT_FOUND) || isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) return undefined;
      throw error;
    }
  }

  async #forgeJob(
    job: Required<ForgeJob>,
    wal: RecordLog,
    worker: AsyncWorker,
    resumed: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ result: ForgeJobResult; stop: boolean }> {
    const key = jobKey(job);
    const catalog = this.#compiler.catalog;
    let attempts = 0;
    let lastReason = '';
    let counted = false;
    for (;;) {
      signal?.throwIfAborted();
      if (!this.#breaker.allow()) {
        if (attempts > 0) {
          await wal.append(encodeRecord({ v: 1, type: 'failed', job: key, reason: lastReason }));
          this.#bump(TezzeretForgeMetric.JOBS_FAILED);
        }
        const status = attempts > 0 ? 'failed' : 'not_attempted';
        return { result: { ...identify(job), status, attempts, resumed, reason: attempts > 0 ? lastReason : 'breaker_open' }, stop: true };
      }
      attempts += 1;
      const strategy: ForgeStrategy = this.#conservativeMode ? ForgeStrategy.CONSERVATIVE : ForgeStrategy.STANDARD;
      if (!counted) {
        this.#bump(TezzeretForgeMetric.JOBS_STARTED);
        counted = true;
      } else {
        this.#bump(TezzeretForgeMetric.JOBS_RETRIED);
      }
      await wal.append(encodeRecord({ v: 1, type: 'started', job: key, attempt: attempts, strategy }));
      this.#emit([
        {
          description: TezzeretForgeEvent.COMPILE_STARTED,
          attributes: { blueprint_id: job.blueprintId, site_key: job.siteKey, strategy, attempt: attempts },
        },
      ]);
      try {
        const descriptor = catalog.get(job.blueprintId);
        const artifact = await this.#compileWithDeadline(job, descriptor, strategy, worker);
        const record = await this.#library.save({
          descriptor,
          siteKey: job.siteKey,
          artifact: artifact.bytes,
          guardDigest: artifact.guardDigest,
          compileMs: artifact.compileMs,
          prewarm: { p50Ms: artifact.prewarm.p50Ms, p95Ms: artifact.prewarm.p95Ms },
        });
        await wal.append(encodeRecord({ v: 1, type: 'done', job: key, checksum: record.checksum, guardDigest: record.guardDigest }));
        this.#breaker.recordSuccess();
        this.#consecutiveFailures = 0;
        this.#conservativeMode = false;
        this.#bump(TezzeretForgeMetric.JOBS_COMPLETED);
        this.#emit([
          {
            description: TezzeretForgeEvent.COMPILE_SUCCEEDED,
            attributes: {
              blueprint_id: job.blueprintId,
              site_key: job.siteKey,
              strategy,
              checksum: record.checksum,
              compile_ms: artifact.compileMs.toFixed(2),
              prewarm_ms: artifact.prewarm.p50Ms.toFixed(2),
            },
          },
        ]);
        await this.#publish(job, record.checksum, artifact);
        return {
          result: {
            ...identify(job),
            status: 'completed',
            checksum: record.checksum,
            guardDigest: record.guardDigest,
            strategy,
            attempts,
            resumed,
          },
          stop: false,
        };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        lastReason = reasonOf(error);
        this.#consecutiveFailures += 1;
        this.#bump(TezzeretForgeMetric.FAILED_ATTEMPTS);
        if (lastReason === 'timeout') {
          this.#bump(TezzeretForgeMetric.TIMED_OUT);
          this.#conservativeMode = true;
        }
        this.#emit([
          {
            description: TezzeretForgeEvent.COMPILE_FAILED,
            level: TelemetryLevel.WARNING,
            attributes: { blueprint_id: job.blueprintId, site_key: job.siteKey, strategy, reason: lastReason, attempt: attempts },
          },
        ]);
        this.#breaker.recordFailure(lastReason);
        if (!isTransient(error) || attempts > this.#maxRetries) break;
        const delayMs = Math.min(this.#backoffMaxMs, this.#backoffBaseMs * 2 ** (attempts - 1));
        await sleepMs(delayMs, signal);
      }
    }
    await wal.append(encodeRecord({ v: 1, type: 'failed', job: key, reason: lastReason }));
    this.#bump(TezzeretForgeMetric.JOBS_FAILED);
    return { result: { ...identify(job), status: 'failed', attempts, resumed, reason: lastReason }, stop: false };
  }

  /**
   * One compile under the deadline. The worker rejects at the deadline if the compile is
   * at an await; otherwise the measured duration decides once it returns. Either way the
   * compile is allowed to settle before this returns, and a late artifact is discarded.
   */
  async #compileWithDeadline(
    job: Required<ForgeJob>,
    descriptor: BlueprintDescriptor,
    strategy: ForgeStrategy,
    worker: AsyncWorker,
  ): Promise<CompiledArtifact> {
    const compiler = strategy === ForgeStrategy.CONSERVATIVE ? this.#conservative : this.#compiler;
    const deadlineMs = strategy === ForgeStrategy.CONSERVATIVE ? 2 * this.#timeoutMs : this.#timeoutMs;
    const parameters = compiler.catalog.defaultParameters(job.blueprintId);
    let inner: Promise<CompiledArtifact> | undefined;
    const startMs = this.#clock.monotonicMs();
    const handle = worker.submit(
      () => {
        inner = compiler.compile(descriptor, parameters, job.site, { seed: this.#seedOf(job) });
        return inner;
      },
      { deadlineMs, name: jobKey(job) },
    );
    let artifact: CompiledArtifact;
    try {
      artifact = await handle.result;
    } catch (error) {
      if (!isEsperError(error, ErrorCode.WORKER_TIMEOUT)) throw error;
      await inner?.catch(() => undefined);
      throw timeoutError(job, deadlineMs, this.#clock.monotonicMs() - startMs, error);
    }
    const elapsedMs = this.#clock.monotonicMs() - startMs;
    if (elapsedMs > deadlineMs) throw timeoutError(job, deadlineMs, elapsedMs, undefined);
    return artifact;
  }

  async #publish(job: Required<ForgeJob>, checksum: string, artifact: CompiledArtifact): Promise<void> {
    if (this.#bus === undefined) return;
    const update = create(KernelCatalogUpdateSchema, {
      blueprintId: job.blueprintId,
      artifactRef: this.#library.artifactRef(job.blueprintId, job.siteKey),
      checksum,
      guardDigest: artifact.guardDigest,
      compileMs: artifact.compileMs,
      prewarmMs: artifact.prewarm.p50Ms,
    });
    try {
      await this.#bus.publish(update);
    } catch (error) {
      this.#bump(TezzeretForgeMetric.PUBLISH_FAILED);
      this.#emit([
        {
          description: 'tezzeret.publish_failed',
          level: TelemetryLevel.WARNING,
          attributes: { blueprint_id: job.blueprintId, reason: reasonOf(error) },
        },
      ]);
    }
  }

  #emit(events: readonly EventInput[]): void {
    if (this.#telemetry === undefined) return;
    const metrics = Object.entries(this.metricsSnapshot()).map(([name, value]) => ({ name, value, unit: 'count' }));
    const level =
      this.#breaker.state === CircuitBreakerState.CIRCUIT_STATE_OPEN || this.#conservativeMode
        ? TelemetryLevel.WARNING
        : TelemetryLevel.INFO;
    this.#telemetry.emit(buildTelemetryPacket({ source: TEZZERET_FORGE_SOURCE, metrics, events, level, clock: this.#clock }));
  }

  #bump(metric: TezzeretForgeMetric): void {
    this.#metrics.set(metric, (this.#metrics.get(metric) ?? 0) + 1);
  }
}

function jobKey(job: { readonly blueprintId: string; readonly siteKey: string }): string {
  return `${job.blueprintId}@${job.siteKey}`;
}

function identify(job: Required<ForgeJob>): { blueprintId: string; siteKey: string } {
  return { blueprintId: job.blueprintId, siteKey: job.siteKey };
}

function breakerGauge(state: CircuitBreakerState): number {
  if (state === CircuitBreakerState.CIRCUIT_STATE_OPEN) return 2;
  if (state === CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN) return 1;
  return 0;
}

function timeoutError(job: Required<ForgeJob>, deadlineMs: number, elapsedMs: number, cause: unknown): EsperError {
  return new EsperError(
    ErrorCode.TEZZERET_COMPILE_TIMEOUT,
    `compile of ${jobKey(job)} took ${elapsedMs.toFixed(1)} ms, over its ${deadlineMs} ms deadline`,
    {
      details: { blueprintId: job.blueprintId, siteKey: job.siteKey, deadlineMs },
      cause,
    },
  );
}

function encodeRecord(record: WalRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

function decodeRecord(payload: Uint8Array, offset: number): WalRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(payload));
  } catch (error) {
    throw new EsperError(ErrorCode.TEZZERET_FORGE_WAL_INVALID, `forge WAL record at byte ${offset} is not JSON`, {
      details: { offset },
      cause: error,
    });
  }
  const r = parsed as Partial<Record<string, unknown>>;
  const ok =
    r.v === 1 &&
    typeof r.job === 'string' &&
    ((r.type === 'started' && typeof r.attempt === 'number') ||
      (r.type === 'done' && typeof r.checksum === 'string' && typeof r.guardDigest === 'string') ||
      (r.type === 'failed' && typeof r.reason === 'string'));
  if (!ok)
    throw new EsperError(ErrorCode.TEZZERET_FORGE_WAL_INVALID, `forge WAL record at byte ${offset} has an unknown shape`, {
      details: { offset },
    });
  return parsed as WalRecord;
}

async function readWal(wal: RecordLog): Promise<Map<string, WalState>> {
  const states = new Map<string, WalState>();
  for await (const { payload, offset } of wal.records()) {
    const record = decodeRecord(payload, offset);
    states.set(record.job, record.type === 'done' ? { type: 'done', checksum: record.checksum } : { type: record.type });
  }
  return states;
}

/** Keeps only each job's last record when it is `done`. */
async function compactWal(wal: RecordLog): Promise<void> {
  const last = new Map<string, number>();
  for await (const { payload, offset } of wal.records()) last.set(decodeRecord(payload, offset).job, offset);
  await wal.rewrite((payload, offset) => {
    const record = decodeRecord(payload, offset);
    return record.type === 'done' && last.get(record.job) === offset;
  });
}
