/**
 * The learning-rate schedule (reference prototype-tolaria-oona-nissa-weatherlight §2.10):
 * a pure function of (global step, epoch), optionally behind a linear warm-up, so a
 * checkpoint needs no schedule state. Policies and formulas: `docs/architecture.md`
 * § Tolaria. Departures (prototype-rc1-plan §3.1.0 "lr_controller.py"): an unknown policy
 * is an error; the warm-up floor is an option (`warmupStartFactor`); the rate is computed
 * before each step, so warm-up governs the first step; cosine anneals to `minLr` and stays.
 */
import { optionChecks } from '../core/index.js';

/** Schedules the controller knows. */
export const LrSchedulePolicy = {
  CONSTANT: 'constant',
  COSINE: 'cosine',
  STEP: 'step',
} as const;

/** Union of {@link LrSchedulePolicy} values. */
export type LrSchedulePolicy = (typeof LrSchedulePolicy)[keyof typeof LrSchedulePolicy];

/** Options of {@link LrController}. */
export interface LrScheduleOptions {
  /** @default 'constant' */
  readonly policy?: LrSchedulePolicy;
  /**
   * Linear warm-up length in optimizer steps (0 = none).
   * @default 0
   */
  readonly warmupSteps?: number;
  /**
   * Fraction of the base rate the warm-up starts from (its floor), in (0, 1].
   * @default 0.1
   */
  readonly warmupStartFactor?: number;
  /**
   * Cosine: steps over which the rate anneals from base to `minLr` (the prototype's
   * `t_max`).
   * @default 10000
   */
  readonly totalSteps?: number;
  /**
   * Cosine: the rate reached at `totalSteps`.
   * @default 0
   */
  readonly minLr?: number;
  /**
   * Step: epochs between decays.
   * @default 10
   */
  readonly stepSizeEpochs?: number;
  /**
   * Step: multiplicative decay per `stepSizeEpochs`, in (0, 1].
   * @default 0.5
   */
  readonly gamma?: number;
}

/** {@link LrScheduleOptions} with every default applied. */
export type ResolvedLrScheduleOptions = Required<LrScheduleOptions>;

/** Defaults of {@link LrScheduleOptions} (the prototype's `build_controller` defaults). */
export const LR_SCHEDULE_DEFAULTS: ResolvedLrScheduleOptions = Object.freeze({
  policy: LrSchedulePolicy.CONSTANT,
  warmupSteps: 0,
  warmupStartFactor: 0.1,
  totalSteps: 10_000,
  minLr: 0,
  stepSizeEpochs: 10,
  gamma: 0.5,
});

/** The schedule is the trainer's `lrSchedule` option: errors name it so. */
const check = optionChecks('TrainerOptions');

/** Merges `options` over {@link LR_SCHEDULE_DEFAULTS}, validating every field. */
export function resolveLrScheduleOptions(options: LrScheduleOptions = {}): ResolvedLrScheduleOptions {
  const merged = { ...LR_SCHEDULE_DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  check.oneOf('lrSchedule.policy', merged.policy, Object.values(LrSchedulePolicy));
  check.integer('lrSchedule.warmupSteps', merged.warmupSteps, { min: 0 });
  check.number('lrSchedule.warmupStartFactor', merged.warmupStartFactor, { greaterThan: 0, max: 1 });
  check.integer('lrSchedule.totalSteps', merged.totalSteps, { min: 1 });
  check.nonNegative('lrSchedule.minLr', merged.minLr);
  check.integer('lrSchedule.stepSizeEpochs', merged.stepSizeEpochs, { min: 1 });
  check.number('lrSchedule.gamma', merged.gamma, { greaterThan: 0, max: 1 });
  return Object.freeze(merged);
}

/** Computes the learning rate of each optimizer step. */
export class LrController {
  /** The resolved schedule. */
  readonly options: ResolvedLrScheduleOptions;
  /** The rate the schedule scales. */
  readonly baseLr: number;

  /**
   * @param baseLr the optimizer's configured rate (finite, > 0)
   * @throws EsperError INVALID_ARGUMENT naming the bad field
   */
  constructor(baseLr: number, options: LrScheduleOptions = {}) {
    this.baseLr = optionChecks('LrController').positive('learningRate', baseLr);
    this.options = resolveLrScheduleOptions(options);
    check.number('lrSchedule.minLr', this.options.minLr, { min: 0, max: baseLr });
  }

  /** Whether the rate ever differs from the base rate (reference `tolaria.lr_controller.enabled`). */
  get enabled(): boolean {
    return this.options.policy !== LrSchedulePolicy.CONSTANT || this.options.warmupSteps > 0;
  }

  /**
   * The rate for the optimizer step about to run.
   * @param step global optimizer steps already taken (0 for the first step)
   * @param epoch 0-based epoch the step belongs to
   */
  rate(step: number, epoch: number): number {
    const { warmupSteps, warmupStartFactor } = this.options;
    if (step < warmupSteps) return this.baseLr * Math.max(warmupStartFactor, (step + 1) / warmupSteps);
    return this.#scheduled(step - warmupSteps, epoch);
  }

  #scheduled(step: number, epoch: number): number {
    const { policy, totalSteps, minLr, stepSizeEpochs, gamma } = this.options;
    switch (policy) {
      case LrSchedulePolicy.CONSTANT:
        return this.baseLr;
      case LrSchedulePolicy.COSINE: {
        const t = Math.min(Math.max(step, 0), totalSteps);
        return minLr + (this.baseLr - minLr) * 0.5 * (1 + Math.cos((Math.PI * t) / totalSteps));
      }
      case LrSchedulePolicy.STEP:
        return this.baseLr * gamma ** Math.floor(epoch / stepSizeEpochs);
    }
  }
}
