/**
 * The Tezzeret forge: compiles (blueprint, site) jobs into Urza, resumably through a job WAL
 * (`forge-wal.ts`), each compile under a deadline (`compile-deadline.ts`), failures governed
 * by retries, a breaker and conservative mode (`forge-governor.ts`), each artifact announced
 * with `KernelCatalogUpdate`. The rules and their departures from the prototype are in
 * docs/architecture.md (Tezzeret).
 */
import { create } from '@bufbuild/protobuf';
import {
  AsyncWorker,
  buildTelemetryPacket,
  ErrorCode,
  EsperError,
  isEsperError,
  MAX_TIMER_MS,
  optionChecks,
  runCleanup,
  systemClock,
  type Clock,
  type EventInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  CircuitBreakerState,
  KernelCatalogUpdateSchema,
  TelemetryLevel,
  type BlueprintDescriptor,
  type SeedSiteDescriptor,
} from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import { compileWithDeadline, type ForgeCompiler } from './compile-deadline.js';
import { TezzeretCompiler, type CompiledArtifact } from './compiler.js';
import { backoff, failureReason, ForgeGovernor } from './forge-governor.js';
import { defaultJobSeed, forgeJobsFor, jobKey, resolveJob, type ForgeJob, type ResolvedForgeJob } from './forge-jobs.js';
import { ForgeStrategy, ForgeWal } from './forge-wal.js';
import { TezzeretForgeEvent, TezzeretForgeMetric } from './names.js';

/** Telemetry source of the forge's packets. */
export const TEZZERET_FORGE_SOURCE = 'tezzeret';

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
  /** Path of the job WAL; its directory must exist (`createForge` creates it). */
  readonly walPath: string;
  /** Deadline of one compile attempt, in milliseconds (doubled in conservative mode), at most `MAX_TIMER_MS / 2`. @default 60000 */
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
  readonly seedOf?: (job: ResolvedForgeJob) => number;
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

/** One run's WAL and compile worker. */
interface RunContext {
  readonly wal: ForgeWal;
  readonly worker: AsyncWorker;
  readonly signal: AbortSignal | undefined;
}

/** Forges kernel artifacts into Urza with a job WAL. One `run` at a time. */
export class TezzeretForge {
  readonly #compiler: ForgeCompiler;
  readonly #conservative: ForgeCompiler;
  readonly #library: ForgeArtifactStore;
  readonly #bus: Bus | undefined;
  readonly #telemetry: TelemetrySink | undefined;
  readonly #walPath: string;
  readonly #timeoutMs: number;
  readonly #governor: ForgeGovernor;
  readonly #seedOf: (job: ResolvedForgeJob) => number;
  readonly #clock: Clock;
  readonly #metrics = new Map<TezzeretForgeMetric, number>();
  #running = false;

