/**
 * Simic's replay buffer: the durable experience of field reports (reference
 * prototype-tamiyo-simic §15.1) — bounded by a capacity (oldest evicted first) and a TTL
 * (by receipt time), deduplicated by report id, and surviving restarts.
 *
 * Every add is one record appended to `<dir>/replay.log` (core's `RecordLog`: CRC-framed,
 * fsynced, a torn tail cut at open). Evictions and expiries are not logged: opening the
 * buffer replays every record through the same rules the live buffer applied — each
 * record carries the buffer's clock at its add, and expiry is applied at that time before
 * the add — so the contents after a restart equal the contents before it. When the log
 * holds more than `compactAfterRecords` records it is rewritten to the live entries.
 *
 * Departures from the prototype (§15.1): TTL prunes every expired entry, not only a run at
 * the front; the timestamp is the receipt time given by the caller (Oona's publish time or
 * the report's `issued_at`), not re-read from the report; duplicates are refused.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  closeOnce,
  ErrorCode,
  errorMessage,
  EsperError,
  optionChecks,
  RecordLog,
  RecordLogFsync,
  systemClock,
  type Clock,
  type EsperSettings,
  type RecordLogRecovery,
} from '../core/index.js';
import type { FieldReport } from '../leyline/index.js';
import { decodeReplayRecord, encodeReplayRecord, replayRecordSequence } from './replay-record.js';

/** File name of the log inside the buffer's directory. */
export const REPLAY_LOG_FILE = 'replay.log';

/** Options of {@link ReplayBuffer.open}. */
export interface ReplayBufferOptions {
  /** Most reports held; adding past it evicts the oldest. @default 1024 */
  readonly capacity?: number;
  /** A report leaves the buffer once its receipt time is this old, in ms. @default 86_400_000 (24 h) */
  readonly ttlMs?: number;
  /** Reads "now" for expiry and the default receipt time. @default systemClock */
  readonly clock?: Clock;
  /**
   * The log is rewritten to the live entries once it holds more records than this.
   * @default 2 × capacity, at least 64
   */
  readonly compactAfterRecords?: number;
  /** Durability of adds; both resolve only once durable. @default 'group' */
  readonly fsync?: RecordLogFsync;
}

/** Defaults of {@link ReplayBufferOptions}. */
export const REPLAY_BUFFER_DEFAULTS = Object.freeze({
  capacity: 1024,
  ttlMs: 24 * 60 * 60 * 1000,
});

/** {@link ReplayBufferOptions} with defaults applied. */
export interface ResolvedReplayBufferOptions {
  readonly capacity: number;
  readonly ttlMs: number;
  readonly clock: Clock;
  readonly compactAfterRecords: number;
  readonly fsync: RecordLogFsync;
}

/**
 * The buffer's directory and options from the `simic` settings section (`replayDir`,
 * `replayCapacity`, `replayTtlHours`).
 */
export function replayBufferFromSettings(
  settings: Pick<EsperSettings, 'simic'>,
  extra: Omit<ReplayBufferOptions, 'capacity' | 'ttlMs'> = {},
): { readonly dir: string; readonly options: ReplayBufferOptions } {
  return {
    dir: settings.simic.replayDir,
    options: { ...extra, capacity: settings.simic.replayCapacity, ttlMs: settings.simic.replayTtlHours * 60 * 60 * 1000 },
  };
}

/** Applies defaults and validates eagerly, naming the bad field (INVALID_ARGUMENT). */
export function resolveReplayBufferOptions(options: ReplayBufferOptions = {}): ResolvedReplayBufferOptions {
  const check = optionChecks('ReplayBufferOptions');
  const capacity = check.integer('capacity', options.capacity ?? REPLAY_BUFFER_DEFAULTS.capacity, { min: 1 });
  const ttlMs = check.number('ttlMs', options.ttlMs ?? REPLAY_BUFFER_DEFAULTS.ttlMs, { min: 1 });
  const compactAfterRecords = check.integer('compactAfterRecords', options.compactAfterRecords ?? Math.max(64, 2 * capacity), {
    min: capacity,
  });
  const fsync = check.oneOf('fsync', options.fsync ?? RecordLogFsync.GROUP, Object.values(RecordLogFsync));
  return Object.freeze({ capacity, ttlMs, clock: options.clock ?? systemClock, compactAfterRecords, fsync });
}

