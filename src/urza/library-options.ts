/** Options, defaults and crash-test fault points of the Urza library. */
import path from 'node:path';
import { optionChecks, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import type { BsdsVerifier } from './bsds-verifier.js';

/**
 * The points of a save at which the `faults` hook is called, in order. A hook that throws
 * at a step simulates a crash there: the save stops without cleaning up.
 */
export const UrzaSaveStep = {
  /** The temp file is written and fsynced; nothing is renamed yet. */
  TEMP_WRITTEN: 'temp_written',
  /** The temp file has its final content-addressed name; the directory is not fsynced. */
  RENAMED: 'renamed',
  /** The directory entry is durable; the row is not written. */
  DIR_SYNCED: 'dir_synced',
  /** Inside the DB transaction, rows written but not committed. */
  BEFORE_COMMIT: 'before_commit',
  /** The row is committed; the superseded artifact file is not removed yet. */
  COMMITTED: 'committed',
} as const;

/** Union of {@link UrzaSaveStep} values. */
export type UrzaSaveStep = (typeof UrzaSaveStep)[keyof typeof UrzaSaveStep];

/** Every save step, in the order a save reaches them. */
export const URZA_SAVE_STEPS: readonly UrzaSaveStep[] = Object.freeze(Object.values(UrzaSaveStep));

/** Test-only failure injection. Live code never passes it. */
export interface UrzaFaults {
  /** Called at each {@link UrzaSaveStep}; throwing simulates a crash at that step. */
  readonly atSaveStep?: (step: UrzaSaveStep) => void;
}

/** The fault points of one save: remembers whether the hook simulated a crash, so nothing is cleaned up after one. */
export class SaveFaults {
  readonly #hook: UrzaFaults['atSaveStep'];
  #crashed = false;

  constructor(hook: UrzaFaults['atSaveStep']) {
    this.#hook = hook;
  }

  /** Whether the hook threw at some step of this save. */
  get crashed(): boolean {
    return this.#crashed;
  }

  /** Calls the hook at `step`; a throw marks the save crashed and propagates. */
  at(step: UrzaSaveStep): void {
    if (this.#hook === undefined) return;
    try {
      this.#hook(step);
    } catch (error) {
      this.#crashed = true;
      throw error;
    }
  }
}

/** Options of `UrzaLibrary`. */
export interface UrzaLibraryOptions {
  /** Root directory; created if missing. Required. */
  readonly rootDir: string;
  /**
   * SQLite database file.
   * @default `<rootDir>/catalog.db`
   */
  readonly dbPath?: string;
  /**
   * Directory of artifact files (created when missing and the catalog lists no artifact).
   * @default `<rootDir>/artifacts`
   */
  readonly artifactDir?: string;
  /**
   * Checks the signature of every safety data sheet stored or served
   * (`createBsdsVerifier(keyRing)`). Without one, `saveBsds` and `getBsds` refuse.
   * @default none
   */
  readonly bsdsVerifier?: BsdsVerifier;
  /**
   * Verified artifacts kept in the LRU cache. Integer ≥ 0 (0 disables the cache).
   * @default 128
   */
  readonly cacheMaxEntries?: number;
  /**
   * How long a cached artifact is served before it is re-read and re-verified, in ms.
   * Finite, ≥ 0.
   * @default 60000
   */
  readonly cacheTtlMs?: number;
  /**
   * A DB read slower than this counts as a breaker failure (reference §4.4: 250 ms).
   * Finite, ≥ 0.
   * @default 250
   */
  readonly slowQueryMs?: number;
  /**
   * Consecutive slow or failed reads that open the breaker (reference §4.1).
   * @default 3
   */
  readonly breakerFailureThreshold?: number;
  /**
   * Probe successes that close a half-open breaker (reference §4.1).
   * @default 2
   */
  readonly breakerSuccessThreshold?: number;
  /**
   * How long an open breaker refuses DB reads, in ms (reference §4.1).
   * @default 30000
   */
  readonly breakerOpenTimeoutMs?: number;
  /**
   * Time source for latencies, TTL and timestamps.
   * @default systemClock
   */
  readonly clock?: Clock;
  /** Receives the CRITICAL `integrity_failure` events. @default none (counted only) */
  readonly telemetry?: TelemetrySink;
  /** Failure injection for crash tests only. @default none */
  readonly faults?: UrzaFaults;
}

/** {@link UrzaLibraryOptions} after defaults and validation. */
export interface ResolvedUrzaLibraryOptions {
  readonly rootDir: string;
  readonly dbPath: string;
  readonly artifactDir: string;
  readonly bsdsVerifier: BsdsVerifier | undefined;
  readonly cacheMaxEntries: number;
  readonly cacheTtlMs: number;
  readonly slowQueryMs: number;
  readonly breakerFailureThreshold: number;
  readonly breakerSuccessThreshold: number;
  readonly breakerOpenTimeoutMs: number;
  readonly clock: Clock;
  readonly telemetry: TelemetrySink | undefined;
  readonly faults: UrzaFaults | undefined;
}

/** Defaults of {@link UrzaLibraryOptions}. */
export const URZA_LIBRARY_DEFAULTS = Object.freeze({
  cacheMaxEntries: 128,
  cacheTtlMs: 60_000,
  slowQueryMs: 250,
  breakerFailureThreshold: 3,
  breakerSuccessThreshold: 2,
  breakerOpenTimeoutMs: 30_000,
});

/** Validates `options` and fills in defaults; throws `INVALID_ARGUMENT` naming the field. */
export function resolveUrzaLibraryOptions(options: UrzaLibraryOptions): ResolvedUrzaLibraryOptions {
  const check = optionChecks('UrzaLibrary');
  const d = URZA_LIBRARY_DEFAULTS;
  const rootDir = path.resolve(check.nonEmptyString('rootDir', options.rootDir));
  return {
    rootDir,
    dbPath: path.resolve(options.dbPath ?? path.join(rootDir, 'catalog.db')),
    artifactDir: path.resolve(options.artifactDir ?? path.join(rootDir, 'artifacts')),
    bsdsVerifier: options.bsdsVerifier,
    cacheMaxEntries: check.integer('cacheMaxEntries', options.cacheMaxEntries ?? d.cacheMaxEntries, { min: 0 }),
    cacheTtlMs: check.nonNegative('cacheTtlMs', options.cacheTtlMs ?? d.cacheTtlMs),
    slowQueryMs: check.nonNegative('slowQueryMs', options.slowQueryMs ?? d.slowQueryMs),
    breakerFailureThreshold: check.integer('breakerFailureThreshold', options.breakerFailureThreshold ?? d.breakerFailureThreshold, {
      min: 1,
    }),
    breakerSuccessThreshold: check.integer('breakerSuccessThreshold', options.breakerSuccessThreshold ?? d.breakerSuccessThreshold, {
      min: 1,
    }),
    breakerOpenTimeoutMs: check.nonNegative('breakerOpenTimeoutMs', options.breakerOpenTimeoutMs ?? d.breakerOpenTimeoutMs),
    clock: options.clock ?? systemClock,
    telemetry: options.telemetry,
    faults: options.faults,
  };
}
