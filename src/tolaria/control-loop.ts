/**
 * When the trainer calls its collaborators: after each step the controller (unless in
 * conservative mode), the command's owner, then the executor's `advance`; after each epoch
 * the optional `evaluateEpoch`; after each validation pass the executor's report, with one
 * counterfactual pass per seed it asked to measure. Calls go one way: nothing calls back
 * into the trainer.
 */
import type { Clock } from '../core/index.js';
import type { SystemStatePacket } from '../leyline/index.js';
import type { CommandOwner } from './commands.js';
import type { ControlCalls } from './control-calls.js';
import type { Controller, Executor, ExecutorContext, ValidationReport, ValidationResult } from './controller.js';
import type { TrainingState } from './training-state.js';

/** Time spent in one step's control calls, reported in the next step packet. */
export interface HookTimings {
  /** Controller plus the command's application. */
  readonly hookMs: number;
  readonly tamiyoMs: number;
  readonly applyMs: number;
  /** The executor's `advance`. */
  readonly finalizeMs: number;
}

/** Options of {@link ControlLoop}. */
export interface ControlLoopOptions {
  readonly controller: Controller | undefined;
  readonly executor: Executor | undefined;
  readonly calls: ControlCalls;
  readonly commands: CommandOwner;
  readonly state: TrainingState;
  readonly clock: Clock;
  readonly context: (epoch: number) => ExecutorContext;
  /** One validation pass, with the given sites bypassed. */
  readonly validate: (bypassSites: ReadonlySet<string>) => ValidationResult;
  /** The dataset's labels are classes (validation measures accuracy), not values. */
  readonly accuracyMeasured: boolean;
}

/** The per-step, per-epoch and per-validation control calls. */
export class ControlLoop {
  readonly #o: ControlLoopOptions;

  constructor(options: ControlLoopOptions) {
    this.#o = options;
  }

  /** The step's controller call, the command's owner, then the executor's `advance`. */
  async afterStep(packet: SystemStatePacket, epoch: number, signal: AbortSignal | undefined): Promise<HookTimings> {
    const { clock, calls, state } = this.#o;
    const hookStarted = clock.monotonicMs();
    let tamiyoMs = 0;
    let applyMs = 0;
    const controller = this.#o.controller;
    if (controller !== undefined && !calls.conservative) {
      const decision = await calls.controller(
        (s) => controller.evaluateStep(packet, { signal: s }),
        `tolaria.tamiyo.step-${state.globalStep}`,
        signal,
      );
      tamiyoMs = decision.ok ? decision.latencyMs : 0;
      if (decision.ok && decision.value !== undefined) applyMs = await this.#o.commands.apply(controller, decision.value, epoch, signal);
    }
    const hookMs = clock.monotonicMs() - hookStarted;
    state.epoch.addHook(hookMs);
    let finalizeMs = 0;
    const executor = this.#o.executor;
    if (executor !== undefined) {
      const context = { ...this.#o.context(epoch), ...(state.lastStep === undefined ? {} : { lastStep: state.lastStep }) };
      const advanced = await calls.executor(
        (options) => executor.advance(context, options),
        `tolaria.kasmina.advance-${state.globalStep}`,
        signal,
        {},
      );
      finalizeMs = advanced.ok ? advanced.latencyMs : 0;
    }
    return { hookMs, tamiyoMs, applyMs, finalizeMs };
  }

  /** The epoch-level controller call (optional `evaluateEpoch`), then the command's owner. */
  async afterEpoch(packet: SystemStatePacket, epoch: number, signal: AbortSignal | undefined): Promise<void> {
    const { clock, calls, state } = this.#o;
    const controller = this.#o.controller;
    if (controller?.evaluateEpoch === undefined || calls.conservative) return;
    const evaluate = controller.evaluateEpoch.bind(controller);
    const hookStarted = clock.monotonicMs();
    const decision = await calls.controller((s) => evaluate(packet, { signal: s }), `tolaria.tamiyo.epoch-${epoch}`, signal);
    if (decision.ok && decision.value !== undefined) await this.#o.commands.apply(controller, decision.value, epoch, signal);
    state.epoch.addHook(clock.monotonicMs() - hookStarted);
  }

  /**
   * Hands the epoch's validation to the executor, with one more pass per seed it asked to
   * measure (that seed's site bypassed), on the worker with the executor's deadline.
   */
  async serveValidation(baseline: ValidationResult, epoch: number, signal: AbortSignal | undefined): Promise<void> {
    const executor = this.#o.executor;
    if (executor === undefined) return;
    const report: ValidationReport = {
      accuracyMeasured: this.#o.accuracyMeasured,
      baseline,
      withoutSeed: executor.contributionProbes().map((probe) => ({
        seedId: probe.seedId,
        siteId: probe.siteId,
        validation: this.#o.validate(new Set([probe.siteId])),
      })),
    };
    const context = this.#o.context(epoch);
    await this.#o.calls.executor(
      (options) => executor.recordValidation(report, context, options),
      `tolaria.kasmina.validation-${epoch}`,
      signal,
      {},
    );
  }
}
