/**
 * The operator's path to a run: commands published on Oona (by `esper command`) are queued
 * and handed to the training loop one per step, as a controller's would be, so their owner
 * verifies and applies them at a step boundary. Each one handed out is acknowledged on the
 * bus with its fate (a `CommandAck` replying to its message); one still queued when the inbox
 * closes is acknowledged RUN_ENDED. Each run reads in its own consumer group
 * (`kasmina-<training_run_id>`); commands for other runs are left to them.
 *
 * The group reads the run's `ControlDecision`s too. They share the command stream, and a
 * controller publishes a command before the decision naming it. So once the inbox has read
 * the decision answering a packet, it holds every command the controller issued for that
 * packet and every earlier one ({@link CommandInbox.waitForDecision}): the barrier a trainer
 * whose controller is remote uses at its end, so that no command is left unread.
 */
import { create } from '@bufbuild/protobuf';
import {
  buildTelemetryPacket,
  closeOnce,
  ErrorCode,
  errorMessage,
  EsperError,
  optionChecks,
  ServiceState,
  systemClock,
  type Clock,
  type TelemetrySink,
} from '../core/index.js';
import {
  BusMessageType,
  CommandAckSchema,
  CommandAckStatus,
  TelemetryLevel,
  type AdaptationCommand,
  type ControlDecision,
  type SystemStatePacket,
} from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { CommandOutcomeStatus, type CallOptions, type CommandOutcome, type Controller } from '../tolaria/index.js';
import { KasminaEvent } from './names.js';

/** Options of {@link CommandInbox}. */
export interface CommandInboxOptions {
  /** Commands are read from it and acknowledged on it; not closed here. */
  readonly bus: Bus;
  /** Only commands for this run are queued. Not blank. */
  readonly trainingRunId: string;
  /** Receives WARNING `command_ack_failed` when an acknowledgement cannot be published. */
  readonly telemetry: TelemetrySink;
  /** Consumer name within the run's group. @default 'kasmina' */
  readonly consumer?: string;
  /** Queued commands beyond this are refused (the delivery is retried later). Integer ≥ 1. @default 1024 */
  readonly maxQueued?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link CommandInboxOptions}. */
export const COMMAND_INBOX_DEFAULTS = Object.freeze({ consumer: 'kasmina', maxQueued: 1_024 });

/** Packet ids of the newest decisions remembered for {@link CommandInbox.waitForDecision}. */
const DECISIONS_REMEMBERED = 256;

/** Lifecycle of a {@link CommandInbox}: `running` from `start()`, `closing` from `close()` until it is done. */
export type CommandInboxState = 'created' | 'running' | 'closing' | 'closed';

/** Counters of {@link CommandInbox}. */
export interface CommandInboxStats {
  readonly received: number;
  readonly otherRuns: number;
  readonly delivered: number;
  readonly queued: number;
  /** Acknowledgements published. */
  readonly acknowledged: number;
  /** Acknowledged RUN_ENDED at close: never handed out, or handed out and given no outcome. */
  readonly runEnded: number;
  /** The run's control decisions read (see {@link CommandInbox.waitForDecision}). */
  readonly decisions: number;
}

const ACK_STATUS: Readonly<Record<CommandOutcomeStatus, CommandAckStatus>> = {
  [CommandOutcomeStatus.APPLIED]: CommandAckStatus.APPLIED,
  [CommandOutcomeStatus.REJECTED]: CommandAckStatus.REJECTED,
  [CommandOutcomeStatus.NOT_APPLIED]: CommandAckStatus.NOT_APPLIED,
  [CommandOutcomeStatus.TIMED_OUT]: CommandAckStatus.TIMED_OUT,
  [CommandOutcomeStatus.FAILED]: CommandAckStatus.FAILED,
};

/** A received command and the bus message it came in (the acknowledgement replies to it). */
interface Received {
  readonly command: AdaptationCommand;
  readonly delivery: Delivery;
}

