/**
 * Who applies a command. OPTIMIZER and ROLLBACK are Tolaria's: verified (signature,
 * freshness, nonce) and dependency-checked here, where they are applied, then applied in
 * full or refused as a whole. Every other type goes to the executor's `apply` on the worker
 * with its deadline. The controller is told each command's fate.
 */
import {
  type DependencyGuard,
  DependencyViolationError,
  ErrorCode,
  EsperError,
  isEsperError,
  validateCommandDependencies,
  type Clock,
} from '../core/index.js';
import {
  CommandType,
  RollbackTier,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandOptimizerAdjustment,
  type RollbackRequest,
} from '../leyline/index.js';
import type { CommandVerifier } from '../security/index.js';
import { errorText, type ControlCalls } from './control-calls.js';
import { CommandOutcomeStatus, type CommandOutcome, type Controller, type Executor, type ExecutorContext } from './controller.js';
import { EmergencyReason } from './emergency.js';
import type { LrController } from './lr-controller.js';
import { TolariaEvent } from './names.js';
import type { Recovery } from './recovery.js';
import type { TrainerEvents } from './trainer-telemetry.js';
import type { TrainingState } from './training-state.js';

/** Highest learning rate an OPTIMIZER command may set (a larger one is refused as invalid). */
export const MAX_COMMANDED_LR = 1;

/** Command types Tolaria applies itself; every other type is the executor's. */
const TOLARIA_COMMANDS: ReadonlySet<CommandType> = new Set([CommandType.COMMAND_OPTIMIZER, CommandType.COMMAND_ROLLBACK]);

/** Why Tolaria did not apply a command (`tolaria.command.not_applied`, `COMMAND_NOT_APPLIED`). */
export const CommandRefusal = {
  NO_EXECUTOR: 'no_executor',
  NO_VERIFIER: 'no_verifier',
  REJECTED: 'rejected',
  INVALID_VALUE: 'invalid_value',
  UNSUPPORTED_FIELD: 'unsupported_field',
  ROLLBACK_NOT_CONFIGURED: 'rollback_not_configured',
  ROLLBACK_FAILED: 'rollback_failed',
} as const;

/** Union of {@link CommandRefusal} values. */
export type CommandRefusal = (typeof CommandRefusal)[keyof typeof CommandRefusal];

/** Options of {@link CommandOwner}. */
export interface CommandOwnerOptions {
  readonly trainingRunId: string;
  readonly executor: Executor | undefined;
  /** Verifies OPTIMIZER and ROLLBACK commands; without it they are refused. */
  readonly verifier: CommandVerifier | undefined;
  readonly guard: DependencyGuard;
  readonly calls: ControlCalls;
  readonly recovery: Recovery;
  readonly lr: LrController;
  readonly state: TrainingState;
  readonly events: TrainerEvents;
  readonly clock: Clock;
  readonly context: (epoch: number) => ExecutorContext;
}

/** Routes each command to its owner and reports its outcome. */
export class CommandOwner {
  readonly #o: CommandOwnerOptions;
  #refused = 0;

  constructor(options: CommandOwnerOptions) {
    this.#o = options;
  }

  /** OPTIMIZER/ROLLBACK commands refused, and commands with no executor to take them. */
  get refusedTotal(): number {
    return this.#refused;
  }

  /** Applies one command through its owner and tells the controller its outcome. Returns the time taken. */
  async apply(controller: Controller, command: AdaptationCommand, epoch: number, signal: AbortSignal | undefined): Promise<number> {
    const { clock, events, state } = this.#o;
    const started = clock.monotonicMs();
    const outcome = TOLARIA_COMMANDS.has(command.commandType)
      ? await this.#applyOwn(command)
      : await this.#applyOnExecutor(command, epoch, signal);
    try {
      controller.commandOutcome?.(outcome);
    } catch (error) {
      events.event(TolariaEvent.TAMIYO_ERROR, TelemetryLevel.WARNING, { step: state.globalStep, error: errorText(error) });
    }
    return clock.monotonicMs() - started;
  }

