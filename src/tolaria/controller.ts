/**
 * The two collaborators of the training loop (reference prototype-tolaria-oona-nissa-weatherlight
 * §2.2), as interfaces: Tamiyo implements {@link Controller}, Kasmina implements
 * {@link Executor}. Tolaria calls both through the shared AsyncWorker with a deadline
 * counted from submission; a call that misses it is abandoned for that step (its signal
 * aborts) and training goes on without its result.
 *
 * Departures from the prototype's duck-typed call points:
 * - methods are declared, not probed with `hasattr`; only `evaluateEpoch` is optional;
 * - every call receives an `AbortSignal` that fires at its deadline;
 * - the executor's `advance` replaces the prototype's `advance_alpha` per blending seed
 *   plus `finalize_step`: the executor knows its seeds and their stages.
 */
import type { AdaptationCommand, SeedState, SystemStatePacket } from '../leyline/index.js';
import type { Rng } from '../tensor/index.js';
import type { HostModel } from './host-model.js';

/** Per-call options handed to collaborators. */
export interface CallOptions {
  /** Aborts when the call's deadline passes or training stops. */
  readonly signal: AbortSignal;
}

/** Decides adaptations from training state (Tamiyo). */
export interface Controller {
  /**
   * Called once per optimizer step with that step's state packet. Returns the command to
   * apply, or undefined for "no change". The packet is the caller's: do not mutate it.
   */
  evaluateStep(state: SystemStatePacket, options: CallOptions): Promise<AdaptationCommand | undefined>;
  /**
   * Called once per epoch, after validation, with the epoch's state packet (validation
   * loss and accuracy filled in). Optional.
   */
  evaluateEpoch?(state: SystemStatePacket, options: CallOptions): Promise<AdaptationCommand | undefined>;
}

/** What the executor may use while applying a command. */
export interface ExecutorContext {
  /** The host being trained: attach or detach seed hooks here. */
  readonly host: HostModel;
  readonly trainingRunId: string;
  /** 0-based epoch of the step the command follows. */
  readonly epoch: number;
  /** Optimizer steps taken so far. */
  readonly globalStep: number;
  /**
   * The run's random stream for the executor (seed initialisation, probes). It is part of
   * every checkpoint and snapshot, so a resumed run draws the same numbers.
   */
  readonly rng: Rng;
  /**
   * What the optimizer step just taken measured, for `advance` (absent for `apply` and
   * before the first step): the step's training loss and, per site with a hook, the norm
   * of the gradient of that hook's variables (NaN when not finite).
   */
  readonly lastStep?: StepSignals;
}

/** Per-step signals handed to the executor's `advance`. */
export interface StepSignals {
  readonly trainingLoss: number;
  readonly hookGradientNorms: ReadonlyMap<string, number>;
}

/** Loss and accuracy of one pass over the validation split. */
export interface ValidationResult {
  readonly loss: number;
  readonly accuracy: number;
}

/** Applies adaptations to the host and runs seed lifecycles (Kasmina). */
export interface Executor {
  /**
   * Applies one command. Attaching or detaching hooks on `context.host` takes effect at
   * the next step (the optimizer is rebuilt then).
   */
  apply(command: AdaptationCommand, context: ExecutorContext, options: CallOptions): Promise<void>;
  /** The seeds' current states, for state packets (called every step; keep it cheap). */
  exportSeedStates(): readonly SeedState[];
  /**
   * Called after every optimizer step (after `apply`): advance alpha schedules and
   * lifecycle timers. Timed as `kasmina_finalize_ms`.
   */
  advance(step: number, context: ExecutorContext): Promise<void> | void;
  /**
   * Called after each epoch's validation pass, before the epoch packet is built, with the
   * pass's result and a function that runs another pass over the same split with the
   * host as it is at the time of the call. The executor uses it to measure what its seeds
   * contribute (reference esper-2026-anchor §1: counterfactual validation with a seed's
   * alpha forced to 0). Optional.
   */
  measureContributions?(baseline: ValidationResult, validate: () => ValidationResult, context: ExecutorContext): void;
  /**
   * The executor's state for a checkpoint (JSON-serialisable): what it needs to re-attach
   * the hooks it has and continue where it was. Optional; without it a checkpoint written
   * with hooks attached cannot be resumed.
   */
  exportState?(): unknown;
  /**
   * Restores {@link exportState}'s value on resume, re-attaching the same hooks with
   * variables of the same names; Tolaria then loads their weights and optimizer state from
   * the checkpoint. Optional.
   */
  restoreState?(state: unknown, context: ExecutorContext): Promise<void>;
}
