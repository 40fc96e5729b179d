/**
 * One seed's row of the swimlane: the stages it went through over global steps, its alpha
 * and contribution, and its fate. Fed by state packets (`SeedState`) and by Kasmina's seed
 * events (`stage_transition` carries the exact step of a move).
 */
import { BoundedCurve } from './bounded-curve.js';
import type { SeedFate, SeedLaneView, StageInterval } from './view-types.js';

/** Bounds of one lane. */
export interface SeedLaneLimits {
  readonly maxIntervals: number;
  readonly maxAlphaPoints: number;
}

/** Stages after which a seed does nothing more. */
const FINAL_STAGES: ReadonlySet<string> = new Set(['FOSSILIZED', 'CULLED', 'TERMINATED']);

/** True for a stage a seed ends in. */
export function isFinalStage(stage: string): boolean {
  return FINAL_STAGES.has(stage);
}

/** A seed's mutable lane; {@link SeedLane.view} is its JSON. */
export class SeedLane {
  readonly seedId: string;
  siteId = '';
  blueprintId = '';
  alpha = 0;
  contribution: number | undefined;
  fate: SeedFate | undefined;
  firstStep: number;
  lastStep: number;
  updatedSeq = 0;
  /** Intervals dropped (oldest first) to respect the bound. */
  intervalsDropped = 0;
  readonly #intervals: { stage: string; fromStep: number; toStep: number }[] = [];
  readonly #alpha: BoundedCurve;
  readonly #maxIntervals: number;

  constructor(seedId: string, step: number, limits: SeedLaneLimits) {
    this.seedId = seedId;
    this.firstStep = step;
    this.lastStep = step;
    this.#maxIntervals = Math.max(2, limits.maxIntervals);
    this.#alpha = new BoundedCurve(limits.maxAlphaPoints);
  }

  /** The current stage name, `UNKNOWN` before any. */
  get stage(): string {
    return this.#intervals.at(-1)?.stage ?? 'UNKNOWN';
  }

  /** True once the seed reached a final stage or a fate was recorded. */
  get ended(): boolean {
    return this.fate !== undefined || isFinalStage(this.stage);
  }

  /**
   * The seed was seen in `stage` at `step`: extends the current interval or, on a change,
   * closes it at `step` and opens the next. Steps earlier than the current interval's start
   * are redeliveries and are ignored. Returns whether the lane changed.
   */
  observeStage(stage: string, step: number, seq: number): boolean {
    const current = this.#intervals.at(-1);
    this.#touch(step);
    if (current === undefined) {
      this.#intervals.push({ stage, fromStep: step, toStep: step });
    } else if (current.stage === stage) {
      if (step <= current.toStep) return false;
      current.toStep = step;
    } else {
      if (step < current.fromStep) return false;
      current.toStep = step;
      this.#intervals.push({ stage, fromStep: step, toStep: step });
      this.#bound();
    }
    this.updatedSeq = seq;
    return true;
  }

  /**
   * Kasmina moved the seed `from` → `to` at `step`. When the state packets already showed the
   * move at a later step, the boundary is moved back to the exact one.
   */
  observeTransition(from: string, to: string, step: number, seq: number): boolean {
    const current = this.#intervals.at(-1);
    const previous = this.#intervals.at(-2);
    if (current?.stage === to && step < current.fromStep) {
      if (previous !== undefined && previous.stage === from && step >= previous.fromStep) {
        previous.toStep = step;
        current.fromStep = step;
        this.updatedSeq = seq;
        return true;
      }
      return false;
    }
    if (current === undefined && from.length > 0) this.observeStage(from, step, seq);
    return this.observeStage(to, step, seq);
  }

  /** Records the blend weight at `step`. */
  observeAlpha(alpha: number, step: number, seq: number): boolean {
    if (!Number.isFinite(alpha)) return false;
    const changed = this.#alpha.push(step, alpha, seq);
    if (alpha !== this.alpha) {
      this.alpha = alpha;
      this.updatedSeq = seq;
      return true;
    }
    if (changed) this.updatedSeq = seq;
    return changed;
  }

  /** Records a measured counterfactual contribution. */
  observeContribution(contribution: number, seq: number): boolean {
    if (!Number.isFinite(contribution) || contribution === this.contribution) return false;
    this.contribution = contribution;
    this.updatedSeq = seq;
    return true;
  }

  /** Records the seed's fate (the first one wins). */
  observeFate(fate: SeedFate, seq: number): boolean {
    if (this.fate !== undefined) return false;
    this.fate = fate;
    this.#touch(fate.atStep);
    this.updatedSeq = seq;
    return true;
  }

  /** Updates where the seed grows (ids may arrive after the first sighting). */
  observePlace(siteId: string, blueprintId: string, seq: number): boolean {
    let changed = false;
    if (siteId.length > 0 && siteId !== this.siteId) {
      this.siteId = siteId;
      changed = true;
    }
    if (blueprintId.length > 0 && blueprintId !== this.blueprintId) {
      this.blueprintId = blueprintId;
      changed = true;
    }
    if (changed) this.updatedSeq = seq;
    return changed;
  }

  /** The lane's JSON. */
  view(): SeedLaneView {
    const intervals: StageInterval[] = this.#intervals.map((i) => ({ stage: i.stage, fromStep: i.fromStep, toStep: i.toStep }));
    return {
      seedId: this.seedId,
      siteId: this.siteId,
      blueprintId: this.blueprintId,
      stage: this.stage,
      intervals,
      alpha: this.alpha,
      alphaPoints: this.#alpha.points(),
      ...(this.contribution === undefined ? {} : { contribution: this.contribution }),
      ...(this.fate === undefined ? {} : { fate: this.fate }),
      firstStep: this.firstStep,
      lastStep: this.lastStep,
    };
  }

  #touch(step: number): void {
    if (step > this.lastStep) this.lastStep = step;
    if (step < this.firstStep) this.firstStep = step;
  }

  #bound(): void {
    while (this.#intervals.length > this.#maxIntervals) {
      this.#intervals.shift();
      this.intervalsDropped += 1;
    }
  }
}