  async #applyOnExecutor(command: AdaptationCommand, epoch: number, signal: AbortSignal | undefined): Promise<CommandOutcome> {
    const executor = this.#o.executor;
    if (executor === undefined) return this.#refuse(command, CommandRefusal.NO_EXECUTOR, 'no executor is attached to this run');
    const context = this.#o.context(epoch);
    const result = await this.#o.calls.executor(
      (options) => executor.apply(command, context, options),
      `tolaria.kasmina.apply-${command.commandId}`,
      signal,
      { command_id: command.commandId },
      (cause) => outcomeOfError(cause).status !== CommandOutcomeStatus.FAILED,
    );
    const commandId = command.commandId;
    if (result.ok) return { commandId, status: CommandOutcomeStatus.APPLIED, reason: '' };
    if (result.error === 'timeout') return { commandId, status: CommandOutcomeStatus.TIMED_OUT, reason: 'deadline' };
    const outcome = { commandId, ...outcomeOfError(result.cause) };
    // A refusal is the executor working, not failing: reported like Tolaria's own refusals.
    // A rejection (security or dependency check) fails the epoch like Tolaria's own do; the
    // executor has emitted its CRITICAL packet.
    if (outcome.status === CommandOutcomeStatus.NOT_APPLIED) this.#reportRefusal(command, outcome.reason, result.message ?? '');
    else if (outcome.status === CommandOutcomeStatus.REJECTED) this.#o.state.epoch.fail(EmergencyReason.COMMAND_REJECTED);
    return outcome;
  }

  async #applyOwn(command: AdaptationCommand): Promise<CommandOutcome> {
    const { verifier, state } = this.#o;
    if (verifier === undefined) return this.#refuse(command, CommandRefusal.NO_VERIFIER, 'Tolaria has no command verifier');
    verifier.maintenance();
    const verdict = verifier.verify(command);
    if (!verdict.ok) {
      // The verifier has emitted its CRITICAL command_rejected packet.
      this.#refuse(command, CommandRefusal.REJECTED, verdict.reason);
      state.epoch.fail(EmergencyReason.COMMAND_REJECTED);
      return { commandId: command.commandId, status: CommandOutcomeStatus.REJECTED, reason: verdict.reason };
    }
    try {
      validateCommandDependencies(this.#o.guard, command, { trainingRunId: this.#o.trainingRunId });
    } catch (error) {
      if (!(error instanceof DependencyViolationError)) throw error;
      // The guard has already emitted the CRITICAL violation packet.
      state.epoch.fail(EmergencyReason.DEPENDENCY_VIOLATION);
      this.#o.calls.enterConservative(EmergencyReason.DEPENDENCY_VIOLATION);
      return { commandId: command.commandId, status: CommandOutcomeStatus.REJECTED, reason: EmergencyReason.DEPENDENCY_VIOLATION };
    }
    const payload = command.payload;
    if (payload.case === 'optimizerAdjustment') return this.#adjustOptimizer(command, payload.value);
    if (payload.case === 'rollback') return this.#rollback(command, payload.value);
    // validateCommandDependencies has checked the payload matches the type.
    throw new EsperError(ErrorCode.INVALID_STATE, `command ${command.commandId} has no ${CommandType[command.commandType]} payload`);
  }

  /**
   * Sets the learning rate: the schedule is scaled so that the next step runs at the
   * requested rate and later steps keep the schedule's shape. Every other field is refused
   * (the optimizers here have no weight decay, and a family change would need a new
   * optimizer state).
   */
  #adjustOptimizer(command: AdaptationCommand, adjustment: CommandOptimizerAdjustment): CommandOutcome {
    const unsupported = [
      ...(adjustment.momentum === undefined ? [] : ['momentum']),
      ...(adjustment.weightDecay === undefined ? [] : ['weight_decay']),
      ...(adjustment.optimizerFamily === undefined ? [] : ['optimizer_family']),
    ];
    if (unsupported.length > 0)
      return this.#refuse(command, CommandRefusal.UNSUPPORTED_FIELD, `Tolaria does not adjust ${unsupported.join(', ')}`);
    const rate = adjustment.learningRate;
    if (rate === undefined || !(Number.isFinite(rate) && rate > 0 && rate <= MAX_COMMANDED_LR)) {
      return this.#refuse(command, CommandRefusal.INVALID_VALUE, `learning_rate must be in (0, ${MAX_COMMANDED_LR}], got ${String(rate)}`);
    }
    const state = this.#o.state;
    const scheduled = this.#o.lr.rate(state.globalStep, state.cursor.epoch);
    const previous = scheduled * state.lrScale;
    state.lrScale = rate / scheduled;
    this.#o.events.event(TolariaEvent.COMMAND_APPLIED, TelemetryLevel.INFO, {
      command_id: command.commandId,
      command_type: 'COMMAND_OPTIMIZER',
      learning_rate: rate,
      previous_learning_rate: previous,
      step: state.globalStep,
    });
    return { commandId: command.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' };
  }

  /** Restores the training state from the tier the command names (reference §2.6). */
  async #rollback(command: AdaptationCommand, request: RollbackRequest): Promise<CommandOutcome> {
    const { recovery, state } = this.#o;
    if (!recovery.rollbackEnabled)
      return this.#refuse(command, CommandRefusal.ROLLBACK_NOT_CONFIGURED, 'this run has no rollback configured');
    if (request.seedId !== '') {
      return this.#refuse(
        command,
        CommandRefusal.UNSUPPORTED_FIELD,
        'a rollback restores the training state; a seed is removed with SEED CULL',
      );
    }
    const tier = request.tier === RollbackTier.FULL ? 'full' : request.tier === RollbackTier.FAST ? 'fast' : 'auto';
    const target = request.targetGlobalStep === 0n ? undefined : Number(request.targetGlobalStep);
    if (target !== undefined && (tier === 'full' || target > state.globalStep)) {
      return this.#refuse(
        command,
        CommandRefusal.INVALID_VALUE,
        `target_global_step ${target} needs the fast tier and a step ≤ ${state.globalStep}`,
      );
    }
    const restored = await recovery.rollback(tier, target);
    if (restored === undefined) {
      return this.#refuse(
        command,
        CommandRefusal.ROLLBACK_FAILED,
        `no ${tier === 'auto' ? '' : `${tier} `}restore point could be restored`,
      );
    }
    this.#o.events.event(TolariaEvent.COMMAND_APPLIED, TelemetryLevel.INFO, {
      command_id: command.commandId,
      command_type: 'COMMAND_ROLLBACK',
      tier: restored.tier,
      to_step: restored.toStep,
      reason: request.reason,
    });
    return { commandId: command.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' };
  }

  /** A command Tolaria did not apply: WARNING telemetry with the reason, and a count. */
  #refuse(command: AdaptationCommand, reason: CommandRefusal, detail: string): CommandOutcome {
    this.#reportRefusal(command, reason, detail);
    return { commandId: command.commandId, status: CommandOutcomeStatus.NOT_APPLIED, reason };
  }

  /** WARNING `tolaria.command.not_applied` with the reason, and a count. */
  #reportRefusal(command: AdaptationCommand, reason: string, detail: string): void {
    this.#refused += 1;
    this.#o.events.event(TolariaEvent.COMMAND_NOT_APPLIED, TelemetryLevel.WARNING, {
      command_id: command.commandId,
      command_type: CommandType[command.commandType] ?? String(command.commandType),
      reason,
      detail,
      step: this.#o.state.globalStep,
    });
  }
}

/** The outcome of a command whose owner threw `cause`. */
export function outcomeOfError(cause: unknown): Omit<CommandOutcome, 'commandId'> {
  if (isEsperError(cause, ErrorCode.COMMAND_REJECTED)) {
    return { status: CommandOutcomeStatus.REJECTED, reason: String(cause.details?.['reason'] ?? cause.code) };
  }
  if (isEsperError(cause, ErrorCode.DEPENDENCY_VIOLATION))
    return { status: CommandOutcomeStatus.REJECTED, reason: EmergencyReason.DEPENDENCY_VIOLATION };
  // A refusal's `details.reason` says why (`unsupported_command`, `SEED_GATE_G0_SANITY: site occupied`, …).
  if (isEsperError(cause)) return { status: CommandOutcomeStatus.NOT_APPLIED, reason: String(cause.details?.['reason'] ?? cause.code) };
  return { status: CommandOutcomeStatus.FAILED, reason: errorText(cause) };
}