/** Queues commands from Oona, hands them out one per training step, and acknowledges each. */
export class CommandInbox implements Controller {
  readonly #bus: Bus;
  readonly #trainingRunId: string;
  readonly #telemetry: TelemetrySink;
  readonly #consumer: string;
  readonly #maxQueued: number;
  readonly #clock: Clock;
  readonly #queue: Received[] = [];
  /** Handed to the trainer, awaiting their outcome. */
  readonly #handed: Received[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #publishing = new Set<Promise<void>>();
  #subscription: Subscription | undefined;
  #globalStep = 0n;
  #received = 0;
  #otherRuns = 0;
  #delivered = 0;
  #acknowledged = 0;
  #runEnded = 0;
  #decisions = 0;
  /** Packet ids answered by the newest decisions read, oldest first. */
  readonly #answered = new Set<string>();
  readonly #state = new ServiceState<CommandInboxState>('kasmina command inbox', 'created');
  readonly #close = closeOnce(() => this.#unsubscribeAndAcknowledge());

  /** @throws EsperError `INVALID_ARGUMENT` naming a bad option. */
  constructor(options: CommandInboxOptions) {
    const check = optionChecks('CommandInbox');
    if (typeof options.trainingRunId !== 'string' || options.trainingRunId.trim().length === 0) {
      check.fail('trainingRunId', 'a non-blank string', options.trainingRunId);
    }
    this.#bus = options.bus;
    this.#trainingRunId = options.trainingRunId;
    this.#telemetry = options.telemetry;
    this.#consumer = check.nonEmptyString('consumer', options.consumer ?? COMMAND_INBOX_DEFAULTS.consumer);
    this.#maxQueued = check.integer('maxQueued', options.maxQueued ?? COMMAND_INBOX_DEFAULTS.maxQueued, { min: 1 });
    this.#clock = options.clock ?? systemClock;
  }

  /** See {@link CommandInboxState}. */
  get state(): CommandInboxState {
    return this.#state.current;
  }

  /** Consumer group of this run. */
  get group(): string {
    return `kasmina-${this.#trainingRunId}`;
  }

