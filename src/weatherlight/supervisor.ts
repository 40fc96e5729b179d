/**
 * The Weatherlight supervisor (prototype-tolaria-oona-nissa-weatherlight §5.3–§5.5, §5.8,
 * made real for OS processes): runs named services — child processes or in-process workers
 * — restarts a crashed one with exponential backoff and jitter within a restart budget,
 * reports the mode and its metrics every telemetry interval, and shuts down by draining
 * (SIGTERM / abort), then SIGKILL at the deadline.
 *
 * Departures from the prototype, each on purpose:
 * - §5.3: a run that lasted `healthyAfterMs` resets the backoff (the prototype's never did);
 * - §5.3: a restart budget per service; past it the service stays down with a CRITICAL
 *   `worker_budget_exhausted` and {@link Supervisor.whenSettled} says so, instead of
 *   restarting forever;
 * - §5.3 [quirk]: a service that ends on its own with success (exit code 0, the worker
 *   resolved) is `completed` — not running and not restarted — where the prototype left it
 *   `running = true` forever;
 * - §5.5: events go out when they happen, in their own packet (a CRITICAL reaches the
 *   operator at once), instead of a sticky `worker_error` in every periodic packet; the
 *   mode is `degraded` while a service backs off or is exhausted, not whenever one is not
 *   running (a completed service is not a fault), and health does not stay on
 *   `recent_error` after the first error.
 */
import { closeOnce, ErrorCode, EsperError, ServiceState, type EventInput } from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { backoffDelayMs, RestartBudget } from './backoff.js';
import { SupervisorMode, WeatherlightEvent } from './names.js';
import { startServiceInstance, type ServiceExit, type ServiceInstance, type ServiceSpec } from './service-instance.js';
import { resolveSupervisorOptions, type ResolvedSupervisorOptions, type SupervisorOptions } from './supervisor-options.js';
import {
  buildSupervisorEventPacket,
  buildSupervisorPacket,
  modeOf,
  type ServiceStatus,
  type SupervisorView,
} from './supervisor-telemetry.js';

/** Lifecycle of the supervisor itself. */
export type SupervisorState = 'created' | 'running' | 'stopping' | 'stopped';

/** One service as the supervisor reports it. */
export interface ServiceReport {
  readonly name: string;
  readonly kind: ServiceSpec['kind'];
  readonly status: ServiceStatus;
  /** Restarts since the supervisor started. */
  readonly restarts: number;
  /** One line on the latest failure. */
  readonly lastError: string | undefined;
  /** Wall time of the latest failure. */
  readonly lastErrorAtWallMs: number | undefined;
  /** Exit code of the child's latest run (`null`: a signal ended it); absent for a worker or a running child. */
  readonly exitCode: number | null | undefined;
  /** The signal that ended the child's latest run, if one did. */
  readonly signal: string | null | undefined;
  /** Process id of the child's latest run. */
  readonly pid: number | undefined;
}

/** Why the supervisor cannot go on unattended (see {@link Supervisor.whenSettled}). */
export type SupervisorSettlement =
  { readonly reason: 'budget_exhausted'; readonly service: ServiceReport } | { readonly reason: 'completed' };

/** What {@link Supervisor.shutdown} and {@link Supervisor.run} resolve with. */
export interface SupervisorResult {
  /**
   * Why it stopped: `budget_exhausted` (a service stopped for good first), `completed`
   * (every service ended on its own), `signal` ({@link Supervisor.run}'s signal) or
   * `shutdown` (a direct call).
   */
  readonly reason: 'budget_exhausted' | 'completed' | 'signal' | 'shutdown';
  /** The mode at the end. */
  readonly mode: SupervisorMode;
  /** Every service's final state, in registration order. */
  readonly services: readonly ServiceReport[];
  /** The services that exhausted their restart budget, in the order they did. */
  readonly exhausted: readonly ServiceReport[];
}

/** A point-in-time view of the supervisor. */
export interface SupervisorSnapshot {
  readonly state: SupervisorState;
  readonly mode: SupervisorMode;
  readonly uptimeMs: number;
  readonly services: readonly ServiceReport[];
}

/** The supervisor's book on one service. */
interface ServiceRecord {
  readonly spec: ServiceSpec;
  readonly budget: RestartBudget;
  status: ServiceStatus;
  instance: ServiceInstance | undefined;
  /** Whether {@link instance} has ended (its exit was handled). */
  ended: boolean;
  startedAtMs: number;
  consecutiveFailures: number;
  restarts: number;
  backoffMs: number;
  cancelBackoff: (() => void) | undefined;
  lastError: string | undefined;
  lastErrorAtWallMs: number | undefined;
  lastExit: ServiceExit | undefined;
}

