/**
 * Tamiyo's side of the control loop over Oona. Every `SystemStatePacket` of the run goes to
 * the controller (`evaluateEpoch` for an epoch's packet, `evaluateStep` otherwise); a
 * command it issues is published on the command stream, where the run's command inbox
 * receives it, and then a `ControlDecision` naming it (or none) is published as the reply to
 * the packet. A trainer in lockstep waits for that reply and takes the named command from
 * its inbox; one that does not wait reads its inbox each step. A controller call that throws
 * is answered "no change" and reported (WARNING `control_failed`): retrying the same packet
 * would fail the same way while the trainer waits.
 *
 * The inbox acknowledges each command's fate (`CommandAck`); the responder reads the run's
 * acknowledgements in a consumer group of its own and tells the controller the fate of each
 * command it issued (`issued_by` = {@link ControlResponderOptions.issuedBy}) through
 * `commandOutcome` — the call the trainer makes when it holds the controller directly.
 * Operator commands' acknowledgements and other runs' are left alone; the controller counts
 * a redelivered acknowledgement once.
 */
import { create } from '@bufbuild/protobuf';
import {
  buildTelemetryPacket,
  closeOnce,
  errorMessage,
  optionChecks,
  runCleanup,
  ServiceState,
  systemClock,
  type Clock,
  type TelemetrySink,
} from '../core/index.js';
import { BusMessageType, ControlDecisionSchema, TelemetryLevel, type CommandAck, type SystemStatePacket } from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { fateOfAck, type FateController } from './command-outcomes.js';
import { TamiyoEvent } from './names.js';

/** Options of {@link ControlResponder}. */
export interface ControlResponderOptions {
  /** Packets and acknowledgements are read from it, commands and decisions published on it; not closed here. */
  readonly bus: Bus;
  /** Decides (Tamiyo's service), and is told each of its commands' fate. */
  readonly controller: FateController;
  /** Only this run's packets are answered and its acknowledgements read. */
  readonly trainingRunId: string;
  /** Receives WARNING `control_failed` and `command_outcome_failed`. */
  readonly telemetry: TelemetrySink;
  /** `issued_by` of the controller's commands (its command builder's). @default 'tamiyo' */
  readonly issuedBy?: string;
  /**
   * How long {@link ControlResponder.close} waits for the acknowledgements of commands it
   * published and has not seen acknowledged, in ms (close the run's inbox first: it
   * acknowledges what is left RUN_ENDED). 0: not at all. @default 1_000
   */
  readonly ackDrainTimeoutMs?: number;
  /** @default 'tamiyo' */
  readonly consumer?: string;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link ControlResponderOptions}. */
export const CONTROL_RESPONDER_DEFAULTS = Object.freeze({ issuedBy: 'tamiyo', ackDrainTimeoutMs: 1_000, consumer: 'tamiyo' });

/**
 * Most commands remembered as awaiting acknowledgement: one no inbox received (none was
 * listening) is never acknowledged, and only close's bounded wait reads the set.
 */
const MAX_UNACKNOWLEDGED = 1_024;

