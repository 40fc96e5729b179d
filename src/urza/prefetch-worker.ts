/**
 * Urza's prefetch worker (reference prototype-blueprint-pipeline §4.8): answers each
 * `KernelPrefetchRequest` with `KernelArtifactReady` (checksum verified, loaded and
 * prewarmed here) or `KernelArtifactError` with a code and a reason that starts with the
 * prototype's reason word. How a request is mapped to one artifact, and the departures from
 * the prototype: docs/architecture.md (Urza). Every worker subscribes in one consumer group
 * under its own consumer name, so each request goes to exactly one of them.
 */
import { randomUUID } from 'node:crypto';
import { create, isMessage } from '@bufbuild/protobuf';
import {
  closeOnce,
  DependencyGuard,
  DependencyViolationError,
  ErrorCode,
  errorMessage,
  isEsperError,
  optionChecks,
  ServiceState,
  systemClock,
  type Clock,
  type TelemetrySink,
} from '../core/index.js';
import type { KarnCatalog, SeedModule } from '../karn/index.js';
import {
  BusMessageType,
  KernelArtifactErrorSchema,
  KernelArtifactReadySchema,
  KernelErrorCode,
  KernelPrefetchRequestSchema,
  type KernelArtifactError,
  type KernelArtifactReady,
  type KernelPrefetchRequest,
} from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { tf } from '../tensor/index.js';
import { decodeArtifact, loadArtifact, prewarmTimings } from '../tezzeret/index.js';
import { formatUrzaArtifactRef } from './artifact-ref.js';
import type { UrzaLibrary } from './library.js';
import type { UrzaArtifactRecord } from './library-records.js';
import { UrzaIntegrityReason } from './names.js';

/** Prefetch metric names (reference §4.8: Weatherlight exports them as `urza.prefetch.*`). */
export const UrzaPrefetchMetric = {
  HITS: 'urza.prefetch.hits',
  MISSES: 'urza.prefetch.misses',
  ERRORS: 'urza.prefetch.errors',
  LATENCY_MS: 'urza.prefetch.latency_ms',
} as const;

/** Union of {@link UrzaPrefetchMetric} values. */
export type UrzaPrefetchMetric = (typeof UrzaPrefetchMetric)[keyof typeof UrzaPrefetchMetric];

