/**
 * The operator's path to Kasmina: adaptation commands published on Oona (by
 * `esper command`, or any other issuer holding the key) are queued here and handed to the
 * training loop as if a controller had decided them, one per step. It implements Tolaria's
 * `Controller`, so commands take the one authoritative path — Tolaria's dependency check,
 * then Kasmina's verifier, guard and dispatcher — and are applied at a step boundary,
 * never in the middle of a forward pass.
 *
 * Every training run reads the command stream in its own consumer group
 * (`kasmina-<training_run_id>`), so each run sees every command; commands for other runs
 * are acknowledged and counted, not applied. Nothing is verified here: a forged command
 * reaches Kasmina's verifier and is rejected there with CRITICAL telemetry.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { BusMessageType, type AdaptationCommand, type SystemStatePacket } from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import type { CallOptions, Controller } from '../tolaria/index.js';

/** Options of {@link CommandInbox}. */
export interface CommandInboxOptions {
  readonly bus: Bus;
  /** Only commands for this run are queued. */
  readonly trainingRunId: string;
  /** Consumer name within the run's group. @default 'kasmina' */
  readonly consumer?: string;
  /** Queued commands beyond this are refused (the delivery is retried later). @default 1024 */
  readonly maxQueued?: number;
}

/** Counters of {@link CommandInbox}. */
export interface CommandInboxStats {
  readonly received: number;
  readonly otherRuns: number;
  readonly delivered: number;
  readonly queued: number;
}

/** Queues commands from Oona and hands them out one per training step. */
export class CommandInbox implements Controller {
  readonly #bus: Bus;
  readonly #trainingRunId: string;
  readonly #consumer: string;
  readonly #maxQueued: number;
  readonly #queue: AdaptationCommand[] = [];
  readonly #waiters = new Set<() => void>();
  #subscription: Subscription | undefined;
  #received = 0;
  #otherRuns = 0;
  #delivered = 0;

  constructor(options: CommandInboxOptions) {
    if (options.trainingRunId.trim().length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'a command inbox needs a training_run_id');
    }
    this.#bus = options.bus;
    this.#trainingRunId = options.trainingRunId;
    this.#consumer = options.consumer ?? 'kasmina';
    this.#maxQueued = options.maxQueued ?? 1024;
  }

  /** Consumer group of this run. */
  get group(): string {
    return `kasmina-${this.#trainingRunId}`;
  }

  /** Subscribes; resolves once commands published from now on will be received. */
  async start(): Promise<void> {
    if (this.#subscription !== undefined) return;
    this.#subscription = this.#bus.subscribe({
      group: this.group,
      consumer: this.#consumer,
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (delivery) => this.#receive(delivery),
    });
    await this.#subscription.ready;
  }

  /** The next queued command for this run, if any (Tolaria's per-step controller call). */
  evaluateStep(_state: SystemStatePacket, _options: CallOptions): Promise<AdaptationCommand | undefined> {
    const next = this.#queue.shift();
    if (next !== undefined) this.#delivered += 1;
    return Promise.resolve(next);
  }

  /** Resolves when at least `count` commands have been received in total (tests, tools). */
  async waitForReceived(count: number, signal?: AbortSignal): Promise<void> {
    while (this.#received < count) {
      if (signal?.aborted === true) throw new EsperError(ErrorCode.WORKER_CANCELLED, 'stopped waiting for commands');
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  stats(): CommandInboxStats {
    return { received: this.#received, otherRuns: this.#otherRuns, delivered: this.#delivered, queued: this.#queue.length };
  }

  /** Unsubscribes (bounded by the bus's stop timeout). Queued commands are dropped. */
  async stop(): Promise<void> {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close();
    this.#queue.length = 0;
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
    this.#queue.push(command);
    this.#received += 1;
    for (const wake of [...this.#waiters]) wake();
  }
}