/**
 * Supervises a fixed set of services. `start()` starts them all; a crashed one is started
 * again after `min(base·2ⁿ, max)` plus up to 25 % jitter, n being its consecutive failures,
 * unless it used up its restart budget; `shutdown()` drains and resolves with each final
 * state. It touches no process signal: {@link run} takes an `AbortSignal` the CLI trips.
 *
 * ```ts
 * const supervisor = new Supervisor({ services, telemetry });
 * const result = await supervisor.run(signal);
 * const failure = supervisorFailure(result); // EsperError if a service exhausted its budget
 * ```
 */
export class Supervisor {
  readonly #options: ResolvedSupervisorOptions;
  readonly #records: ServiceRecord[];
  readonly #state = new ServiceState<SupervisorState>('weatherlight supervisor', 'created');
  readonly #exhausted: ServiceRecord[] = [];
  readonly #settled: Promise<SupervisorSettlement>;
  #settle!: (settlement: SupervisorSettlement) => void;
  #settlement: SupervisorSettlement | undefined;
  #mode: SupervisorMode = SupervisorMode.OPERATIONAL;
  #startedAtMs = 0;
  #cancelTelemetry: (() => void) | undefined;
  readonly #shutdown = closeOnce((reason: 'signal' | 'shutdown') => this.#stop(reason));

