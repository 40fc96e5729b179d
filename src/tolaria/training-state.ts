/**
 * Where training stands: the step count, the data cursor, the executor's random stream and
 * the running statistics. A checkpoint or fast snapshot saves all of it, and a resume or
 * rollback puts it back, so the run continues bit-identically.
 */
import { rngFromState, seededRng, type Rng, type RngState } from '../tensor/index.js';
import type { StepSignals } from './controller.js';
import { DataCursor } from './data/data-cursor.js';
import type { DataCursorState } from './dataset.js';
import type { StepResult } from './step-compute.js';
import {
  EpochAccumulator,
  Ewma,
  LossDivergenceDetector,
  type LossDivergenceOptions,
  type RunCounters,
  type TrainerProgress,
} from './trainer-stats.js';

/** The position a checkpoint or snapshot restores. */
export interface TrainingPosition {
  readonly globalStep: number;
  readonly cursor: DataCursorState;
  readonly rng: RngState;
}

/** The trainer's position and statistics; the other parts of the trainer read and move it. */
export class TrainingState {
  /** Optimizer steps taken. */
  globalStep = 0;
  cursor: DataCursor;
  /** The executor's random stream (handed over in its context). */
  rng: Rng;
  readonly lossStats = new Ewma();
  readonly gradStats = new Ewma();
  /** What the epoch in progress has accumulated. */
  readonly epoch = new EpochAccumulator();
  readonly divergence: LossDivergenceDetector | undefined;
  counters: { -readonly [K in keyof RunCounters]: RunCounters[K] } = {
    epochsTotal: 0,
    epochsFailed: 0,
    failedEpochStreak: 0,
    nonFiniteLossTotal: 0,
    lastValidationLoss: -1,
    lastValidationAccuracy: -1,
  };
  /** Loss of the last successful step (null before the first). */
  lastLoss: number | null = null;
  /** What the last successful step measured, for the executor's `advance`. Not saved. */
  lastStep: StepSignals | undefined;
  /** Factor on the schedule's rate, set by OPTIMIZER commands. */
  lrScale = 1;
  readonly #datasetSize: number;

  constructor(options: { readonly datasetSize: number; readonly seed: number; readonly lossDivergence: LossDivergenceOptions | false }) {
    this.#datasetSize = options.datasetSize;
    this.cursor = new DataCursor({ size: options.datasetSize, seed: options.seed });
    this.rng = seededRng(options.seed).fork(3);
    this.divergence = options.lossDivergence === false ? undefined : new LossDivergenceDetector(options.lossDivergence);
  }

  /** The position to save. */
  position(): TrainingPosition {
    return { globalStep: this.globalStep, cursor: this.cursor.state(), rng: this.rng.getState() };
  }

  /** Moves to a saved position. */
  restorePosition(position: TrainingPosition): void {
    this.cursor = DataCursor.restore(position.cursor, { size: this.#datasetSize });
    this.rng = rngFromState(position.rng);
    this.globalStep = position.globalStep;
  }

  /** Counts a successful step and folds its measurements into the statistics; returns its loss delta. */
  recordStep(result: StepResult, batchSize: number, trainMs: number): number {
    this.globalStep += 1;
    const lossDelta = this.lastLoss === null ? 0 : result.loss - this.lastLoss;
    this.lastLoss = result.loss;
    this.lastStep = {
      trainingLoss: result.loss,
      hookGradientNorms: new Map(result.hookNorms.map((h) => [h.siteId, Number.isFinite(h.norm) ? h.norm : Number.NaN])),
    };
    this.lossStats.update(result.loss);
    this.gradStats.update(result.gradNorm);
    this.epoch.addStep({ loss: result.loss, batchSize, correct: result.correct, gradNorm: result.gradNorm, trainMs });
    const normSum = result.hostNorm + result.hookNorms.reduce((s, h) => s + h.norm, 0);
    for (const hook of result.hookNorms) this.epoch.addSeed(hook.siteId, hook.norm, normSum > 0 ? hook.norm / normSum : 0, hook.params);
    return lossDelta;
  }

  /** Validation of the last completed epoch, if any. */
  latestValidation(): { loss: number; accuracy: number } | undefined {
    return this.counters.lastValidationLoss < 0
      ? undefined
      : { loss: this.counters.lastValidationLoss, accuracy: this.counters.lastValidationAccuracy };
  }

  /** The statistics to save. */
  progress(): TrainerProgress {
    return {
      loss: this.lossStats.state(),
      gradNorm: this.gradStats.state(),
      lastLoss: this.lastLoss,
      divergence: this.divergence?.state() ?? { window: [], panics: 0 },
      epoch: this.epoch.state,
      counters: { ...this.counters },
      lrScale: this.lrScale,
    };
  }

  /**
   * Restores statistics. On resume every counter comes back; on rollback only the
   * position-like ones (epochs completed, latest validation), since a rollback must not
   * undo the count of what went wrong.
   */
  restoreProgress(progress: TrainerProgress, withCounters: boolean): void {
    this.lossStats.restore(progress.loss);
    this.gradStats.restore(progress.gradNorm);
    this.lastLoss = progress.lastLoss;
    this.divergence?.restore(progress.divergence);
    this.epoch.restore(progress.epoch);
    this.lrScale = progress.lrScale;
    if (withCounters) {
      this.counters = { ...progress.counters };
    } else {
      this.counters.epochsTotal = progress.counters.epochsTotal;
      this.counters.lastValidationLoss = progress.counters.lastValidationLoss;
      this.counters.lastValidationAccuracy = progress.counters.lastValidationAccuracy;
    }
  }
}