/** Options of {@link UrzaPrefetchWorker}. */
export interface UrzaPrefetchWorkerOptions {
  /** Bus the requests arrive on and the answers go to. Required; not closed by the worker. */
  readonly bus: Bus;
  /** Library the artifacts come from. Required; not closed by the worker. */
  readonly library: UrzaLibrary;
  /** Receives the dependency guard's violation packets (invalid requests). Required. */
  readonly telemetry: TelemetrySink;
  /** Catalog that rebuilds modules from artifacts. @default Tezzeret's shared `KarnCatalog()` */
  readonly catalog?: KarnCatalog;
  /** Consumer group shared by every prefetch worker. @default 'urza-prefetch' */
  readonly group?: string;
  /** This worker's consumer name, unique in the group. @default `urza-prefetch-<random>` */
  readonly consumer?: string;
  /** Timed forward passes per prewarm. Integer ≥ 1. @default 5 */
  readonly prewarmPasses?: number;
  /** Batch size of the prewarm passes. Integer ≥ 1. @default 2 */
  readonly prewarmBatch?: number;
  /**
   * Artifacts whose prewarm timings are kept, by checksum and guard digest (least recently
   * used dropped first); 0 prewarms every request. Integer ≥ 0. @default 64
   */
  readonly prewarmCacheSize?: number;
  /** Maps a request to the site key it means; `undefined` falls back to the rules above. @default none */
  readonly siteKeyOf?: (request: KernelPrefetchRequest) => string | undefined;
  /** Time source of latencies. @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link UrzaPrefetchWorkerOptions}. */
export const URZA_PREFETCH_WORKER_DEFAULTS = Object.freeze({
  group: 'urza-prefetch',
  prewarmPasses: 5,
  prewarmBatch: 2,
  prewarmCacheSize: 64,
});

/** Counters of one worker (reference §4.8 `PrefetchMetrics`, plus `invalid`). */
export interface UrzaPrefetchStats {
  /** Requests answered with `KernelArtifactReady`. */
  readonly hits: number;
  /** Requests answered `NOT_FOUND`. */
  readonly misses: number;
  /** Requests answered with any other error code except `INVALID_REQUEST`. */
  readonly errors: number;
  /** Requests answered `INVALID_REQUEST`. */
  readonly invalid: number;
  /** Artifacts loaded into a module and prewarmed (a `hit` of an artifact already prewarmed is not). */
  readonly prewarms: number;
  /** Handling time of the last request, in ms. */
  readonly latencyMs: number;
}

/** Lifecycle of an {@link UrzaPrefetchWorker}. */
export type UrzaPrefetchWorkerState = 'created' | 'running' | 'closing' | 'closed';

/** The outcome of one request, before it is published. */
type Answer =
  { readonly kind: 'ready'; readonly message: KernelArtifactReady } | { readonly kind: 'error'; readonly message: KernelArtifactError };

class PrefetchFailure extends Error {
  constructor(
    readonly code: KernelErrorCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Answers kernel prefetch requests from an {@link UrzaLibrary}. */
export class UrzaPrefetchWorker {
  readonly #bus: Bus;
  readonly #library: UrzaLibrary;
  readonly #catalog: KarnCatalog | undefined;
  readonly #guard: DependencyGuard;
  readonly #clock: Clock;
  readonly #group: string;
  readonly #consumer: string;
  readonly #prewarmPasses: number;
  readonly #prewarmBatch: number;
  readonly #prewarmCacheSize: number;
  /** Prewarm timings by `checksum/guardDigest`, least recently used first. */
  readonly #prewarmed = new Map<string, { readonly p50Ms: number; readonly p95Ms: number }>();
  readonly #siteKeyOf: ((request: KernelPrefetchRequest) => string | undefined) | undefined;
  readonly #state = new ServiceState<UrzaPrefetchWorkerState>('urza prefetch worker', 'created');
  readonly #close = closeOnce(() => this.#closeSubscription());
  #subscription: Subscription | undefined;
  #scopeCounter = 0;
  #hits = 0;
  #misses = 0;
  #errors = 0;
  #invalid = 0;
  #prewarms = 0;
  #latencyMs = 0;

  constructor(options: UrzaPrefetchWorkerOptions) {
    this.#bus = options.bus;
    this.#library = options.library;
    this.#catalog = options.catalog;
    this.#clock = options.clock ?? systemClock;
    this.#guard = new DependencyGuard({ subsystem: 'urza', sink: options.telemetry, clock: this.#clock });
    const check = optionChecks('UrzaPrefetchWorker');
    this.#group = check.nonEmptyString('group', options.group ?? URZA_PREFETCH_WORKER_DEFAULTS.group);
    this.#consumer = check.nonEmptyString('consumer', options.consumer ?? `urza-prefetch-${randomUUID().slice(0, 8)}`);
    this.#prewarmPasses = check.integer('prewarmPasses', options.prewarmPasses ?? URZA_PREFETCH_WORKER_DEFAULTS.prewarmPasses, { min: 1 });
    this.#prewarmBatch = check.integer('prewarmBatch', options.prewarmBatch ?? URZA_PREFETCH_WORKER_DEFAULTS.prewarmBatch, { min: 1 });
    this.#prewarmCacheSize = check.integer('prewarmCacheSize', options.prewarmCacheSize ?? URZA_PREFETCH_WORKER_DEFAULTS.prewarmCacheSize, {
      min: 0,
    });
    this.#siteKeyOf = options.siteKeyOf;
  }

  /** The consumer name this worker reads under. */
  get consumer(): string {
    return this.#consumer;
  }

  /** See {@link UrzaPrefetchWorkerState}. */
  get state(): UrzaPrefetchWorkerState {
    return this.#state.current;
  }

