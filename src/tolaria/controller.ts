/**
 * The two collaborators of the training loop (reference prototype-tolaria-oona-nissa-weatherlight
 * §2.2), as interfaces: Tamiyo implements {@link Controller}, Kasmina implements
 * {@link Executor}. Every call goes through the shared AsyncWorker with a deadline counted
 * from submission; a call that misses it is abandoned for that step (its signal aborts) and
 * training goes on without its result. Calls go one way, trainer → collaborator: nothing
 * here calls back into the trainer.
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
  /**
   * Told what became of each command it returned, once the command's owner applied or
   * refused it (operator inboxes acknowledge commands on the bus with it). Optional; must
   * not throw.
   */
  commandOutcome?(outcome: CommandOutcome): void;
}

/** What became of a command (see {@link CommandOutcome}). */
export const CommandOutcomeStatus = {
  APPLIED: 'applied',
  /** Refused by a security or dependency check: signature, freshness, nonce, ids, run. */
  REJECTED: 'rejected',
  /** Its owner could not apply it (unsupported type or field, invalid value, illegal transition, …). */
  NOT_APPLIED: 'not_applied',
  /** The owner's call missed its deadline; whether it took effect is unknown. */
  TIMED_OUT: 'timed_out',
  /** An unexpected error. */
  FAILED: 'failed',
} as const;
export type CommandOutcomeStatus = (typeof CommandOutcomeStatus)[keyof typeof CommandOutcomeStatus];

/** The fate of one command. */
export interface CommandOutcome {
  readonly commandId: string;
  readonly status: CommandOutcomeStatus;
  /** Why, for every status but `applied` (then ''): a verifier or refusal reason, or an error code. */
  readonly reason: string;
}

/** What the executor may use while applying a command or advancing its seeds. */
export interface ExecutorContext {
  /** The host being trained: attach or detach seed hooks here. */
  readonly host: HostModel;
  readonly trainingRunId: string;
  /** 0-based epoch of the step the call follows. */
  readonly epoch: number;
  /** Optimizer steps taken so far. */
  readonly globalStep: number;
  /**
   * The run's random stream for the executor (seed initialisation, probes). It is part of
   * every checkpoint and snapshot, so a resumed run draws the same numbers.
   */
  readonly rng: Rng;
  /**
   * What the optimizer step just taken measured, for `advance` (absent elsewhere): the
   * step's training loss and, per site with a hook, the norm of the gradient of that
   * hook's variables (NaN when not finite).
   */
  readonly lastStep?: StepSignals;
}

/** Per-step signals handed to the executor's `advance`. */
export interface StepSignals {
  readonly trainingLoss: number;
  readonly hookGradientNorms: ReadonlyMap<string, number>;
  /** The gradient matrices served for the executor's {@link Executor.gradientProbes} on this step, by site id. */
  readonly widenGradients?: ReadonlyMap<string, WidenGradient>;
}

/**
 * A WIDEN site's gradient matrix `M = uᵀ·G` `[inputs, outputs]` on one training batch: `u`
 * the site's input `[batch, inputs]`, `G` the gradient of the (mean) training loss with
 * respect to the next block's pre-activation `[batch, outputs]`, taken at the weights
 * before the step's update.
 */
export interface WidenGradient {
  readonly inputs: number;
  readonly outputs: number;
  /** Row-major `[inputs, outputs]`. */
  readonly matrix: Float32Array;
}

/**
 * A WIDEN site whose gradient matrix the executor wants (GradMax initialisation of a seed
 * grafted there): the trainer computes it on the next step's batch and hands it to that
 * step's `advance` in {@link StepSignals.widenGradients}.
 */
export interface GradientProbe {
  readonly seedId: string;
  readonly siteId: string;
}

/** Loss and accuracy of one pass over the validation split. */
export interface ValidationResult {
  readonly loss: number;
  readonly accuracy: number;
}

/**
 * A seed the executor wants measured after a validation pass: Tolaria runs one more pass
 * over the same split with the hook at `siteId` bypassed (the site is the identity, as
 * with the seed's alpha at 0) and reports the result in {@link ValidationReport}.
 */
export interface ContributionProbe {
  readonly seedId: string;
  readonly siteId: string;
}

/** One validation pass and the counterfactual passes served for the executor's probes. */
export interface ValidationReport {
  /**
   * Whether the passes measured accuracy: true for class datasets, false for value
   * (regression) datasets, whose accuracy is 0 in every pass — only their loss tells.
   */
  readonly accuracyMeasured: boolean;
  /** The pass with every hook as it is. */
  readonly baseline: ValidationResult;
  /** One pass per probe, with that probe's site bypassed. */
  readonly withoutSeed: readonly { readonly seedId: string; readonly siteId: string; readonly validation: ValidationResult }[];
}

/** Applies adaptations to the host and runs seed lifecycles (Kasmina). */
export interface Executor {
  /**
   * Verifies and applies one command the executor owns (every type but OPTIMIZER and
   * ROLLBACK, which are Tolaria's). Attaching or detaching hooks on `context.host` takes
   * effect at the next step (the optimizer is rebuilt then).
   */
  apply(command: AdaptationCommand, context: ExecutorContext, options: CallOptions): Promise<void>;
  /** The seeds' current states, for state packets (called every step; keep it cheap). */
  exportSeedStates(): readonly SeedState[];
  /**
   * Called after every optimizer step (after `apply`), with `context.lastStep` set:
   * advance alpha schedules and lifecycle timers. Timed as `kasmina_finalize_ms`; no I/O
   * belongs here (kernels are loaded before, off the step).
   */
  advance(context: ExecutorContext, options: CallOptions): Promise<void>;
  /**
   * The seeds to measure after the next validation pass (reference esper-2026-anchor §1:
   * counterfactual validation with a seed's alpha forced to 0). Called once per validation
   * pass; keep it cheap.
   */
  contributionProbes(): readonly ContributionProbe[];
  /**
   * The WIDEN sites whose gradient matrix to compute on the next step (see
   * {@link GradientProbe}). Called once per step before its forward pass; keep it cheap.
   * Optional: without it no gradient probes are served.
   */
  gradientProbes?(): readonly GradientProbe[];
  /** Called after every validation pass with its result and the probes' passes. */
  recordValidation(report: ValidationReport, context: ExecutorContext, options: CallOptions): Promise<void>;
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