  /**
   * Subscribes; resolves once commands published from now on will be received. A second
   * call while running does nothing.
   * @throws EsperError `INVALID_STATE` once closing or closed.
   */
  async start(): Promise<void> {
    if (this.#state.is('running')) return;
    this.#state.transition('created', 'running', 'start');
    this.#subscription = this.#bus.subscribe({
      group: this.group,
      consumer: this.#consumer,
      types: [BusMessageType.ADAPTATION_COMMAND, BusMessageType.CONTROL_DECISION],
      handler: (delivery) => {
        if (delivery.type === BusMessageType.CONTROL_DECISION) this.#decided(delivery.message as ControlDecision);
        else this.#receive(delivery);
      },
    });
    await this.#subscription.ready;
  }

  /** The next queued command for this run, if any (Tolaria's per-step controller call). */
  evaluateStep(state: SystemStatePacket, _options: CallOptions): Promise<AdaptationCommand | undefined> {
    this.#globalStep = state.globalStep;
    const next = this.#queue.shift();
    if (next === undefined) return Promise.resolve(undefined);
    this.#delivered += 1;
    this.#handed.push(next);
    return Promise.resolve(next.command);
  }

  /** Acknowledges a command handed out by {@link evaluateStep} with its fate. */
  commandOutcome(outcome: CommandOutcome): void {
    const index = this.#handed.findIndex((r) => r.command.commandId === outcome.commandId);
    if (index < 0) return;
    const [received] = this.#handed.splice(index, 1);
    this.#acknowledge(received as Received, ACK_STATUS[outcome.status], outcome.reason);
  }

  /**
   * Waits until the command `commandId` of this run is queued and moves it to the front, so
   * the next {@link evaluateStep} hands it out (a controller in lockstep with the trainer:
   * the command it issued for this step goes first, ahead of queued operator commands).
   * @throws EsperError `WORKER_CANCELLED` when `signal` aborts or the inbox closes first
   */
  async take(commandId: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const index = this.#queue.findIndex((r) => r.command.commandId === commandId);
      if (index >= 0) {
        this.#queue.unshift(...this.#queue.splice(index, 1));
        return;
      }
      if (signal?.aborted === true || !this.#state.is('running')) {
        throw new EsperError(ErrorCode.WORKER_CANCELLED, `stopped waiting for command ${commandId}`, { details: { commandId } });
      }
      await this.#nextReceipt(signal);
    }
  }

  /** Resolves when at least `count` commands have been received in total (tests, tools). */
  async waitForReceived(count: number, signal?: AbortSignal): Promise<void> {
    while (this.#received < count) {
      if (signal?.aborted === true) throw new EsperError(ErrorCode.WORKER_CANCELLED, 'stopped waiting for commands');
      await this.#nextReceipt(signal);
    }
  }

  /**
   * Waits until the decision answering packet `packetId` of this run has been read; every
   * command the controller published before it has then been received (see the module
   * comment). Remembers the newest 256 decisions.
   * @throws EsperError `WORKER_CANCELLED` when `signal` aborts or the inbox closes first
   */
  async waitForDecision(packetId: string, signal?: AbortSignal): Promise<void> {
    while (!this.#answered.has(packetId)) {
      if (signal?.aborted === true || !this.#state.is('running')) {
        throw new EsperError(ErrorCode.WORKER_CANCELLED, `stopped waiting for the decision on packet ${packetId}`, {
          details: { packetId },
        });
      }
      await this.#nextReceipt(signal);
    }
  }

  /** Resolves at the next received command or decision, at close, or when `signal` aborts. */
  #nextReceipt(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Counters so far. */
  stats(): CommandInboxStats {
    return {
      received: this.#received,
      otherRuns: this.#otherRuns,
      delivered: this.#delivered,
      queued: this.#queue.length,
      acknowledged: this.#acknowledged,
      runEnded: this.#runEnded,
      decisions: this.#decisions,
    };
  }

  /**
   * Unsubscribes (bounded by the bus's stop timeout), acknowledges every command not yet
   * applied RUN_ENDED, and waits for the acknowledgements to be published. Idempotent (the
   * first call's promise).
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #unsubscribeAndAcknowledge(): Promise<void> {
    this.#state.set('closing');
    const subscription = this.#subscription;
    this.#subscription = undefined;
    try {
      await subscription?.close();
    } finally {
      for (const received of [...this.#handed.splice(0), ...this.#queue.splice(0)]) {
        this.#acknowledge(received, CommandAckStatus.RUN_ENDED, 'the run ended before the command was applied');
        this.#runEnded += 1;
      }
      for (const wake of [...this.#waiters]) wake();
      await Promise.allSettled([...this.#publishing]);
      this.#state.set('closed');
    }
  }

  #receive(delivery: Delivery): void {
    const command = delivery.message as AdaptationCommand;
    if (command.trainingRunId !== this.#trainingRunId) {
      this.#otherRuns += 1;
      return;
    }
    if (this.#queue.length >= this.#maxQueued) {
      throw new EsperError(ErrorCode.WORKER_QUEUE_FULL, `command inbox full (${this.#maxQueued}); retry later`);
    }
    this.#queue.push({ command, delivery });
    this.#received += 1;
    for (const wake of [...this.#waiters]) wake();
  }

  #decided(decision: ControlDecision): void {
    if (decision.trainingRunId !== this.#trainingRunId) return;
    this.#decisions += 1;
    this.#answered.add(decision.packetId);
    if (this.#answered.size > DECISIONS_REMEMBERED) this.#answered.delete(this.#answered.values().next().value as string);
    for (const wake of [...this.#waiters]) wake();
  }

  /** Publishes the acknowledgement as a reply to the command's message; a failure is reported, never thrown. */
  #acknowledge(received: Received, status: CommandAckStatus, reason: string): void {
    const { command, delivery } = received;
    const ack = create(CommandAckSchema, {
      commandId: command.commandId,
      trainingRunId: this.#trainingRunId,
      status,
      reason,
      globalStep: this.#globalStep,
      issuedBy: command.issuedBy,
    });
    const publishing = this.#bus
      .reply(delivery, ack)
      .then(() => {
        this.#acknowledged += 1;
      })
      .catch((error: unknown) => {
        this.#telemetry.emit(
          buildTelemetryPacket({
            source: 'kasmina',
            trainingRunId: this.#trainingRunId,
            clock: this.#clock,
            events: [
              {
                description: KasminaEvent.COMMAND_ACK_FAILED,
                level: TelemetryLevel.WARNING,
                attributes: {
                  command_id: command.commandId,
                  status: CommandAckStatus[status] ?? String(status),
                  error: errorMessage(error),
                },
              },
            ],
          }),
        );
      })
      .finally(() => {
        this.#publishing.delete(publishing);
      });
    this.#publishing.add(publishing);
  }
}
