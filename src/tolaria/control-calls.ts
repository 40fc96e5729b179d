/**
 * How the trainer calls its collaborators: each call runs on the shared AsyncWorker with a
 * deadline counted from submission. A controller miss or error, or an executor miss, puts
 * the trainer in conservative mode (the controller is skipped until an epoch succeeds); an
 * executor error does not (reference prototype-tolaria-oona-nissa-weatherlight §2.4 9k).
 */
import { errorLabel, errorMessage, ErrorCode, reasonOf, type AsyncWorker, type Clock, type MetricInput } from '../core/index.js';
import { TelemetryLevel, type AdaptationCommand } from '../leyline/index.js';
import type { CallOptions } from './controller.js';
import { EmergencyReason } from './emergency.js';
import { TolariaEvent, TolariaMetric } from './names.js';
import { metricOf, type TrainerEvents } from './trainer-telemetry.js';
import type { TrainingState } from './training-state.js';

/** What became of one call on the worker. */
export interface CallResult<T> {
  readonly ok: boolean;
  readonly value: T | undefined;
  readonly latencyMs: number;
  /** Why a call failed: its deadline, cancellation, or an error (`message`, `cause`). */
  readonly error?: 'timeout' | 'cancelled' | 'error';
  readonly message?: string;
  readonly cause?: unknown;
}