  constructor(options: TezzeretForgeOptions) {
    const check = optionChecks('TezzeretForge');
    // Doubled in conservative mode, and a deadline timer either way.
    const timeoutMs = check.number('timeoutMs', options.timeoutMs ?? TEZZERET_FORGE_DEFAULTS.timeoutMs, {
      greaterThan: 0,
      max: Math.floor(MAX_TIMER_MS / 2),
    });
    const maxRetries = check.integer('maxRetries', options.maxRetries ?? TEZZERET_FORGE_DEFAULTS.maxRetries, { min: 0 });
    const backoffBaseMs = check.nonNegative('backoffBaseMs', options.backoffBaseMs ?? TEZZERET_FORGE_DEFAULTS.backoffBaseMs);
    const backoffMaxMs = check.number('backoffMaxMs', options.backoffMaxMs ?? TEZZERET_FORGE_DEFAULTS.backoffMaxMs, {
      min: backoffBaseMs,
      max: MAX_TIMER_MS,
    });
    const openMs = options.breakerOpenTimeoutMs ?? Math.min(TEZZERET_FORGE_DEFAULTS.breakerOpenTimeoutMsCap, 2 * timeoutMs);
    check.nonEmptyString('walPath', options.walPath);
    this.#compiler = options.compiler;
    this.#conservative =
      options.conservativeCompiler ?? new TezzeretCompiler({ catalog: options.compiler.catalog, prewarmSamples: 1, prewarmBatch: 1 });
    this.#library = options.library;
    this.#bus = options.bus;
    this.#telemetry = options.telemetry;
    this.#walPath = options.walPath;
    this.#timeoutMs = timeoutMs;
    this.#clock = options.clock ?? systemClock;
    this.#governor = new ForgeGovernor({
      maxRetries,
      backoffBaseMs,
      backoffMaxMs,
      breakerFailureThreshold: options.breakerFailureThreshold ?? TEZZERET_FORGE_DEFAULTS.breakerFailureThreshold,
      breakerOpenTimeoutMs: openMs,
      clock: this.#clock,
      onBreakerOpen: (reason) =>
        this.#emit([
          {
            description: TezzeretForgeEvent.BREAKER_OPEN,
            level: TelemetryLevel.ERROR,
            attributes: { backoff_ms: openMs, failures: this.#governor.consecutiveFailures, reason },
          },
        ]),
    });
    this.#seedOf = options.seedOf ?? defaultJobSeed;
    for (const name of Object.values(TezzeretForgeMetric)) this.#metrics.set(name, 0);
  }

  /** Whether conservative mode is on. */
  get conservativeMode(): boolean {
    return this.#governor.conservativeMode;
  }

  /** Forges every default descriptor of the compiler's catalog × every site in `sites` it fits. */
  forgeAll(sites: readonly SeedSiteDescriptor[], options: { signal?: AbortSignal } = {}): Promise<ForgeRunSummary> {
    return this.run(forgeJobsFor(this.#compiler.catalog, sites), options);
  }

  /**
   * Runs `jobs` in order. A job is skipped only when the WAL says done *and* Urza loads it
   * with the same checksum; every other job — never started, interrupted, failed, or done but
   * missing or different in Urza — is compiled again. Failed jobs are reported in the
   * summary, not thrown; the run stops early (jobs left for the next run) only when the
   * breaker refuses. When every job ended done, the WAL is compacted to one record per job.
   * @throws EsperError `INVALID_STATE` when a run is already in progress,
   *   `TEZZERET_FORGE_WAL_INVALID` naming the WAL and offset of an unreadable record; the
   *   abort reason when `signal` aborts (between steps).
   */
  async run(jobs: readonly ForgeJob[], options: { signal?: AbortSignal } = {}): Promise<ForgeRunSummary> {
    if (this.#running) throw new EsperError(ErrorCode.INVALID_STATE, 'TezzeretForge.run is already in progress');
    this.#running = true;
    const startMs = this.#clock.monotonicMs();
    const wal = await ForgeWal.open(this.#walPath);
    const worker = new AsyncWorker({ name: 'tezzeret-forge', maxConcurrency: 1, maxQueueDepth: 1 });
    const context: RunContext = { wal, worker, signal: options.signal };
    try {
      const states = await wal.states();
      const results: ForgeJobResult[] = [];
      let stoppedByBreaker = false;
      const resolved = jobs.map(resolveJob);
      for (const job of resolved) {
        if (stoppedByBreaker) {
          results.push({ ...identify(job), status: 'not_attempted', attempts: 0, resumed: false });
          continue;
        }
        options.signal?.throwIfAborted();
        const state = states.get(jobKey(job));
        const verifiedDigest = state?.type === 'done' ? await this.#verify(job, state.checksum) : undefined;
        if (state?.type === 'done' && verifiedDigest !== undefined) {
          this.#bump(TezzeretForgeMetric.JOBS_SKIPPED);
          results.push({
            ...identify(job),
            status: 'skipped',
            checksum: state.checksum,
            guardDigest: verifiedDigest,
            attempts: 0,
            resumed: false,
          });
          continue;
        }
        const resumed = state?.type === 'started';
        if (resumed) this.#bump(TezzeretForgeMetric.JOBS_RESUMED);
        const { result, stop } = await this.#forgeJob(job, context, resumed);
        if (stop) {
          stoppedByBreaker = true;
          this.#emit([
            { description: TezzeretForgeEvent.BREAKER_OPEN_SKIP, level: TelemetryLevel.WARNING, attributes: identifyAttributes(job) },
          ]);
        }
        results.push(result);
      }
      this.#metrics.set(TezzeretForgeMetric.JOBS_TOTAL, (this.#metrics.get(TezzeretForgeMetric.JOBS_TOTAL) ?? 0) + resolved.length);
      if (results.every((r) => r.status === 'completed' || r.status === 'skipped')) await wal.compact();
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
      await runCleanup('forge run', [() => worker.close(), () => wal.close()]);
    }
  }

  /** Forge metrics (names in {@link TezzeretForgeMetric}), gauges refreshed. */
  metricsSnapshot(): Record<string, number> {
    const snapshot = this.#governor.breaker();
    const failures = this.#governor.consecutiveFailures;
    this.#metrics.set(TezzeretForgeMetric.BREAKER_STATE, breakerGauge(snapshot.state));
    this.#metrics.set(TezzeretForgeMetric.BREAKER_OPEN_TOTAL, snapshot.openedTotal);
    this.#metrics.set(TezzeretForgeMetric.COMPILE_CONSECUTIVE_FAILURES, failures);
    this.#metrics.set(TezzeretForgeMetric.BREAKER_CONSECUTIVE_FAILURES, failures);
    this.#metrics.set(TezzeretForgeMetric.MODE_CONSERVATIVE, this.#governor.conservativeMode ? 1 : 0);
    return Object.fromEntries(this.#metrics);
  }

  /** The guard digest when Urza holds `job` with `checksum` (file verified on load), else undefined. */
  async #verify(job: ResolvedForgeJob, checksum: string): Promise<string | undefined> {
    try {
      const loaded = await this.#library.load(job.blueprintId, job.siteKey);
      return loaded.record.checksum === checksum ? loaded.record.guardDigest : undefined;
    } catch (error) {
      if (isEsperError(error, ErrorCode.URZA_NOT_FOUND) || isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) return undefined;
      throw error;
    }
  }

  async #forgeJob(job: ResolvedForgeJob, context: RunContext, resumed: boolean): Promise<{ result: ForgeJobResult; stop: boolean }> {
    const { wal, signal } = context;
    const key = jobKey(job);
    let attempts = 0;
    let lastReason = '';
    for (;;) {
      signal?.throwIfAborted();
      if (!this.#governor.allow()) {
        if (attempts > 0) await this.#failed(wal, key, lastReason);
        const status = attempts > 0 ? 'failed' : 'not_attempted';
        return { result: { ...identify(job), status, attempts, resumed, reason: attempts > 0 ? lastReason : 'breaker_open' }, stop: true };
      }
      attempts += 1;
      const strategy = this.#governor.strategy;
      this.#bump(attempts === 1 ? TezzeretForgeMetric.JOBS_STARTED : TezzeretForgeMetric.JOBS_RETRIED);
      await wal.append({ v: 1, type: 'started', job: key, attempt: attempts, strategy });
      this.#emit([
        { description: TezzeretForgeEvent.COMPILE_STARTED, attributes: { ...identifyAttributes(job), strategy, attempt: attempts } },
      ]);
      try {
        const { artifact, record } = await this.#compileAndSave(job, strategy, context);
        await wal.append({ v: 1, type: 'done', job: key, checksum: record.checksum, guardDigest: record.guardDigest });
        this.#governor.succeeded();
        this.#bump(TezzeretForgeMetric.JOBS_COMPLETED);
        this.#emit([
          {
            description: TezzeretForgeEvent.COMPILE_SUCCEEDED,
            attributes: {
              ...identifyAttributes(job),
              strategy,
              checksum: record.checksum,
              compile_ms: artifact.compileMs.toFixed(2),
              prewarm_ms: artifact.prewarm.p50Ms.toFixed(2),
            },
          },
        ]);
        await this.#publish(job, record.checksum, artifact);
        const result: ForgeJobResult = {
          ...identify(job),
          status: 'completed',
          checksum: record.checksum,
          guardDigest: record.guardDigest,
          strategy,
          attempts,
          resumed,
        };
        return { result, stop: false };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        lastReason = failureReason(error);
        this.#bump(TezzeretForgeMetric.FAILED_ATTEMPTS);
        if (isEsperError(error, ErrorCode.TEZZERET_COMPILE_TIMEOUT)) this.#bump(TezzeretForgeMetric.TIMED_OUT);
        const retryAfterMs = this.#governor.failed(error, attempts);
        this.#emit([
          {
            description: TezzeretForgeEvent.COMPILE_FAILED,
            level: TelemetryLevel.WARNING,
            attributes: { ...identifyAttributes(job), strategy, reason: lastReason, attempt: attempts },
          },
        ]);
        if (retryAfterMs === undefined) break;
        await backoff(retryAfterMs, signal);
      }
    }
    await this.#failed(wal, key, lastReason);
    return { result: { ...identify(job), status: 'failed', attempts, resumed, reason: lastReason }, stop: false };
  }

  async #compileAndSave(
    job: ResolvedForgeJob,
    strategy: ForgeStrategy,
    context: RunContext,
  ): Promise<{ artifact: CompiledArtifact; record: { readonly checksum: string; readonly guardDigest: string } }> {
    const conservative = strategy === ForgeStrategy.CONSERVATIVE;
    const descriptor = this.#compiler.catalog.get(job.blueprintId);
    const artifact = await compileWithDeadline({
      compiler: conservative ? this.#conservative : this.#compiler,
      job,
      descriptor,
      seed: this.#seedOf(job),
      deadlineMs: conservative ? 2 * this.#timeoutMs : this.#timeoutMs,
      worker: context.worker,
      clock: this.#clock,
    });
    const record = await this.#library.save({
      descriptor,
      siteKey: job.siteKey,
      artifact: artifact.bytes,
      guardDigest: artifact.guardDigest,
      compileMs: artifact.compileMs,
      prewarm: { p50Ms: artifact.prewarm.p50Ms, p95Ms: artifact.prewarm.p95Ms },
    });
    return { artifact, record };
  }

  async #failed(wal: ForgeWal, key: string, reason: string): Promise<void> {
    await wal.append({ v: 1, type: 'failed', job: key, reason });
    this.#bump(TezzeretForgeMetric.JOBS_FAILED);
  }

  async #publish(job: ResolvedForgeJob, checksum: string, artifact: CompiledArtifact): Promise<void> {
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
          description: TezzeretForgeEvent.PUBLISH_FAILED,
          level: TelemetryLevel.WARNING,
          attributes: { blueprint_id: job.blueprintId, reason: failureReason(error) },
        },
      ]);
    }
  }

  #emit(events: readonly EventInput[]): void {
    if (this.#telemetry === undefined) return;
    const metrics = Object.entries(this.metricsSnapshot()).map(([name, value]) => ({ name, value, unit: 'count' }));
    const level = this.#governor.breakerOpen || this.#governor.conservativeMode ? TelemetryLevel.WARNING : TelemetryLevel.INFO;
    this.#telemetry.emit(buildTelemetryPacket({ source: TEZZERET_FORGE_SOURCE, metrics, events, level, clock: this.#clock }));
  }

  #bump(metric: TezzeretForgeMetric): void {
    this.#metrics.set(metric, (this.#metrics.get(metric) ?? 0) + 1);
  }
}

function identify(job: ResolvedForgeJob): { blueprintId: string; siteKey: string } {
  return { blueprintId: job.blueprintId, siteKey: job.siteKey };
}

function identifyAttributes(job: ResolvedForgeJob): { blueprint_id: string; site_key: string } {
  return { blueprint_id: job.blueprintId, site_key: job.siteKey };
}

function breakerGauge(state: CircuitBreakerState): number {
  if (state === CircuitBreakerState.CIRCUIT_STATE_OPEN) return 2;
  if (state === CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN) return 1;
  return 0;
}
