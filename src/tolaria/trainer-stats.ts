/**
 * The trainer's running statistics: loss and gradient-norm EWMAs (reference
 * prototype-tolaria-oona-nissa-weatherlight §2.4 step 9h, α = 0.2), the loss-divergence
 * detector, and the epoch accumulators. All of it is plain numbers with a JSON state, so
 * checkpoints and rollback snapshots carry it and a resumed run reports the same metrics.
 */
import { quantile } from '../core/index.js';

/** EWMA smoothing factor of the prototype. */
export const EWMA_ALPHA = 0.2;

/** Serialisable state of an {@link Ewma}. */
export interface EwmaState {
  readonly mean: number;
  readonly variance: number;
  readonly count: number;
}

/**
 * Exponentially weighted mean and variance (reference §2.4 9h): `mean' = α·x + (1−α)·mean`,
 * `var' = max(0, α·(x−mean)·(x−mean') + (1−α)·var)`. The first sample sets the mean (the
 * prototype started from 0, which biased the first ~10 steps towards 0; a departure).
 */
export class Ewma {
  #mean = 0;
  #variance = 0;
  #count = 0;

  constructor(readonly alpha = EWMA_ALPHA) {}

  get mean(): number {
    return this.#mean;
  }

  get variance(): number {
    return this.#variance;
  }