/** Options of {@link ReplayBuffer.add}. */
export interface ReplayAddOptions {
  /** When the report was received (wall ms); expiry counts from it. @default clock.wallMs() */
  readonly receivedAtMs?: number;
}

/**
 * Outcome of {@link ReplayBuffer.add}: stored; already held (or being stored) under the
 * same report id; or already past the TTL, so not stored.
 */
export type ReplayAddResult = 'added' | 'duplicate' | 'expired';

/** One report in the buffer. */
export interface ReplayEntry {
  readonly report: FieldReport;
  readonly receivedAtMs: number;
}

/** What opening the buffer found. */
export interface ReplayBufferRecovery {
  /** Records read from the log. */
  readonly records: number;
  /** Entries live after replay. */
  readonly entries: number;
  /** Records dropped by replay: expired, evicted by capacity, or duplicates. */
  readonly dropped: number;
  /** The log's own recovery (torn tail cut, ...). */
  readonly log: RecordLogRecovery;
}

/** Counters of a buffer since it was opened. */
export interface ReplayBufferStats {
  readonly size: number;
  readonly added: number;
  readonly duplicates: number;
  /** Adds refused because the report was already past the TTL. */
  readonly expiredOnAdd: number;
  readonly evicted: number;
  readonly expired: number;
  readonly compactions: number;
  /** Compactions that failed (the log keeps its records; adds are not affected). */
  readonly compactionFailures: number;
  /** Message of the last compaction failure ('' when none). */
  readonly lastCompactionError: string;
  /** Records in the log (live entries plus not yet compacted history). */
  readonly logRecords: number;
}

interface Entry {
  readonly report: FieldReport;
  readonly receivedAtMs: number;
  readonly sequence: number;
}

/** Pure state of the buffer: the rules shared by live adds and replay at open. */
class ReplayState {
  /** Live entries in add order (Map keeps insertion order). */
  readonly entries = new Map<string, Entry>();
  nowMs = Number.NEGATIVE_INFINITY;
  evicted = 0;
  expired = 0;

  constructor(
    readonly capacity: number,
    readonly ttlMs: number,
  ) {}

  /** Moves time forward (never back, so that expiry stays monotone) and expires entries. */
  advance(nowMs: number): void {
    this.nowMs = Math.max(this.nowMs, nowMs);
    const cutoff = this.nowMs - this.ttlMs;
    for (const [id, entry] of this.entries) {
      if (entry.receivedAtMs <= cutoff) {
        this.entries.delete(id);
        this.expired += 1;
      }
    }
  }

  isExpired(receivedAtMs: number): boolean {
    return receivedAtMs <= this.nowMs - this.ttlMs;
  }

  insert(entry: Entry): void {
    this.entries.set(entry.report.reportId, entry);
    for (const id of this.entries.keys()) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(id);
      this.evicted += 1;
    }
  }
}

/**
 * The durable replay buffer (see module doc). Open with {@link ReplayBuffer.open}; `add`
 * may be called concurrently (group commit batches the fsyncs).
 */
