/**
 * The seed lifecycle: a pure state machine over the Leyline `SeedLifecycleStage`, driven by
 * one allowed-next table (reference prototype-kasmina §4.2). It records where a seed is,
 * since which step, and how it got there; telemetry and gates are the executor's job.
 *
 * Deliberate deviation from the prototype (§4.3, §17.1): an illegal move, including a move
 * to the current stage, throws `KASMINA_ILLEGAL_TRANSITION` instead of being swallowed.
 */
import { ErrorCode, EsperError, optionChecks } from '../core/index.js';
import { SeedLifecycleGate, SeedLifecycleStage } from '../leyline/index.js';

const S = SeedLifecycleStage;

/** Every allowed move: stage → the stages it may move to next (reference §4.2). */
export const LIFECYCLE_TRANSITIONS: ReadonlyMap<SeedLifecycleStage, readonly SeedLifecycleStage[]> = new Map<
  SeedLifecycleStage,
  readonly SeedLifecycleStage[]
>([
  [S.SEED_STAGE_UNKNOWN, Object.freeze([S.SEED_STAGE_DORMANT])],
  [S.SEED_STAGE_DORMANT, Object.freeze([S.SEED_STAGE_GERMINATED, S.SEED_STAGE_TERMINATED])],
  [S.SEED_STAGE_GERMINATED, Object.freeze([S.SEED_STAGE_TRAINING, S.SEED_STAGE_CULLED])],
  [S.SEED_STAGE_TRAINING, Object.freeze([S.SEED_STAGE_BLENDING, S.SEED_STAGE_CULLED])],
  [S.SEED_STAGE_BLENDING, Object.freeze([S.SEED_STAGE_SHADOWING, S.SEED_STAGE_CULLED])],
  [S.SEED_STAGE_SHADOWING, Object.freeze([S.SEED_STAGE_PROBATIONARY, S.SEED_STAGE_CULLED])],
  [S.SEED_STAGE_PROBATIONARY, Object.freeze([S.SEED_STAGE_FOSSILIZED, S.SEED_STAGE_CULLED])],
  [S.SEED_STAGE_FOSSILIZED, Object.freeze([S.SEED_STAGE_TERMINATED])],
  [S.SEED_STAGE_CULLED, Object.freeze([S.SEED_STAGE_EMBARGOED])],
  [S.SEED_STAGE_EMBARGOED, Object.freeze([S.SEED_STAGE_RESETTING])],
  [S.SEED_STAGE_RESETTING, Object.freeze([S.SEED_STAGE_DORMANT])],
  [S.SEED_STAGE_TERMINATED, Object.freeze([])],
]);

/** The stages `stage` may move to (empty for TERMINATED and for values outside the enum). */
export function allowedNext(stage: SeedLifecycleStage): readonly SeedLifecycleStage[] {
  return LIFECYCLE_TRANSITIONS.get(stage) ?? [];
}

/** True when the table allows `from → to` (never for `from === to`). */
export function isTransitionAllowed(from: SeedLifecycleStage, to: SeedLifecycleStage): boolean {
  return allowedNext(from).includes(to);
}

/** The proto enum name of `stage`, e.g. `SEED_STAGE_TRAINING`; the number for unknown values. */
export function stageName(stage: SeedLifecycleStage): string {
  return SeedLifecycleStage[stage] ?? `SEED_STAGE_${String(stage)}`;
}

/** The proto enum name of `gate`, e.g. `SEED_GATE_G0_SANITY`; the number for unknown values. */
export function gateName(gate: SeedLifecycleGate): string {
  return SeedLifecycleGate[gate] ?? `SEED_GATE_${String(gate)}`;
}

/** One recorded move. */
export interface LifecycleTransition {
  readonly from: SeedLifecycleStage;
  readonly to: SeedLifecycleStage;
  /** Training step at which the move happened. */
  readonly step: number;
}