/** Answers a run's state packets on the bus with the controller's decisions, and tells it its commands' fates. */
export class ControlResponder implements AsyncDisposable {
  readonly #o: ControlResponderOptions;
  readonly #clock: Clock;
  readonly #issuedBy: string;
  readonly #ackDrainTimeoutMs: number;
  #packets: Subscription | undefined;
  #acks: Subscription | undefined;
  /** Commands published and not yet acknowledged. */
  readonly #unacknowledged = new Set<string>();
  #allAcknowledged: (() => void) | undefined;
  readonly #state = new ServiceState<'created' | 'running' | 'closed'>('tamiyo control responder', 'created');
  readonly #close = closeOnce(async () => {
    // Packets first (no new commands), then the acknowledgements still on their way.
    const packets = this.#packets;
    this.#packets = undefined;
    await runCleanup('tamiyo control responder', [
      () => packets?.close(),
      () => this.#drainAcks(),
      () => {
        this.#state.set('closed');
        const acks = this.#acks;
        this.#acks = undefined;
        return acks?.close();
      },
    ]);
  });

  /** @throws EsperError `INVALID_ARGUMENT` naming a bad option. */
  constructor(options: ControlResponderOptions) {
    const check = optionChecks('ControlResponder');
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#issuedBy = check.nonEmptyString('issuedBy', options.issuedBy ?? CONTROL_RESPONDER_DEFAULTS.issuedBy);
    this.#ackDrainTimeoutMs = check.integer(
      'ackDrainTimeoutMs',
      options.ackDrainTimeoutMs ?? CONTROL_RESPONDER_DEFAULTS.ackDrainTimeoutMs,
      {
        min: 0,
      },
    );
  }

  /** Consumer group of the run's packets (one Tamiyo answers each packet once). */
  get group(): string {
    return `tamiyo-${this.#o.trainingRunId}`;
  }

  /** Consumer group of the run's acknowledgements. */
  get ackGroup(): string {
    return `tamiyo-acks-${this.#o.trainingRunId}`;
  }

  /** Subscribes; resolves once packets and acknowledgements published from now on will be read. */
  async start(): Promise<void> {
    this.#state.transition('created', 'running', 'start');
    const consumer = this.#o.consumer ?? CONTROL_RESPONDER_DEFAULTS.consumer;
    // Acknowledgements have a subscription (and group) of their own: a slow decision does
    // not hold them up, and the two never share the emergency stream within one group.
    this.#acks = this.#o.bus.subscribe({
      group: this.ackGroup,
      consumer,
      types: [BusMessageType.COMMAND_ACK],
      handler: (delivery) => {
        this.#acknowledged(delivery.message as CommandAck);
      },
    });
    this.#packets = this.#o.bus.subscribe({
      group: this.group,
      consumer,
      types: [BusMessageType.SYSTEM_STATE],
      handler: (delivery) => this.#answer(delivery),
    });
    await Promise.all([this.#acks.ready, this.#packets.ready]);
  }

  /**
   * Stops answering (the packet in hand is answered first), waits up to `ackDrainTimeoutMs`
   * for the acknowledgements of the commands it published, and stops reading them. Idempotent.
   */
  close(): Promise<void> {
    return this.#close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #answer(delivery: Delivery): Promise<void> {
    const packet = delivery.message as SystemStatePacket;
    if (packet.trainingRunId !== this.#o.trainingRunId) return;
    const { bus, controller } = this.#o;
    let commandId = '';
    let expected = '';
    try {
      const options = { signal: delivery.signal };
      const command =
        packet.epochEnd && controller.evaluateEpoch !== undefined
          ? await controller.evaluateEpoch(packet, options)
          : await controller.evaluateStep(packet, options);
      if (command !== undefined) {
        // Expected before the publish resolves: the inbox may acknowledge it first.
        expected = command.commandId;
        this.#expectAck(expected);
        await bus.publish(command, { correlationId: delivery.correlationId });
        commandId = command.commandId;
      }
    } catch (error) {
      if (expected !== '' && commandId === '') this.#unacknowledged.delete(expected);
      this.#warn(TamiyoEvent.CONTROL_FAILED, { packet_id: packet.packetId, error: errorMessage(error) });
    }
    // A packet published without waiting (no correlation id) gets no answer.
    if (delivery.correlationId === '') return;
    await bus.reply(delivery, create(ControlDecisionSchema, { trainingRunId: packet.trainingRunId, packetId: packet.packetId, commandId }));
  }

  /** Tells the controller the fate of one of its commands; anything else is left alone. */
  #acknowledged(ack: CommandAck): void {
    if (ack.trainingRunId !== this.#o.trainingRunId || ack.issuedBy !== this.#issuedBy) return;
    const fate = fateOfAck(ack);
    if (fate === undefined) return;
    try {
      this.#o.controller.commandOutcome?.(fate);
    } catch (error) {
      // Retrying would fail the same way; the command stays pending in the controller's count.
      this.#warn(TamiyoEvent.COMMAND_OUTCOME_FAILED, { command_id: ack.commandId, error: errorMessage(error) });
    }
    this.#unacknowledged.delete(ack.commandId);
    if (this.#unacknowledged.size === 0) this.#allAcknowledged?.();
  }

  /** Remembers a command whose acknowledgement close waits for (the oldest is forgotten past the cap). */
  #expectAck(commandId: string): void {
    this.#unacknowledged.add(commandId);
    if (this.#unacknowledged.size <= MAX_UNACKNOWLEDGED) return;
    const oldest = this.#unacknowledged.values().next().value;
    if (oldest !== undefined) this.#unacknowledged.delete(oldest);
  }

  /** Resolves when every published command is acknowledged, or after `ackDrainTimeoutMs`. */
  async #drainAcks(): Promise<void> {
    if (this.#unacknowledged.size === 0 || this.#ackDrainTimeoutMs === 0 || this.#acks === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve) => {
        this.#allAcknowledged = resolve;
        timer = setTimeout(resolve, this.#ackDrainTimeoutMs);
      });
    } finally {
      clearTimeout(timer);
      this.#allAcknowledged = undefined;
    }
  }

  #warn(description: TamiyoEvent, attributes: Record<string, string>): void {
    this.#o.telemetry.emit(
      buildTelemetryPacket({
        source: 'tamiyo',
        trainingRunId: this.#o.trainingRunId,
        clock: this.#clock,
        events: [{ description, level: TelemetryLevel.WARNING, attributes }],
      }),
    );
  }
}
