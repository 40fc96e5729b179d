/**
 * Kasmina's memory governance over the kernel cache (reference prototype-kasmina §9.3):
 * expired entries swept on every command and every `gcEveryEpochs` epochs, everything on an
 * emergency. Tensors are freed by their owners' `dispose()`, so the sweep is the cache's;
 * there is no teacher entry to keep (§17 item 12).
 */
import { optionChecks, systemClock, type Clock } from '../core/index.js';
import type { KernelCache } from './kernel-cache.js';

const onEpochCheck = optionChecks('MemoryGovernor.onEpoch');

/** Options of {@link MemoryGovernor}. */
export interface MemoryGovernorOptions {
  /** The cache governed. Required. */
  readonly cache: KernelCache;
  /** Epochs between periodic sweeps (`settings.kasmina.gcEveryEpochs`). Integer ≥ 1. */
  readonly gcEveryEpochs: number;
  /** Time source of `lastGcAtMs`. @default systemClock */
  readonly clock?: Clock;
}

/** What {@link MemoryGovernor.onEpoch} returns. */
export interface MemoryGcResult {
  /** Whether the periodic sweep ran at this epoch. */
  readonly ran: boolean;
  /** Expired entries the sweep removed (0 when it did not run). */
  readonly expired: number;
  /** Sweeps run so far. */
  readonly gcCounter: number;
  readonly epoch: number;
}

/** What {@link MemoryGovernor.emergencyCleanup} returns. */
export interface EmergencyCleanupResult {
  /** Cache entries dropped. */
  readonly kernelCacheCleared: number;
}

/** Periodic and emergency cleanup of Kasmina's kernel cache. */
export class MemoryGovernor {
  readonly #cache: KernelCache;
  readonly #gcEveryEpochs: number;
  readonly #clock: Clock;
  #lastGcEpoch = 0;
  #lastGcAtMs: number | undefined;
  #gcCounter = 0;

  /** @throws EsperError `INVALID_ARGUMENT` for a bad `gcEveryEpochs`. */
  constructor(options: MemoryGovernorOptions) {
    this.#cache = options.cache;
    this.#gcEveryEpochs = optionChecks('MemoryGovernor').integer('gcEveryEpochs', options.gcEveryEpochs, { min: 1 });
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Runs the sweep when `epoch − lastGcEpoch ≥ gcEveryEpochs`. An epoch below the last
   * sweep's (a rollback rewound training) restarts the count from it.
   * @throws EsperError `INVALID_ARGUMENT` for a negative or non-integer epoch.
   */
  onEpoch(epoch: number): MemoryGcResult {
    onEpochCheck.integer('epoch', epoch, { min: 0 });
    if (epoch < this.#lastGcEpoch) this.#lastGcEpoch = epoch;
    if (epoch - this.#lastGcEpoch < this.#gcEveryEpochs) {
      return { ran: false, expired: 0, gcCounter: this.#gcCounter, epoch };
    }
    const expired = this.#cache.cleanup();
    this.#gcCounter += 1;
    this.#lastGcEpoch = epoch;
    this.#lastGcAtMs = this.#clock.monotonicMs();
    return { ran: true, expired, gcCounter: this.#gcCounter, epoch };
  }

  /** Removes expired cache entries; the executor calls it per command and step. Returns how many. */
  cleanup(): number {
    return this.#cache.cleanup();
  }

  /** Drops every cache entry (EMERGENCY command). */
  emergencyCleanup(): EmergencyCleanupResult {
    return { kernelCacheCleared: this.#cache.clear() };
  }

  /** Epoch of the last sweep (0 before any). */
  get lastGcEpoch(): number {
    return this.#lastGcEpoch;
  }

  /** `clock.monotonicMs()` of the last sweep, or `undefined` before any. */
  get lastGcAtMs(): number | undefined {
    return this.#lastGcAtMs;
  }

  /** Sweeps run so far. */
  get gcCounter(): number {
    return this.#gcCounter;
  }
}