/**
 * `<label>: <message>` of an error (core's `errorLabel`: the code of an `EsperError`, else the
 * error's name, as in `TypeError: boom`), or the string form of anything else.
 */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${errorLabel(error)}: ${errorMessage(error)}` : errorMessage(error);
}

/** Why a worker call failed, by the worker's error code. */
const CALL_FAILURES = { [ErrorCode.WORKER_TIMEOUT]: 'timeout', [ErrorCode.WORKER_CANCELLED]: 'cancelled' } as const;

/** Runs `call` on the worker with a deadline from submission; never throws. */
export async function callOnWorker<T>(
  worker: AsyncWorker,
  clock: Clock,
  call: (signal: AbortSignal) => Promise<T>,
  options: { readonly name: string; readonly deadlineMs: number; readonly signal: AbortSignal | undefined },
): Promise<CallResult<T>> {
  const started = clock.monotonicMs();
  try {
    const handle = worker.submit(call, {
      deadlineMs: options.deadlineMs,
      name: options.name,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const value = await handle.result;
    return { ok: true, value, latencyMs: clock.monotonicMs() - started };
  } catch (error) {
    const latencyMs = clock.monotonicMs() - started;
    const reason = reasonOf<NonNullable<CallResult<T>['error']>>(error, CALL_FAILURES, () => 'error');
    if (reason !== 'error') return { ok: false, value: undefined, latencyMs, error: reason };
    return { ok: false, value: undefined, latencyMs, error: 'error', message: errorText(error), cause: error };
  }
}

/** Options of {@link ControlCalls}. */
export interface ControlCallsOptions {
  /** Required as soon as a controller or executor is called. */
  readonly worker: AsyncWorker | undefined;
  readonly clock: Clock;
  readonly controllerDeadlineMs: number;
  readonly executorDeadlineMs: number;
  readonly state: TrainingState;
  readonly events: TrainerEvents;
}

/** Counters of {@link ControlCalls}. */
export interface ControlCallStats {
  readonly controllerTimeouts: number;
  readonly executorTimeouts: number;
  /** Wall time of the current `run` spent in controller and executor calls (waits included). */
  readonly controlPlaneMs: { readonly controller: number; readonly executor: number };
}

/** Controller and executor calls with their deadlines, misses and conservative mode. */
export class ControlCalls {
  readonly #o: ControlCallsOptions;
  #conservative = false;
  #timeouts = { controller: 0, executor: 0, lastControllerMs: 0, lastExecutorMs: 0 };
  #controlMs = { controller: 0, executor: 0 };

  constructor(options: ControlCallsOptions) {
    this.#o = options;
  }

  /** Whether the controller is being skipped. */
  get conservative(): boolean {
    return this.#conservative;
  }

  /** Enters conservative mode (once; WARNING `tolaria.conservative_mode_entered`). */
  enterConservative(reason: string): void {
    if (this.#conservative) return;
    this.#conservative = true;
    this.#o.events.event(TolariaEvent.CONSERVATIVE_MODE_ENTERED, TelemetryLevel.WARNING, { reason });
  }

  /** Leaves conservative mode after a successful epoch. */
  clearConservative(epoch: number): void {
    if (!this.#conservative) return;
    this.#conservative = false;
    this.#o.events.event(TolariaEvent.CONSERVATIVE_MODE_CLEARED, TelemetryLevel.INFO, { epoch });
  }

  /** Starts counting control-plane time for a new `run`. */
  startRun(): void {
    this.#controlMs = { controller: 0, executor: 0 };
  }

  /** Runs a controller call; reports a miss (`tamiyo_timeout`) or an error (`tolaria.tamiyo_error`). */
  async controller(
    call: (signal: AbortSignal) => Promise<AdaptationCommand | undefined>,
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<CallResult<AdaptationCommand | undefined>> {
    const o = this.#o;
    const result = await this.#onWorker(call, name, o.controllerDeadlineMs, signal);
    this.#controlMs.controller += result.latencyMs;
    if (result.ok) return result;
    if (result.error === 'timeout') {
      this.#timeouts.controller += 1;
      this.#timeouts.lastControllerMs = result.latencyMs;
      o.events.event(TolariaEvent.TAMIYO_TIMEOUT, TelemetryLevel.WARNING, {
        step: o.state.globalStep,
        deadline_ms: o.controllerDeadlineMs,
        elapsed_ms: result.latencyMs.toFixed(1),
      });
      o.state.epoch.fail(EmergencyReason.TAMIYO_TIMEOUT);
      this.enterConservative(EmergencyReason.TAMIYO_TIMEOUT);
    } else if (result.error === 'error') {
      o.events.event(TolariaEvent.TAMIYO_ERROR, TelemetryLevel.WARNING, { step: o.state.globalStep, error: result.message ?? '' });
      o.state.epoch.fail(EmergencyReason.TAMIYO_ERROR);
      this.enterConservative(EmergencyReason.TAMIYO_ERROR);
    }
    return result;
  }

  /**
   * Runs an executor call; reports a miss (`kasmina_timeout`, conservative mode) or an error
   * (`tolaria.kasmina_error`, the epoch fails). An error `isRefusal` accepts is the caller's
   * to report: the executor refused something, it did not fail.
   */
  async executor(
    call: (options: CallOptions) => Promise<void>,
    name: string,
    signal: AbortSignal | undefined,
    attributes: Record<string, string>,
    isRefusal: (cause: unknown) => boolean = () => false,
  ): Promise<CallResult<void>> {
    const o = this.#o;
    const result = await this.#onWorker((s) => call({ signal: s }), name, o.executorDeadlineMs, signal);
    this.#controlMs.executor += result.latencyMs;
    if (result.error === 'timeout') {
      this.#timeouts.executor += 1;
      this.#timeouts.lastExecutorMs = result.latencyMs;
      o.events.event(TolariaEvent.KASMINA_TIMEOUT, TelemetryLevel.WARNING, {
        step: o.state.globalStep,
        call: name,
        ...attributes,
        deadline_ms: o.executorDeadlineMs,
        elapsed_ms: result.latencyMs.toFixed(1),
      });
      o.state.epoch.fail(EmergencyReason.KASMINA_TIMEOUT);
      this.enterConservative(EmergencyReason.KASMINA_TIMEOUT);
    } else if (result.error === 'error' && !isRefusal(result.cause)) {
      o.events.event(TolariaEvent.KASMINA_ERROR, TelemetryLevel.WARNING, {
        step: o.state.globalStep,
        call: name,
        ...attributes,
        error: result.message ?? '',
      });
      o.state.epoch.fail(EmergencyReason.KASMINA_ERROR);
    }
    return result;
  }

  /** Deadline misses and control-plane time. */
  stats(): ControlCallStats {
    return {
      controllerTimeouts: this.#timeouts.controller,
      executorTimeouts: this.#timeouts.executor,
      controlPlaneMs: { ...this.#controlMs },
    };
  }

  /** Deadline misses: totals and the elapsed time of the last miss. */
  metrics(): MetricInput[] {
    return [
      metricOf(TolariaMetric.TIMEOUT_TAMIYO_TOTAL, this.#timeouts.controller),
      metricOf(TolariaMetric.TIMEOUT_KASMINA_TOTAL, this.#timeouts.executor),
      metricOf(TolariaMetric.TIMEOUT_TAMIYO_LAST_MS, this.#timeouts.lastControllerMs),
      metricOf(TolariaMetric.TIMEOUT_KASMINA_LAST_MS, this.#timeouts.lastExecutorMs),
    ];
  }

  #onWorker<T>(
    call: (signal: AbortSignal) => Promise<T>,
    name: string,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): Promise<CallResult<T>> {
    // resolveTrainerOptions requires a worker whenever a controller or executor is configured.
    return callOnWorker(this.#o.worker as AsyncWorker, this.#o.clock, call, { name, deadlineMs, signal });
  }
}