  /**
   * Subscribes to `KERNEL_PREFETCH_REQUEST` and resolves once the consumer group exists, so
   * no request published afterwards is missed.
   * @throws EsperError `INVALID_STATE` unless the worker is `created`.
   */
  async start(): Promise<void> {
    this.#state.transition('created', 'running', 'start');
    this.#subscription = this.#bus.subscribe({
      group: this.#group,
      consumer: this.#consumer,
      types: [BusMessageType.KERNEL_PREFETCH_REQUEST],
      handler: (delivery) => this.#onDelivery(delivery),
    });
    await this.#subscription.ready;
  }

  /** Counters so far. */
  stats(): UrzaPrefetchStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      errors: this.#errors,
      invalid: this.#invalid,
      prewarms: this.#prewarms,
      latencyMs: this.#latencyMs,
    };
  }

  /**
   * Answers one request without the bus (what the subscription does for each delivery,
   * minus the publish). Never throws for a bad request or artifact: those become errors.
   */
  async answer(request: KernelPrefetchRequest): Promise<KernelArtifactReady | KernelArtifactError> {
    return (await this.#answer(request)).message;
  }

  /**
   * Stops the subscription, letting the request in flight finish and be answered.
   * Idempotent: every call returns the first call's promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #closeSubscription(): Promise<void> {
    this.#state.set('closing');
    try {
      await this.#subscription?.close();
    } finally {
      this.#state.set('closed');
    }
  }

  async #onDelivery(delivery: Delivery): Promise<void> {
    if (!isMessage(delivery.message, KernelPrefetchRequestSchema)) return;
    const answer = await this.#answer(delivery.message);
    // A failed publish throws, so the bus retries the request (at-least-once).
    await this.#bus.reply(delivery, answer.message, { trainingRunId: answer.message.trainingRunId });
  }

  async #answer(request: KernelPrefetchRequest): Promise<Answer> {
    const startMs = this.#clock.monotonicMs();
    let answer: Answer;
    try {
      answer = { kind: 'ready', message: await this.#prefetch(request) };
      this.#hits += 1;
    } catch (error) {
      const failure = toFailure(error);
      if (failure.code === KernelErrorCode.NOT_FOUND) this.#misses += 1;
      else if (failure.code === KernelErrorCode.INVALID_REQUEST) this.#invalid += 1;
      else this.#errors += 1;
      answer = {
        kind: 'error',
        message: create(KernelArtifactErrorSchema, {
          requestId: request.requestId,
          blueprintId: request.blueprintId,
          trainingRunId: request.trainingRunId,
          code: failure.code,
          reason: failure.reason,
        }),
      };
    }
    this.#latencyMs = this.#clock.monotonicMs() - startMs;
    return answer;
  }

  async #prefetch(request: KernelPrefetchRequest): Promise<KernelArtifactReady> {
    const details = { request_id: request.requestId, blueprint_id: request.blueprintId };
    this.#guard.requireId(request.requestId, 'request_id', details);
    this.#guard.requireId(request.blueprintId, 'blueprint_id', details);
    this.#guard.requireId(request.trainingRunId, 'training_run_id', details);
    const record = this.#resolve(request);
    let loaded;
    try {
      loaded = await this.#library.load(record.blueprintId, record.siteKey);
    } catch (error) {
      if (isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) {
        const reason = error.details['reason'];
        if (reason === UrzaIntegrityReason.CHECKSUM_MISMATCH) {
          throw new PrefetchFailure(KernelErrorCode.CHECKSUM_MISMATCH, `checksum_mismatch: ${error.message}`);
        }
        throw new PrefetchFailure(KernelErrorCode.NOT_FOUND, `missing_artifact: ${error.message}`);
      }
      if (isEsperError(error, ErrorCode.URZA_NOT_FOUND)) {
        throw new PrefetchFailure(KernelErrorCode.NOT_FOUND, `missing_artifact: ${error.message}`);
      }
      throw error;
    }
    const prewarm = this.#prewarmOnce(loaded.bytes, loaded.record);
    return create(KernelArtifactReadySchema, {
      requestId: request.requestId,
      blueprintId: request.blueprintId,
      trainingRunId: request.trainingRunId,
      artifactRef: formatUrzaArtifactRef(record),
      checksum: loaded.record.checksum,
      guardDigest: loaded.record.guardDigest,
      prewarmP50Ms: prewarm.p50Ms,
      prewarmP95Ms: prewarm.p95Ms,
    });
  }

  #resolve(request: KernelPrefetchRequest): UrzaArtifactRecord {
    const records = this.#library.artifacts(request.blueprintId);
    if (records.length === 0) {
      const known = this.#library.get(request.blueprintId) !== undefined;
      throw new PrefetchFailure(
        KernelErrorCode.NOT_FOUND,
        known
          ? `missing_artifact: blueprint ${request.blueprintId} has no compiled artifact`
          : `missing_artifact: blueprint ${request.blueprintId} is not in Urza`,
      );
    }
    const wanted = this.#siteKeyOf?.(request);
    if (wanted !== undefined) {
      const match = records.find((r) => r.siteKey === wanted);
      if (match === undefined) {
        throw new PrefetchFailure(
          KernelErrorCode.NOT_FOUND,
          `missing_artifact: blueprint ${request.blueprintId} has no artifact for site ${wanted}`,
        );
      }
      return match;
    }
    const bySeed = records.find((r) => r.siteKey === request.seedId);
    if (bySeed !== undefined) return bySeed;
    const [only] = records;
    if (records.length === 1 && only !== undefined) return only;
    throw new PrefetchFailure(
      KernelErrorCode.INVALID_REQUEST,
      `ambiguous: blueprint ${request.blueprintId} has artifacts for sites [${records.map((r) => r.siteKey).join(', ')}] and seed '${request.seedId}' names none`,
    );
  }

  /**
   * The prewarm timings of the verified bytes of `record`: measured the first time (a private
   * module, timed forward passes), then kept by checksum and guard digest. The same verified
   * bytes rebuild the same module, so loading and running them again proves nothing new,
   * while it holds the worker's thread for the requests queued behind it; the bytes are
   * still verified on every request (`UrzaLibrary.load`), so a changed artifact has a new
   * checksum and is prewarmed afresh, and a tampered one fails before this.
   */
  #prewarmOnce(bytes: Uint8Array, record: UrzaArtifactRecord): { readonly p50Ms: number; readonly p95Ms: number } {
    const key = `${record.checksum}/${record.guardDigest}`;
    const kept = this.#prewarmed.get(key);
    if (kept !== undefined) {
      this.#prewarmed.delete(key);
      this.#prewarmed.set(key, kept);
      return kept;
    }
    const timings = prewarmTimings(this.#prewarm(bytes, record));
    this.#prewarms += 1;
    if (this.#prewarmCacheSize > 0) {
      this.#prewarmed.set(key, { p50Ms: timings.p50Ms, p95Ms: timings.p95Ms });
      const oldest = this.#prewarmed.keys().next();
      if (this.#prewarmed.size > this.#prewarmCacheSize && oldest.done !== true) this.#prewarmed.delete(oldest.value);
    }
    return timings;
  }

  /** Loads the verified bytes into a private module and times forward passes, in ms. */
  #prewarm(bytes: Uint8Array, record: UrzaArtifactRecord): number[] {
    let module: SeedModule;
    let inputShape: number[];
    try {
      inputShape = [this.#prewarmBatch, ...decodeArtifact(bytes).header.guard.inputShape.slice(1)];
      this.#scopeCounter += 1;
      module = loadArtifact(bytes, {
        scope: `urza-prefetch-${this.#consumer}-${this.#scopeCounter}/${record.blueprintId}`,
        ...(this.#catalog === undefined ? {} : { catalog: this.#catalog }),
      });
    } catch (error) {
      throw new PrefetchFailure(KernelErrorCode.LOAD_FAILED, `load_failed: ${errorMessage(error)}`);
    }
    try {
      const samples: number[] = [];
      tf.tidy(() => {
        const x = tf.ones(inputShape);
        for (let i = 0; i < this.#prewarmPasses; i += 1) {
          const startMs = this.#clock.monotonicMs();
          tf.tidy(() => module.apply(x).dataSync());
          samples.push(this.#clock.monotonicMs() - startMs);
        }
      });
      return samples;
    } catch (error) {
      throw new PrefetchFailure(KernelErrorCode.LOAD_FAILED, `prewarm_failed: ${errorMessage(error)}`);
    } finally {
      module.dispose();
    }
  }
}

function toFailure(error: unknown): PrefetchFailure {
  if (error instanceof PrefetchFailure) return error;
  if (error instanceof DependencyViolationError) {
    return new PrefetchFailure(KernelErrorCode.INVALID_REQUEST, `invalid_request: ${error.reason}`);
  }
  return new PrefetchFailure(KernelErrorCode.INTERNAL, `internal: ${errorMessage(error)}`);
}
