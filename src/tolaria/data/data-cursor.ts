/**
 * {@link DataCursor}: the order in which a split's examples are visited, deterministic and
 * resumable. Epoch `e` visits every index exactly once, in the permutation drawn by
 * `seededRng(seed).fork(e)` — a pure function of (seed, epoch), so the cursor's whole
 * position is `{ seed, epoch, position }` ({@link DataCursorState}) and a restored cursor
 * hands out exactly the indices an uninterrupted one would.
 *
 * Batches never span epochs. **The last batch of an epoch is short** (size mod batchSize
 * examples) rather than dropped, so every example is seen each epoch; the epoch rolls
 * over on the next {@link DataCursor.nextBatch} call.
 */
import { optionChecks } from '../../core/index.js';
import { seededRng } from '../../tensor/index.js';
import type { DataCursorState } from '../dataset.js';

/** Options of {@link DataCursor}. */
export interface DataCursorOptions {
  /** Examples in the split the cursor walks. */
  readonly size: number;
  /** Seed of the shuffle order (non-negative safe integer). */
  readonly seed: number;
  /**
   * Shuffle each epoch; `false` visits `0 … size−1` in order every epoch (validation).
   * @default true
   */
  readonly shuffle?: boolean;
}

const check = optionChecks('DataCursor');

/** A deterministic, resumable walk over a split, epoch by epoch. */
export class DataCursor {
  /** Examples per epoch. */
  readonly size: number;
  /** Seed of the shuffle order. */
  readonly seed: number;
  /** Whether each epoch is shuffled. */
  readonly shuffle: boolean;
  private currentEpoch: number;
  private currentPosition: number;
  private order: Int32Array | undefined;

  constructor(options: DataCursorOptions, start: { readonly epoch: number; readonly position: number } = { epoch: 0, position: 0 }) {
    check.integer('size', options.size, { min: 1 });
    check.integer('seed', options.seed, { min: 0 });
    check.integer('epoch', start.epoch, { min: 0 });
    check.integer('position', start.position, { min: 0, max: options.size });
    this.size = options.size;
    this.seed = options.seed;
    this.shuffle = options.shuffle ?? true;
    this.currentEpoch = start.epoch;
    this.currentPosition = start.position;
  }

  /**
   * A cursor at a checkpointed position. `options` gives what the state does not carry
   * (the split size and the shuffle flag); the state's seed is used.
   */
  static restore(state: DataCursorState, options: Omit<DataCursorOptions, 'seed'>): DataCursor {
    if (typeof state !== 'object' || state === null) check.fail('state', 'an object', state);
    return new DataCursor({ ...options, seed: state.seed }, { epoch: state.epoch, position: state.position });
  }

  /** The epoch the next batch comes from, unless the current one has ended. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** Examples of the current epoch already handed out. */
  get position(): number {
    return this.currentPosition;
  }

  /** Examples left in the current epoch. */
  get remaining(): number {
    return this.size - this.currentPosition;
  }

  /** Whether the current epoch has been handed out completely. */
  get epochEnded(): boolean {
    return this.currentPosition === this.size;
  }

  /** Batches per epoch at `batchSize`, the short last batch included. */
  batchesPerEpoch(batchSize: number): number {
    this.assertBatchSize(batchSize);
    return Math.ceil(this.size / batchSize);
  }

  /**
   * The next `batchSize` indices of the current epoch (fewer for the epoch's last batch).
   * When the current epoch has ended, first moves to the next epoch. The caller owns the
   * returned array.
   */
  nextBatch(batchSize: number): Int32Array {
    this.assertBatchSize(batchSize);
    if (this.epochEnded) {
      this.currentEpoch += 1;
      this.currentPosition = 0;
      this.order = undefined;
    }
    const order = this.epochOrder();
    const end = Math.min(this.size, this.currentPosition + batchSize);
    const batch = order.slice(this.currentPosition, end);
    this.currentPosition = end;
    return batch;
  }

  /** The cursor's position, for checkpoints. */
  state(): DataCursorState {
    return { seed: this.seed, epoch: this.currentEpoch, position: this.currentPosition };
  }

  private epochOrder(): Int32Array {
    if (this.order === undefined) {
      if (this.shuffle) {
        this.order = seededRng(this.seed).fork(this.currentEpoch).permutation(this.size);
      } else {
        this.order = new Int32Array(this.size);
        for (let i = 0; i < this.size; i += 1) this.order[i] = i;
      }
    }
    return this.order;
  }

  private assertBatchSize(batchSize: number): void {
    check.integer('batchSize', batchSize, { min: 1 });
  }
}
