/**
 * Tolaria's emergency protocol (reference prototype-tolaria-oona-nissa-weatherlight §2.13):
 * a level that rises with trouble, and an {@link EmergencySignal} dispatched through an
 * injected sink on every trigger; the triggers are listed in `docs/architecture.md`
 * § Tolaria. Departures (prototype-rc1-plan §3.1.0, §2.13 quirks): a non-finite loss and a
 * loss explosion are L2 triggers (the later Governor, esper-2026-anchor §4); the
 * failed-epoch-streak halt dispatches a signal too; a successful epoch resets the level to
 * NOTICE; requested levels are checked; dispatch is synchronous through the sink.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { optionChecks, systemClock, type Clock } from '../core/index.js';
import { EmergencyLevel, EmergencySignalSchema, type EmergencySignal } from '../leyline/index.js';
import { TOLARIA_SOURCE } from './names.js';

/** Where emergency signals go (Oona's emergency stream, Weatherlight). Must not throw. */
export interface EmergencySink {
  emit(signal: EmergencySignal): void;
}

/** Machine-readable reasons Tolaria puts in {@link EmergencySignal.reason}. */
export const EmergencyReason = {
  NON_FINITE_LOSS: 'non_finite_loss',
  LOSS_EXPLOSION: 'loss_explosion',
  BREAKER_OPEN: 'breaker_open',
  ROLLBACK_DEADLINE: 'rollback_deadline',
  FAILED_EPOCHS_STREAK: 'failed_epochs_streak',
  FAILED_STEPS_STREAK: 'failed_steps_streak',
  TAMIYO_TIMEOUT: 'tamiyo_timeout',
  TAMIYO_ERROR: 'tamiyo_error',
  KASMINA_TIMEOUT: 'kasmina_timeout',
  KASMINA_ERROR: 'kasmina_error',
  EPOCH_BUDGET: 'epoch_budget',
  HOOK_BUDGET: 'hook_budget',
  DEPENDENCY_VIOLATION: 'dependency_violation',
  COMMAND_REJECTED: 'command_rejected',
} as const;

/** Union of {@link EmergencyReason} values. */
export type EmergencyReason = (typeof EmergencyReason)[keyof typeof EmergencyReason];

/** Options of {@link EmergencyController}. */
export interface EmergencyControllerOptions {
  /** Run stamped on every signal. Required, non-blank. */
  readonly trainingRunId: string;
  /** Where signals go. */
  readonly sink: EmergencySink;
  /**
   * Most signals with the same level and reason per minute; repeats beyond it are
   * counted in `suppressedTotal` and not sent. HALT is never suppressed.
   * @default 60
   */
  readonly maxRepeatsPerMinute?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Where a trigger happened. */
export interface EmergencyPosition {
  readonly epoch: number;
  readonly globalStep: number;
}

/** What {@link EmergencyController.escalate} did. */
export interface EscalationResult {
  /** The level requested by the trigger. */
  readonly requested: EmergencyLevel;
  /** The controller's level before the call. */
  readonly previous: EmergencyLevel;
  /** The controller's level after the call (never below `previous`). */
  readonly level: EmergencyLevel;
  /** Whether a signal went to the sink (false when rate-suppressed). */
  readonly dispatched: boolean;
  /** The signal built for this trigger. */
  readonly signal: EmergencySignal;
}

/** Counters of an {@link EmergencyController}. */
export interface EmergencyStats {
  readonly level: EmergencyLevel;
  readonly broadcastsTotal: number;
  readonly suppressedTotal: number;
  readonly haltsTotal: number;
  readonly halted: boolean;
}

const WINDOW_MS = 60_000;

/** Tracks the emergency level and dispatches signals. */
export class EmergencyController {
  readonly #trainingRunId: string;
  readonly #sink: EmergencySink;
  readonly #clock: Clock;
  readonly #maxRepeatsPerMinute: number;
  readonly #recent = new Map<string, number[]>();
  #level: EmergencyLevel = EmergencyLevel.NOTICE;
  #broadcastsTotal = 0;
  #suppressedTotal = 0;
  #haltsTotal = 0;
  #halted = false;

  constructor(options: EmergencyControllerOptions) {
    const check = optionChecks('EmergencyControllerOptions');
    if (typeof options.trainingRunId !== 'string' || options.trainingRunId.trim().length === 0) {
      check.fail('trainingRunId', 'a non-blank string', options.trainingRunId);
    }
    const cap = check.integer('maxRepeatsPerMinute', options.maxRepeatsPerMinute ?? 60, { min: 1 });
    this.#trainingRunId = options.trainingRunId;
    this.#sink = options.sink;
    this.#clock = options.clock ?? systemClock;
    this.#maxRepeatsPerMinute = cap;
  }

  /** The current level (starts at NOTICE). */
  get level(): EmergencyLevel {
    return this.#level;
  }

  /** Whether a HALT was raised (training must stop). */
  get halted(): boolean {
    return this.#halted;
  }

  /**
   * Raises the level to `level` if higher, builds the signal and dispatches it (every
   * trigger is dispatched, even when the level does not rise — reference §2.3 step 5).
   */
  escalate(level: EmergencyLevel, reason: EmergencyReason, position: EmergencyPosition): EscalationResult {
    if (level < EmergencyLevel.NOTICE || level > EmergencyLevel.HALT || !Number.isInteger(level)) {
      optionChecks('EmergencyController.escalate').fail('level', 'an emergency level NOTICE..HALT', level);
    }
    const previous = this.#level;
    if (level > this.#level) this.#level = level;
    const halt = level === EmergencyLevel.HALT;
    if (halt && !this.#halted) {
      this.#halted = true;
      this.#haltsTotal += 1;
    }
    const nowMs = this.#clock.monotonicMs();
    const signal = create(EmergencySignalSchema, {
      version: 1,
      level,
      reason,
      origin: TOLARIA_SOURCE,
      triggeredAt: timestampFromMs(this.#clock.wallMs()),
      monotonicTimeMs: BigInt(Math.floor(nowMs)),
      trainingRunId: this.#trainingRunId,
      epoch: position.epoch,
      globalStep: BigInt(position.globalStep),
      operatorInitiated: false,
    });
    const dispatched = halt || this.#admit(`${level}:${reason}`, nowMs);
    if (dispatched) {
      this.#broadcastsTotal += 1;
      this.#sink.emit(signal);
    } else {
      this.#suppressedTotal += 1;
    }
    return { requested: level, previous, level: this.#level, dispatched, signal };
  }

  /** Back to NOTICE after a successful epoch. A HALT is final and is not cleared. */
  reset(): void {
    if (!this.#halted) this.#level = EmergencyLevel.NOTICE;
  }

  /** Counters. */
  stats(): EmergencyStats {
    return {
      level: this.#level,
      broadcastsTotal: this.#broadcastsTotal,
      suppressedTotal: this.#suppressedTotal,
      haltsTotal: this.#haltsTotal,
      halted: this.#halted,
    };
  }

  #admit(key: string, nowMs: number): boolean {
    const times = (this.#recent.get(key) ?? []).filter((t) => nowMs - t < WINDOW_MS);
    const admitted = times.length < this.#maxRepeatsPerMinute;
    if (admitted) times.push(nowMs);
    this.#recent.set(key, times);
    return admitted;
  }
}
