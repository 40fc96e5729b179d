/**
 * The fast tier of Tolaria's two-tier rollback (reference prototype-tolaria-oona-nissa-weatherlight
 * §2.12): in-memory snapshots of the training state in a byte-capped cache. Snapshots are
 * tensor clones, which share buffers copy-on-assign (~0.3 ms for the 270k-parameter MLP
 * against ~16 ms to encode it). Departures: replacing a snapshot of the same step frees
 * the old one (the prototype double-counted its bytes); eviction is oldest-first.
 */
import { optionChecks } from '../core/index.js';
import { tf, type RngState } from '../tensor/index.js';
import type { DataCursorState } from './dataset.js';
import type { OptimizerStateSnapshot } from './optimizer-manager.js';
import type { TrainerProgress } from './trainer-stats.js';

/** One in-memory snapshot of the training state. Owned by the cache once `put` there. */
export interface TrainingSnapshot {
  /** Optimizer steps taken when the snapshot was cut. */
  readonly globalStep: number;
  readonly cursor: DataCursorState;
  readonly rng: RngState;
  readonly progress: TrainerProgress;
  /** Clones of the trainable variables' values, by variable. */
  readonly weights: ReadonlyMap<tf.Variable, tf.Tensor>;
  readonly optimizer: OptimizerStateSnapshot;
  /** Bytes held (weights + optimizer state). */
  readonly bytes: number;
  /** Frees the cloned tensors. Idempotent. */
  dispose(): void;
}

/** Clones the values of `variables` (cheap: shared buffers, copy-on-assign). Caller owns the clones. */
export function cloneWeights(variables: readonly tf.Variable[]): Map<tf.Variable, tf.Tensor> {
  return new Map(variables.map((v) => [v, tf.keep(tf.clone(v))]));
}

/**
 * Assigns cloned values back to the variables that still exist. Variables created after
 * the snapshot (a hook attached since) keep their values; returns how many were restored.
 */
export function restoreWeights(weights: ReadonlyMap<tf.Variable, tf.Tensor>, variables: readonly tf.Variable[]): number {
  let restored = 0;
  for (const variable of variables) {
    const value = weights.get(variable);
    if (value === undefined) continue;
    variable.assign(value);
    restored += 1;
  }
  return restored;
}

/** Assembles a {@link TrainingSnapshot} from its parts (takes ownership of the tensors). */
export function makeSnapshot(parts: Omit<TrainingSnapshot, 'bytes' | 'dispose'>): TrainingSnapshot {
  let disposed = false;
  const weightBytes = [...parts.weights.values()].reduce((sum, t) => sum + t.size * 4, 0);
  return {
    ...parts,
    bytes: weightBytes + parts.optimizer.bytes,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      tf.dispose([...parts.weights.values()]);
      parts.optimizer.dispose();
    },
  };
}

/** Options of {@link FastRollbackCache}. */
export interface FastRollbackCacheOptions {
  /**
   * Byte cap of the cache (the prototype's `TOLARIA_ROLLBACK_FAST_CAP_MB`). The newest
   * snapshot is always kept, even when it alone exceeds the cap.
   * @default 32 MiB
   */
  readonly maxBytes?: number;
}

/** Snapshots by step, oldest evicted first past the byte cap. */
export class FastRollbackCache {
  readonly maxBytes: number;
  readonly #entries: TrainingSnapshot[] = [];
  #bytes = 0;
  #putsTotal = 0;

  constructor(options: FastRollbackCacheOptions = {}) {
    this.maxBytes = optionChecks('FastRollbackCacheOptions').integer('maxBytes', options.maxBytes ?? 32 * 1024 * 1024, { min: 1 });
  }

  /** Bytes held now. */
  get sizeBytes(): number {
    return this.#bytes;
  }

  /** Snapshots held now. */
  get count(): number {
    return this.#entries.length;
  }

  /** Snapshots ever stored. */
  get putsTotal(): number {
    return this.#putsTotal;
  }

  /**
   * Stores `snapshot` (the cache owns it from now on). A snapshot of the same step is
   * replaced; snapshots of later steps (a timeline abandoned by a rollback) are dropped;
   * then the oldest are evicted until the cap holds.
   */
  put(snapshot: TrainingSnapshot): void {
    for (let i = this.#entries.length - 1; i >= 0; i -= 1) {
      const entry = this.#entries[i] as TrainingSnapshot;
      if (entry.globalStep >= snapshot.globalStep) this.#removeAt(i);
    }
    this.#entries.push(snapshot);
    this.#bytes += snapshot.bytes;
    this.#putsTotal += 1;
    while (this.#bytes > this.maxBytes && this.#entries.length > 1) this.#removeAt(0);
  }

  /** The newest snapshot cut at or before `step`, or undefined. The cache keeps owning it. */
  nearest(step: number): TrainingSnapshot | undefined {
    for (let i = this.#entries.length - 1; i >= 0; i -= 1) {
      const entry = this.#entries[i] as TrainingSnapshot;
      if (entry.globalStep <= step) return entry;
    }
    return undefined;
  }

  /** Frees every snapshot. */
  clear(): void {
    while (this.#entries.length > 0) this.#removeAt(this.#entries.length - 1);
  }

  #removeAt(index: number): void {
    const [entry] = this.#entries.splice(index, 1);
    if (entry === undefined) return;
    this.#bytes -= entry.bytes;
    entry.dispose();
  }
}
