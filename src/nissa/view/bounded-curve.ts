/**
 * A curve that keeps at most `maxPoints` points: when full it halves itself, keeping every
 * other point and always the latest, and from then on takes a new point only once its step
 * is a stride past the previous one (the stride growing to the kept points' mean spacing at
 * each halving), so memory is bounded, the points stay evenly spread and the curve's shape
 * survives at a coarser resolution. Each point remembers the board sequence it was added
 * at, so a client can be sent only what it has not seen.
 */
import type { CurveDelta, CurvePoint } from './view-types.js';

/** A bounded, decimating curve of `[step, value]` points with strictly increasing steps. */
export class BoundedCurve {
  readonly #maxPoints: number;
  #points: CurvePoint[] = [];
  #seqs: number[] = [];
  /** Sequence at which the points were last rewritten (decimated or replaced). */
  #resetSeq = 0;
  #updatedSeq = 0;
  #decimated = 0;
  /** Minimum step distance between kept points; grows at each decimation. */
  #strideSteps = 1;

  /** `maxPoints` ≥ 4. */
  constructor(maxPoints: number) {
    this.#maxPoints = Math.max(4, Math.floor(maxPoints));
  }

  /** Points removed by decimation so far. */
  get decimated(): number {
    return this.#decimated;
  }

  get length(): number {
    return this.#points.length;
  }

  get updatedSeq(): number {
    return this.#updatedSeq;
  }

  /** The latest point, if any. */
  get last(): CurvePoint | undefined {
    return this.#points.at(-1);
  }

  /**
   * Adds a point at `seq`. A step not after the latest replaces the latest point when equal
   * and is ignored when earlier (a redelivery); a step closer to the latest than the current
   * stride is sampled out. Returns whether the curve changed.
   */
  push(step: number, value: number, seq: number): boolean {
    if (!Number.isFinite(step) || !Number.isFinite(value)) return false;
    const last = this.#points.at(-1);
    if (last !== undefined && step < last[0]) return false;
    if (last !== undefined && step === last[0]) {
      if (last[1] === value) return false;
      this.#points[this.#points.length - 1] = [step, value];
      // A replaced point is not an append: clients must take the curve again.
      this.#resetSeq = seq;
      this.#updatedSeq = seq;
      return true;
    }
    if (last !== undefined && step - last[0] < this.#strideSteps) {
      this.#decimated += 1;
      return false;
    }
    this.#points.push([step, value]);
    this.#seqs.push(seq);
    this.#updatedSeq = seq;
    if (this.#points.length > this.#maxPoints) this.#decimate(seq);
    return true;
  }

  /** A copy of the points. */
  points(): CurvePoint[] {
    return [...this.#points];
  }

  /** What a client holding the curve up to `since` needs; `undefined` when nothing changed. */
  deltaSince(since: number): CurveDelta | undefined {
    if (this.#updatedSeq <= since) return undefined;
    if (since === 0 || this.#resetSeq > since) return { reset: true, points: this.points() };
    let from = this.#seqs.length;
    while (from > 0 && (this.#seqs[from - 1] ?? 0) > since) from -= 1;
    return { reset: false, points: this.#points.slice(from) };
  }

  #decimate(seq: number): void {
    const keptPoints: CurvePoint[] = [];
    const keptSeqs: number[] = [];
    const lastIndex = this.#points.length - 1;
    for (let i = 0; i <= lastIndex; i += 1) {
      if (i % 2 === 0 || i === lastIndex) {
        keptPoints.push(this.#points[i] as CurvePoint);
        keptSeqs.push(this.#seqs[i] ?? seq);
      }
    }
    this.#decimated += this.#points.length - keptPoints.length;
    this.#points = keptPoints;
    this.#seqs = keptSeqs;
    this.#resetSeq = seq;
    // The kept points' mean spacing: new points arrive no denser than the history kept.
    const first = keptPoints[0]?.[0] ?? 0;
    const lastStep = keptPoints.at(-1)?.[0] ?? 0;
    this.#strideSteps = Math.max(this.#strideSteps, (lastStep - first) / Math.max(1, keptPoints.length - 1));
  }
}
