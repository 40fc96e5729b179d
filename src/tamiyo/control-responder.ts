/**
 * Tamiyo's side of the control loop over Oona. Every `SystemStatePacket` of the run goes to
 * the controller (`evaluateEpoch` for an epoch's packet, `evaluateStep` otherwise); a
 * command it issues is published on the command stream, where the run's command inbox
 * receives it, and then a `ControlDecision` naming it (or none) is published as the reply to
 * the packet. A trainer in lockstep waits for that reply and takes the named command from
 * its inbox; one that does not wait reads its inbox each step. A controller call that throws
 * is answered "no change" and reported (WARNING `control_failed`): retrying the same packet
 * would fail the same way while the trainer waits.
 */
import { create } from '@bufbuild/protobuf';
import { buildTelemetryPacket, closeOnce, errorMessage, ServiceState, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import { BusMessageType, ControlDecisionSchema, TelemetryLevel, type SystemStatePacket } from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import type { Controller } from '../tolaria/index.js';
import { TamiyoEvent } from './names.js';

/** Options of {@link ControlResponder}. */
export interface ControlResponderOptions {
  /** Packets are read from it and commands and decisions published on it; not closed here. */
  readonly bus: Bus;
  /** Decides (Tamiyo's service). */
  readonly controller: Controller;
  /** Only this run's packets are answered. */
  readonly trainingRunId: string;
  /** Receives WARNING `control_failed`. */
  readonly telemetry: TelemetrySink;
  /** @default 'tamiyo' */
  readonly consumer?: string;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Answers a run's state packets on the bus with the controller's decisions. */
export class ControlResponder implements AsyncDisposable {
  readonly #o: ControlResponderOptions;
  readonly #clock: Clock;
  #subscription: Subscription | undefined;
  readonly #state = new ServiceState<'created' | 'running' | 'closed'>('tamiyo control responder', 'created');
  readonly #close = closeOnce(async () => {
    this.#state.set('closed');
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close();
  });

  constructor(options: ControlResponderOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Consumer group of the run (one Tamiyo answers each packet once). */
  get group(): string {
    return `tamiyo-${this.#o.trainingRunId}`;
  }

  /** Subscribes; resolves once packets published from now on will be answered. */
  async start(): Promise<void> {
    this.#state.transition('created', 'running', 'start');
    this.#subscription = this.#o.bus.subscribe({
      group: this.group,
      consumer: this.#o.consumer ?? 'tamiyo',
      types: [BusMessageType.SYSTEM_STATE],
      handler: (delivery) => this.#answer(delivery),
    });
    await this.#subscription.ready;
  }

  /** Stops answering (the packet in hand is answered first). Idempotent. */
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
    try {
      const options = { signal: delivery.signal };
      const command =
        packet.epochEnd && controller.evaluateEpoch !== undefined
          ? await controller.evaluateEpoch(packet, options)
          : await controller.evaluateStep(packet, options);
      if (command !== undefined) {
        await bus.publish(command, { correlationId: delivery.correlationId });
        commandId = command.commandId;
      }
    } catch (error) {
      this.#o.telemetry.emit(
        buildTelemetryPacket({
          source: 'tamiyo',
          trainingRunId: this.#o.trainingRunId,
          clock: this.#clock,
          events: [
            {
              description: TamiyoEvent.CONTROL_FAILED,
              level: TelemetryLevel.WARNING,
              attributes: { packet_id: packet.packetId, error: errorMessage(error) },
            },
          ],
        }),
      );
    }
    // A packet published without waiting (no correlation id) gets no answer.
    if (delivery.correlationId === '') return;
    await bus.reply(delivery, create(ControlDecisionSchema, { trainingRunId: packet.trainingRunId, packetId: packet.packetId, commandId }));
  }
}