/** Options of {@link SeedLifecycle}. */
export interface SeedLifecycleOptions {
  /**
   * Step at which the lifecycle starts (in DORMANT). Non-negative integer.
   * @default 0
   */
  readonly startStep?: number;
  /**
   * Most recent transitions kept in {@link SeedLifecycle.history}; older ones are dropped and
   * counted in {@link SeedLifecycle.droppedHistory}. Integer ≥ 1.
   * @default 64
   */
  readonly historyLimit?: number;
}

/** Defaults of {@link SeedLifecycleOptions}. */
export const SEED_LIFECYCLE_DEFAULTS = Object.freeze({ startStep: 0, historyLimit: 64 });

const transitionCheck = optionChecks('SeedLifecycle.transition');

/** One seed's position in the lifecycle. Starts at DORMANT (reference §4.1). */
export class SeedLifecycle {
  #stage: SeedLifecycleStage = SeedLifecycleStage.SEED_STAGE_DORMANT;
  #enteredAtStep: number;
  readonly #history: LifecycleTransition[] = [];
  readonly #historyLimit: number;
  #droppedHistory = 0;

  constructor(options: SeedLifecycleOptions = {}) {
    const check = optionChecks('SeedLifecycle');
    this.#enteredAtStep = check.integer('startStep', options.startStep ?? SEED_LIFECYCLE_DEFAULTS.startStep, { min: 0 });
    this.#historyLimit = check.integer('historyLimit', options.historyLimit ?? SEED_LIFECYCLE_DEFAULTS.historyLimit, { min: 1 });
  }

  /**
   * Rebuilds a lifecycle from its recorded transitions (a checkpoint), replaying each
   * through {@link transition} so an impossible history is refused with
   * `KASMINA_ILLEGAL_TRANSITION`.
   */
  static replay(history: readonly LifecycleTransition[], options: SeedLifecycleOptions = {}): SeedLifecycle {
    const lifecycle = new SeedLifecycle({ ...options, startStep: options.startStep ?? history[0]?.step ?? 0 });
    for (const t of history) lifecycle.transition(t.to, t.step);
    return lifecycle;
  }

  /** The current stage. */
  get stage(): SeedLifecycleStage {
    return this.#stage;
  }

  /** Step at which the current stage was entered. */
  get enteredAtStep(): number {
    return this.#enteredAtStep;
  }

  /** Steps spent in the current stage at `step` (0 if `step` precedes the entry, e.g. after a rollback). */
  stepsInStage(step: number): number {
    return Math.max(0, step - this.#enteredAtStep);
  }

  /** The most recent transitions, oldest first (at most `historyLimit`). */
  get history(): readonly LifecycleTransition[] {
    return this.#history;
  }

  /** Transitions dropped from {@link history} because of its limit. */
  get droppedHistory(): number {
    return this.#droppedHistory;
  }

  /** The stages the seed may move to now. */
  allowedNext(): readonly SeedLifecycleStage[] {
    return allowedNext(this.#stage);
  }

  /**
   * Moves to `to` at `step` and returns the recorded transition. Throws
   * `KASMINA_ILLEGAL_TRANSITION` (details `{from, to}` as stage names) for any move the table
   * does not allow, including staying put; the stage is then unchanged.
   */
  transition(to: SeedLifecycleStage, step: number): LifecycleTransition {
    transitionCheck.integer('step', step, { min: 0 });
    const from = this.#stage;
    if (!isTransitionAllowed(from, to)) {
      throw new EsperError(ErrorCode.KASMINA_ILLEGAL_TRANSITION, `transition ${stageName(from)} -> ${stageName(to)} not allowed`, {
        details: { from: stageName(from), to: stageName(to) },
      });
    }
    const record: LifecycleTransition = Object.freeze({ from, to, step });
    this.#stage = to;
    this.#enteredAtStep = step;
    this.#history.push(record);
    if (this.#history.length > this.#historyLimit) {
      this.#history.shift();
      this.#droppedHistory += 1;
    }
    return record;
  }
}