  /** @throws EsperError INVALID_ARGUMENT for a bad option (a duplicate service name, ...) */
  constructor(options: SupervisorOptions) {
    this.#options = resolveSupervisorOptions(options);
    this.#records = this.#options.services.map((spec) => ({
      spec,
      budget: new RestartBudget(this.#options.restartBudget),
      status: 'pending',
      instance: undefined,
      ended: false,
      startedAtMs: 0,
      consecutiveFailures: 0,
      restarts: 0,
      backoffMs: 0,
      cancelBackoff: undefined,
      lastError: undefined,
      lastErrorAtWallMs: undefined,
      lastExit: undefined,
    }));
    this.#settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  /** `created` → `running` (start) → `stopping` → `stopped` (shutdown). */
  get state(): SupervisorState {
    return this.#state.current;
  }

  /** `degraded` while any service backs off or has exhausted its restart budget. */
  get mode(): SupervisorMode {
    return this.#mode;
  }

  /**
   * Starts every service, in order, and the periodic telemetry.
   * @throws EsperError INVALID_STATE unless `created`
   */
  start(): void {
    this.#state.transition('created', 'running', 'start');
    this.#startedAtMs = this.#options.clock.monotonicMs();
    for (const record of this.#records) this.#launch(record);
    this.#scheduleTelemetry();
    if (this.#records.length === 0) this.#settleOnce({ reason: 'completed' });
  }

  /**
   * Resolves (never rejects) at the first of: a service exhausted its restart budget (it
   * stays down; the others keep running, in mode `degraded`), or every service completed
   * (but those that run until stopped, `untilStopped`, which keep running).
   * The caller then shuts down and exits accordingly.
   */
  whenSettled(): Promise<SupervisorSettlement> {
    return this.#settled;
  }

  /**
   * Starts, waits for {@link whenSettled} or `signal` (SIGINT/SIGTERM, tripped by the CLI),
   * then shuts down. Resolves with the final states; see {@link supervisorFailure}.
   */
  async run(signal?: AbortSignal): Promise<SupervisorResult> {
    if (signal?.aborted === true) {
      // Stopped before it began: start nothing.
      this.#state.require('created', 'run');
      return this.#shutdown('signal');
    }
    this.start();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<'signal'>((resolve) => {
      if (signal === undefined) return;
      onAbort = () => resolve('signal');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const first = await Promise.race([this.#settled.then(() => 'settled' as const), aborted]);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    return this.#shutdown(first === 'signal' ? 'signal' : 'shutdown');
  }

  /**
   * Stops restarting, asks every running service to end (SIGTERM to a child, abort to a
   * worker), waits up to `drainDeadlineMs` for them, SIGKILLs the children still there,
   * emits a last periodic packet and resolves with each final state. Idempotent: every
   * call gets the first call's promise.
   */
  shutdown(): Promise<SupervisorResult> {
    return this.#shutdown('shutdown');
  }

  /** Same as {@link shutdown}. */
  close(): Promise<SupervisorResult> {
    return this.#shutdown('shutdown');
  }

  /** `await using` support: same as {@link shutdown}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#shutdown('shutdown');
  }

  /** Every service as it stands now. */
  snapshot(): SupervisorSnapshot {
    return { state: this.#state.current, mode: this.#mode, uptimeMs: this.#uptimeMs(), services: this.#records.map((r) => report(r)) };
  }

  /** Builds and emits the periodic packet now (the telemetry loop calls this every interval). */
  emitTelemetry(): void {
    this.#options.telemetry.emit(buildSupervisorPacket(this.#view(), this.#options.clock));
  }

  #launch(record: ServiceRecord): void {
    const instance = startServiceInstance(record.spec, this.#options.output);
    record.instance = instance;
    record.ended = false;
    record.status = 'running';
    record.backoffMs = 0;
    record.startedAtMs = this.#options.clock.monotonicMs();
    record.lastExit = undefined;
    instance.exited.then(
      (exit) => this.#onExit(record, instance, exit),
      // exited never rejects; this only keeps the promise from floating.
      (error: unknown) => this.#onExit(record, instance, { ok: false, error: String(error) }),
    );
  }

  #onExit(record: ServiceRecord, instance: ServiceInstance, exit: ServiceExit): void {
    if (record.instance !== instance) return;
    record.ended = true;
    record.lastExit = exit;
    if (!this.#state.is('running')) {
      // Shutdown asked it to end (or kills it); how it ended is recorded, nothing restarts.
      if (record.status === 'stopping') record.status = 'stopped';
      return;
    }
    if (exit.ok) {
      record.status = 'completed';
      this.#emitEvents([
        { description: WeatherlightEvent.WORKER_COMPLETED, level: TelemetryLevel.INFO, attributes: { worker: record.spec.name } },
      ]);
      const finite = this.#records.filter((r) => r.spec.untilStopped !== true);
      if (finite.every((r) => r.status === 'completed')) this.#settleOnce({ reason: 'completed' });
      return;
    }
    this.#onFailure(record, exit);
  }

  #onFailure(record: ServiceRecord, exit: ServiceExit): void {
    const { clock, healthyAfterMs, restartBudget } = this.#options;
    const nowMs = clock.monotonicMs();
    const ranMs = nowMs - record.startedAtMs;
    const error = exit.error ?? 'failed';
    record.lastError = error;
    record.lastErrorAtWallMs = clock.wallMs();
    // A healthy run (prototype §5.3 never reset) starts the backoff over.
    record.consecutiveFailures = ranMs >= healthyAfterMs ? 1 : record.consecutiveFailures + 1;
    const crash: EventInput = {
      description: WeatherlightEvent.WORKER_ERROR,
      level: TelemetryLevel.WARNING,
      attributes: {
        worker: record.spec.name,
        error,
        ran_ms: Math.round(ranMs),
        consecutive_failures: record.consecutiveFailures,
        ...(exit.exitCode === undefined || exit.exitCode === null ? {} : { exit_code: exit.exitCode }),
        ...(exit.signal === undefined || exit.signal === null ? {} : { signal: exit.signal }),
      },
    };
    if (!record.budget.take(nowMs)) {
      record.status = 'exhausted';
      this.#exhausted.push(record);
      this.#emitEvents([
        crash,
        {
          description: WeatherlightEvent.WORKER_BUDGET_EXHAUSTED,
          level: TelemetryLevel.CRITICAL,
          attributes: {
            worker: record.spec.name,
            last_error: error,
            restarts: record.restarts,
            max_restarts: restartBudget.maxRestarts,
            window_ms: restartBudget.windowMs,
          },
        },
      ]);
      this.#settleOnce({ reason: 'budget_exhausted', service: report(record) });
      return;
    }
    record.restarts += 1;
    const delayMs = backoffDelayMs(record.consecutiveFailures, this.#options.backoff, this.#options.random);
    record.status = 'backing_off';
    record.backoffMs = delayMs;
    record.cancelBackoff = this.#options.timers.setTimer(delayMs, () => {
      record.cancelBackoff = undefined;
      if (!this.#state.is('running') || record.status !== 'backing_off') return;
      this.#launch(record);
      this.#emitEvents([
        {
          description: WeatherlightEvent.WORKER_RESTARTED,
          level: TelemetryLevel.INFO,
          attributes: { worker: record.spec.name, restarts: record.restarts, backoff_ms: Math.round(delayMs) },
        },
      ]);
    });
    this.#emitEvents([{ ...crash, attributes: { ...crash.attributes, restarts: record.restarts, backoff_ms: Math.round(delayMs) } }]);
  }

  /** Emits `events` in one packet, with a `mode_changed` event when the mode moved. */
  #emitEvents(events: EventInput[]): void {
    const mode = modeOf(this.#records);
    if (mode !== this.#mode && this.#state.is('running')) {
      events.push({
        description: WeatherlightEvent.MODE_CHANGED,
        level: mode === SupervisorMode.DEGRADED ? TelemetryLevel.WARNING : TelemetryLevel.INFO,
        attributes: { from: this.#mode, to: mode },
      });
    }
    this.#mode = mode;
    this.#options.telemetry.emit(buildSupervisorEventPacket(this.#view(), events, this.#options.clock));
  }

  #scheduleTelemetry(): void {
    this.#cancelTelemetry = this.#options.timers.setTimer(this.#options.telemetryIntervalMs, () => {
      this.#cancelTelemetry = undefined;
      if (!this.#state.is('running')) return;
      this.emitTelemetry();
      this.#scheduleTelemetry();
    });
  }

  #settleOnce(settlement: SupervisorSettlement): void {
    if (this.#settlement !== undefined) return;
    this.#settlement = settlement;
    this.#settle(settlement);
  }

  async #stop(reason: 'signal' | 'shutdown'): Promise<SupervisorResult> {
    if (this.#state.is('created')) {
      this.#state.set('stopped');
      for (const record of this.#records) record.status = 'stopped';
      return this.#result(reason);
    }
    this.#state.set('stopping');
    this.#cancelTelemetry?.();
    this.#cancelTelemetry = undefined;
    const draining: ServiceRecord[] = [];
    for (const record of this.#records) {
      if (record.status === 'backing_off') {
        record.cancelBackoff?.();
        record.cancelBackoff = undefined;
        record.backoffMs = 0;
        record.status = 'stopped';
      } else if (record.status === 'running' && record.instance !== undefined) {
        record.status = 'stopping';
        record.instance.stop();
        draining.push(record);
      }
    }
    const stubborn = await this.#waitForEnd(draining);
    const killed: ServiceRecord[] = [];
    for (const record of stubborn) {
      if (record.instance?.kill() === true) {
        record.status = 'killed';
        killed.push(record);
      } else {
        record.status = 'abandoned';
      }
    }
    for (const record of await this.#waitForEnd(killed)) record.status = 'abandoned';
    this.#state.set('stopped');
    this.#mode = modeOf(this.#records);
    this.emitTelemetry();
    return this.#result(reason);
  }

  /** Waits up to the drain deadline for `records` to end; returns those that did not. */
  async #waitForEnd(records: readonly ServiceRecord[]): Promise<ServiceRecord[]> {
    if (records.length === 0) return [];
    let cancel: (() => void) | undefined;
    const deadline = new Promise<void>((resolve) => {
      cancel = this.#options.timers.setTimer(this.#options.drainDeadlineMs, resolve);
    });
    const exits = records.flatMap((r) => (r.instance === undefined ? [] : [r.instance.exited]));
    await Promise.race([Promise.all(exits), deadline]);
    cancel?.();
    return records.filter((r) => !r.ended);
  }

  #result(reason: 'signal' | 'shutdown'): SupervisorResult {
    return {
      reason: this.#settlement?.reason ?? reason,
      mode: this.#mode,
      services: this.#records.map((r) => report(r)),
      exhausted: this.#exhausted.map((r) => report(r)),
    };
  }

  #uptimeMs(): number {
    return this.#state.is('created') ? 0 : this.#options.clock.monotonicMs() - this.#startedAtMs;
  }

  #view(): SupervisorView {
    const lastErrors = this.#records.map((r) => r.lastErrorAtWallMs).filter((t): t is number => t !== undefined);
    return {
      uptimeMs: this.#uptimeMs(),
      mode: modeOf(this.#records),
      services: this.#records.map((r) => ({ name: r.spec.name, status: r.status, restarts: r.restarts, backoffMs: r.backoffMs })),
      lastErrorAtWallMs: lastErrors.length === 0 ? undefined : Math.max(...lastErrors),
    };
  }
}