  /** √variance. */
  get deviation(): number {
    return Math.sqrt(this.#variance);
  }

  get count(): number {
    return this.#count;
  }

  update(x: number): void {
    if (this.#count === 0) {
      this.#mean = x;
      this.#variance = 0;
    } else {
      const previous = this.#mean;
      this.#mean = this.alpha * x + (1 - this.alpha) * previous;
      this.#variance = Math.max(0, this.alpha * (x - previous) * (x - this.#mean) + (1 - this.alpha) * this.#variance);
    }
    this.#count += 1;
  }

  state(): EwmaState {
    return { mean: this.#mean, variance: this.#variance, count: this.#count };
  }

  restore(state: EwmaState): void {
    this.#mean = state.mean;
    this.#variance = state.variance;
    this.#count = state.count;
  }
}

/** Options of {@link LossDivergenceDetector} (esper-2026-anchor §4 "Governor" defaults). */
export interface LossDivergenceOptions {
  /**
   * Recent finite losses the statistics use.
   * @default 20
   */
  readonly windowSteps?: number;
  /**
   * Samples needed before the detector judges anything.
   * @default 10
   */
  readonly minSamples?: number;
  /**
   * A panic needs the loss above this absolute value…
   * @default 12
   */
  readonly absoluteLoss?: number;
  /**
   * …and above mean + `sigmas`·σ of the window…
   * @default 6
   */
  readonly sigmas?: number;
  /**
   * …and above `ratio`·mean.
   * @default 3
   */
  readonly ratio?: number;
  /**
   * Consecutive panics that make a divergence.
   * @default 3
   */
  readonly consecutive?: number;
}

/** Defaults of {@link LossDivergenceOptions}. */
export const LOSS_DIVERGENCE_DEFAULTS: Required<LossDivergenceOptions> = Object.freeze({
  windowSteps: 20,
  minSamples: 10,
  absoluteLoss: 12,
  sigmas: 6,
  ratio: 3,
  consecutive: 3,
});

/** Serialisable state of a {@link LossDivergenceDetector}. */
export interface LossDivergenceState {
  readonly window: readonly number[];
  readonly panics: number;
}

/**
 * Statistical loss-explosion detector (the later Python version's Governor, esper-2026-anchor
 * §4): a loss "panics" when it is above an absolute floor, above mean + kσ and above a
 * multiple of the mean of the recent window; `consecutive` panics in a row are a
 * divergence. Panicking losses do not enter the window, so the baseline stays the
 * pre-divergence one.
 */
export class LossDivergenceDetector {
  readonly options: Required<LossDivergenceOptions>;
  #window: number[] = [];
  #panics = 0;

  constructor(options: LossDivergenceOptions = {}) {
    const merged = { ...LOSS_DIVERGENCE_DEFAULTS };
    for (const [key, value] of Object.entries(options)) {
      if (value !== undefined) (merged as Record<string, number>)[key] = value as number;
    }
    this.options = Object.freeze(merged);
  }

  /** Judges a finite loss; true when it completes a divergence (the streak then restarts). */
  observe(loss: number): boolean {
    const { windowSteps, minSamples, absoluteLoss, sigmas, ratio, consecutive } = this.options;
    let panic = false;
    if (this.#window.length >= minSamples) {
      const mean = this.#window.reduce((a, b) => a + b, 0) / this.#window.length;
      const variance = this.#window.reduce((a, b) => a + (b - mean) ** 2, 0) / this.#window.length;
      panic = loss > absoluteLoss && loss > mean + sigmas * Math.sqrt(variance) && loss > ratio * mean;
    }
    if (!panic) {
      this.#panics = 0;
      this.#window.push(loss);
      if (this.#window.length > windowSteps) this.#window.shift();
      return false;
    }
    this.#panics += 1;
    if (this.#panics < consecutive) return false;
    this.#panics = 0;
    return true;
  }

  state(): LossDivergenceState {
    return { window: [...this.#window], panics: this.#panics };
  }

  restore(state: LossDivergenceState): void {
    this.#window = [...state.window];
    this.#panics = state.panics;
  }
}

/** Serialisable per-epoch accumulators. */
export interface EpochAccumulatorState {
  /** Σ batch-mean loss × batch size. */
  readonly lossSum: number;
  readonly samples: number;
  readonly correct: number;
  /** Σ per-step global gradient norm. */
  readonly gradNormSum: number;
  readonly steps: number;
  /** Σ per-step hook (controller + executor) time. */
  readonly hookMsSum: number;
  readonly maxHookMs: number;
  readonly lastHookMs: number;
  /** Σ per-step training wall time. */
  readonly trainMsSum: number;
  /** First step-failure reason of the epoch ('' = none). */
  readonly failureReason: string;
}

/** Per-seed attribution sums of one epoch. */
export interface SeedAttribution {
  readonly siteId: string;
  normSum: number;
  shareSum: number;
  uses: number;
  params: number;
}

const EMPTY_EPOCH: EpochAccumulatorState = Object.freeze({
  lossSum: 0,
  samples: 0,
  correct: 0,
  gradNormSum: 0,
  steps: 0,
  hookMsSum: 0,
  maxHookMs: 0,
  lastHookMs: 0,
  trainMsSum: 0,
  failureReason: '',
});

/**
 * What one epoch has accumulated. The mean loss is sample-weighted (Σ mean·n / Σ n), not
 * the prototype's Σ batch-mean / samples (a [quirk] of reference §2.4 "EpochStats").
 */
export class EpochAccumulator {
  #state: { -readonly [K in keyof EpochAccumulatorState]: EpochAccumulatorState[K] } = { ...EMPTY_EPOCH };
  /** Per-seed gradient attribution (telemetry only; not checkpointed). */
  readonly seeds = new Map<string, SeedAttribution>();
  /** Step wall times of this epoch, for the median (telemetry only; not checkpointed). */
  readonly stepMs: number[] = [];

  get state(): EpochAccumulatorState {
    return { ...this.#state };
  }

  restore(state: EpochAccumulatorState): void {
    this.#state = { ...state };
    this.seeds.clear();
    this.stepMs.length = 0;
  }

  reset(): void {
    this.restore(EMPTY_EPOCH);
  }

  addStep(step: { loss: number; batchSize: number; correct: number; gradNorm: number; trainMs: number }): void {
    this.#state.lossSum += step.loss * step.batchSize;
    this.#state.samples += step.batchSize;
    this.#state.correct += step.correct;
    this.#state.gradNormSum += step.gradNorm;
    this.#state.steps += 1;
    this.#state.trainMsSum += step.trainMs;
  }

  addHook(hookMs: number): void {
    this.#state.hookMsSum += hookMs;
    this.#state.lastHookMs = hookMs;
    if (hookMs > this.#state.maxHookMs) this.#state.maxHookMs = hookMs;
  }

  /** Keeps the first failure reason of the epoch. */
  fail(reason: string): void {
    if (this.#state.failureReason === '') this.#state.failureReason = reason;
  }

  addSeed(siteId: string, norm: number, share: number, params: number): void {
    const entry = this.seeds.get(siteId) ?? { siteId, normSum: 0, shareSum: 0, uses: 0, params };
    entry.normSum += norm;
    entry.shareSum += share;
    entry.uses += 1;
    entry.params = params;
    this.seeds.set(siteId, entry);
  }

  get meanLoss(): number {
    return this.#state.samples === 0 ? 0 : this.#state.lossSum / this.#state.samples;
  }

  get accuracy(): number {
    return this.#state.samples === 0 ? 0 : this.#state.correct / this.#state.samples;
  }

  get meanGradNorm(): number {
    return this.#state.steps === 0 ? 0 : this.#state.gradNormSum / this.#state.steps;
  }

  /**
   * Median step wall time of the steps run in this process this epoch (0 when none): core's
   * `quantile` at 0.5, so with an even count the mean of the two middle steps.
   */
  get medianStepMs(): number {
    return quantile(this.stepMs, 0.5) ?? 0;
  }
}

/** Counters that live across epochs. */
export interface RunCounters {
  readonly epochsTotal: number;
  readonly epochsFailed: number;
  readonly failedEpochStreak: number;
  readonly nonFiniteLossTotal: number;
  /** Validation of the last completed epoch (-1 before any). */
  readonly lastValidationLoss: number;
  readonly lastValidationAccuracy: number;
}

/** Everything of the trainer's statistics a checkpoint or snapshot carries. */
export interface TrainerProgress {
  readonly loss: EwmaState;
  readonly gradNorm: EwmaState;
  /** Loss of the last successful step (null before the first). */
  readonly lastLoss: number | null;
  readonly divergence: LossDivergenceState;
  readonly epoch: EpochAccumulatorState;
  readonly counters: RunCounters;
  /** Factor on the schedule's rate set by the last OPTIMIZER command (1 without one). */
  readonly lrScale: number;
}