export class ReplayBuffer implements AsyncDisposable {
  readonly options: ResolvedReplayBufferOptions;
  readonly #log: RecordLog;
  readonly #state: ReplayState;
  readonly #recovery: ReplayBufferRecovery;
  /** Adds accepted but not yet durable, by report id. */
  readonly #inFlight = new Map<string, Promise<ReplayAddResult>>();
  #nextSequence: number;
  #added = 0;
  #duplicates = 0;
  #expiredOnAdd = 0;
  #compactions = 0;
  #compactionFailures = 0;
  #lastCompactionError = '';
  #compacting: Promise<void> | undefined;
  #closed = false;
  readonly #close = closeOnce(async () => {
    this.#closed = true;
    await this.#compacting?.catch(() => undefined);
    await this.#log.close();
  });

  private constructor(
    options: ResolvedReplayBufferOptions,
    log: RecordLog,
    state: ReplayState,
    recovery: ReplayBufferRecovery,
    nextSequence: number,
  ) {
    this.options = options;
    this.#log = log;
    this.#state = state;
    this.#recovery = recovery;
    this.#nextSequence = nextSequence;
  }

  /**
   * Opens (creating if missing) the buffer in `dir` and replays its log: a torn tail is
   * cut (see {@link ReplayBuffer.recovery}), then every record is applied in order with
   * the capacity and TTL of `options` (which may differ from the previous run's).
   *
   * @throws EsperError SIMIC_REPLAY_INVALID (a record that is not a replay record, naming
   *   the file and offset), RECORD_LOG_CORRUPT, RECORD_LOG_IO_FAILED, INVALID_ARGUMENT.
   */
  static async open(dir: string, options: ReplayBufferOptions = {}): Promise<ReplayBuffer> {
    const resolved = resolveReplayBufferOptions(options);
    await mkdir(dir, { recursive: true }).catch((error: unknown) => {
      throw new EsperError(ErrorCode.RECORD_LOG_IO_FAILED, `replay buffer directory ${dir} cannot be created`, {
        cause: error,
        details: { path: dir },
      });
    });
    const log = await RecordLog.open(path.join(dir, REPLAY_LOG_FILE), { fsync: resolved.fsync });
    try {
      const state = new ReplayState(resolved.capacity, resolved.ttlMs);
      let records = 0;
      let nextSequence = 0;
      for await (const record of log.records()) {
        const decoded = decodeReplayRecord(record.payload, log.path, record.offset);
        records += 1;
        nextSequence = Math.max(nextSequence, decoded.sequence + 1);
        state.advance(decoded.addedAtMs);
        if (state.entries.has(decoded.report.reportId)) continue;
        state.insert({ report: decoded.report, receivedAtMs: decoded.receivedAtMs, sequence: decoded.sequence });
      }
      state.advance(resolved.clock.wallMs());
      const recovery: ReplayBufferRecovery = {
        records,
        entries: state.entries.size,
        dropped: records - state.entries.size,
        log: log.recovery,
      };
      // Counters describe this process's work, not the replay's.
      state.evicted = 0;
      state.expired = 0;
      return new ReplayBuffer(resolved, log, state, recovery, nextSequence);
    } catch (error) {
      await log.close().catch(() => undefined);
      throw error;
    }
  }

  /** Absolute path of the log. */
  get path(): string {
    return this.#log.path;
  }

  /** What opening found. */
  get recovery(): ReplayBufferRecovery {
    return this.#recovery;
  }

  /** Reports held now (expired ones removed first). */
  get size(): number {
    this.#state.advance(this.options.clock.wallMs());
    return this.#state.entries.size;
  }

  /** Whether `reportId` is held now (or being added). */
  has(reportId: string): boolean {
    this.#state.advance(this.options.clock.wallMs());
    return this.#state.entries.has(reportId);
  }

  /**
   * Adds `report` and resolves once its record is durable. A report id already held —
   * or being added, in which case this waits for that add — gives 'duplicate' and writes
   * nothing; a receipt time already past the TTL gives 'expired' and writes nothing.
   * Adding past the capacity evicts the oldest entry.
   *
   * The entry is visible to reads from the call on (in call order, which is log order);
   * if its write fails, it is removed again and the log refuses further adds.
   *
   * @throws EsperError (as a rejection) INVALID_ARGUMENT (no report id, bad receipt time),
   *   INVALID_STATE after close, the RecordLog's and the codec's errors.
   */
  add(report: FieldReport, options: ReplayAddOptions = {}): Promise<ReplayAddResult> {
    try {
      return this.#add(report, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #add(report: FieldReport, options: ReplayAddOptions): Promise<ReplayAddResult> {
    if (this.#closed)
      throw new EsperError(ErrorCode.INVALID_STATE, `replay buffer ${this.path} is closed`, { details: { path: this.path } });
    const check = optionChecks('ReplayBuffer.add');
    if (report.reportId === '')
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'ReplayBuffer.add: report_id is empty', { details: { field: 'reportId' } });
    const nowMs = this.options.clock.wallMs();
    const receivedAtMs = check.number('receivedAtMs', options.receivedAtMs ?? nowMs);
    const id = report.reportId;
    const inFlight = this.#inFlight.get(id);
    if (inFlight !== undefined) {
      this.#duplicates += 1;
      return inFlight.then(() => 'duplicate');
    }
    const state = this.#state;
    state.advance(nowMs);
    if (state.entries.has(id)) {
      this.#duplicates += 1;
      return Promise.resolve('duplicate');
    }
    if (state.isExpired(receivedAtMs)) {
      this.#expiredOnAdd += 1;
      return Promise.resolve('expired');
    }
    const entry: Entry = { report, receivedAtMs, sequence: this.#nextSequence };
    // Encode before touching state, so that a report the codec refuses changes nothing.
    const payload = encodeReplayRecord({ sequence: entry.sequence, receivedAtMs, addedAtMs: state.nowMs, report });
    this.#nextSequence += 1;
    state.insert(entry);
    const done = this.#log.append(payload).then(
      async (): Promise<ReplayAddResult> => {
        this.#added += 1;
        await this.#maybeCompact();
        return 'added';
      },
      (error: unknown) => {
        if (state.entries.get(id) === entry) state.entries.delete(id);
        throw error;
      },
    );
    const tracked = done.finally(() => this.#inFlight.delete(id));
    this.#inFlight.set(id, tracked);
    return tracked;
  }

  async #maybeCompact(): Promise<void> {
    if (this.#compacting !== undefined || this.#closed) return;
    if (this.#log.stats().records <= this.options.compactAfterRecords) return;
    // The add that crossed the bound is already durable: a failed compaction is counted,
    // never turned into a failed add (the next add past the bound tries again).
    await this.compact().catch((error: unknown) => {
      this.#compactionFailures += 1;
      this.#lastCompactionError = errorMessage(error);
    });
  }

  /**
   * Rewrites the log to the records of the live entries (crash-safe: see
   * `RecordLog.rewrite`). Concurrent calls share one run.
   */
  compact(): Promise<void> {
    this.#compacting ??= this.#compact().finally(() => {
      this.#compacting = undefined;
    });
    return this.#compacting;
  }

  async #compact(): Promise<void> {
    this.#state.advance(this.options.clock.wallMs());
    const live = new Set<number>();
    for (const entry of this.#state.entries.values()) live.add(entry.sequence);
    // `live` is the state at the log's cut: appends called before this rewrite are in it,
    // appends called after it go to the new file and are not offered to `keep`.
    await this.#log.rewrite((payload, offset) => live.has(replayRecordSequence(payload, this.#log.path, offset)));
    this.#compactions += 1;
  }

  /** Reports held now, oldest add first. */
  reports(): FieldReport[] {
    return this.entries().map((e) => e.report);
  }

  /** Entries held now, oldest add first. */
  entries(): ReplayEntry[] {
    this.#state.advance(this.options.clock.wallMs());
    return [...this.#state.entries.values()].map((e) => ({ report: e.report, receivedAtMs: e.receivedAtMs }));
  }

  /**
   * Up to `n` reports: all of them, oldest first, when `n` ≥ size; otherwise a uniform
   * sample without replacement (partial Fisher–Yates) drawn with `rng` (values in [0, 1)).
   */
  sample(n: number, rng: () => number = Math.random): FieldReport[] {
    optionChecks('ReplayBuffer.sample').integer('n', n, { min: 0 });
    const all = this.reports();
    if (n >= all.length) return all;
    for (let i = 0; i < n; i += 1) {
      const j = i + Math.min(all.length - i - 1, Math.floor(rng() * (all.length - i)));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all.slice(0, n);
  }

  /** Counters since open. */
  stats(): ReplayBufferStats {
    return {
      size: this.#state.entries.size,
      added: this.#added,
      duplicates: this.#duplicates,
      expiredOnAdd: this.#expiredOnAdd,
      evicted: this.#state.evicted,
      expired: this.#state.expired,
      compactions: this.#compactions,
      compactionFailures: this.#compactionFailures,
      lastCompactionError: this.#lastCompactionError,
      logRecords: this.#log.stats().records,
    };
  }

  /** Waits for pending adds, then closes the log. Idempotent. */
  close(): Promise<void> {
    return this.#close();
  }

  /** Same as {@link ReplayBuffer.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