function report(record: ServiceRecord): ServiceReport {
  return {
    name: record.spec.name,
    kind: record.spec.kind,
    status: record.status,
    restarts: record.restarts,
    lastError: record.lastError,
    lastErrorAtWallMs: record.lastErrorAtWallMs,
    exitCode: record.lastExit?.exitCode,
    signal: record.lastExit?.signal,
    pid: record.instance?.pid,
  };
}

/**
 * The error a caller exits with when a service exhausted its restart budget
 * (`WEATHERLIGHT_SERVICE_BUDGET_EXHAUSTED`, naming the first such service and its last
 * error), else `undefined`.
 */
export function supervisorFailure(result: SupervisorResult): EsperError | undefined {
  const first = result.exhausted[0];
  if (first === undefined) return undefined;
  const others =
    result.exhausted.length > 1
      ? ` (and ${result.exhausted
          .slice(1)
          .map((s) => s.name)
          .join(', ')})`
      : '';
  return new EsperError(
    ErrorCode.WEATHERLIGHT_SERVICE_BUDGET_EXHAUSTED,
    `service ${first.name}${others} kept crashing and was stopped after ${first.restarts} restarts; last error: ${first.lastError ?? 'unknown'}`,
    { details: { service: first.name, restarts: first.restarts, lastError: first.lastError ?? '' } },
  );
}
