/**
 * A {@link TelemetrySink} that publishes every packet on the bus, so a service in its own
 * process is seen where the fleet's telemetry is read (Nissa, an operator's subscriber).
 * The bus routes each packet by the priority it carries — never re-derived (RC1): CRITICAL
 * and HIGH go to the emergency stream, LOW and NORMAL may be shed under back-pressure.
 * `emit` does not wait; {@link BusTelemetrySink.flush} awaits what is in flight.
 */
import { describeError, type TelemetrySink } from '../core/index.js';
import type { TelemetryPacket } from '../leyline/index.js';
import type { Bus } from './bus.js';

/** Counters of a {@link BusTelemetrySink}. */
export interface BusTelemetrySinkStats {
  readonly published: number;
  /** Shed by the bus under back-pressure (LOW and NORMAL only). */
  readonly shed: number;
  /** Publishes that failed (the store unreachable past the publish deadline, the bus closed). */
  readonly failed: number;
}

/** Publishes telemetry on a bus; see the module comment. */
export class BusTelemetrySink implements TelemetrySink {
  readonly #bus: Bus;
  readonly #onFailure: ((packet: TelemetryPacket, error: unknown) => void) | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #published = 0;
  #shed = 0;
  #failed = 0;

  /**
   * @param onFailure told of each packet the bus could not take (e.g. to write it to stderr
   *   instead); the sink never throws from `emit`.
   */
  constructor(bus: Bus, onFailure?: (packet: TelemetryPacket, error: unknown) => void) {
    this.#bus = bus;
    this.#onFailure = onFailure;
  }

  emit(packet: TelemetryPacket): void {
    const publish = this.#bus.publish(packet).then(
      (receipt) => {
        if (receipt.status === 'published') this.#published += 1;
        else this.#shed += 1;
      },
      (error: unknown) => {
        this.#failed += 1;
        this.#onFailure?.(packet, error);
      },
    );
    this.#inFlight.add(publish);
    void publish.finally(() => this.#inFlight.delete(publish));
  }

  /** Resolves once every packet emitted so far is published, shed or failed. */
  async flush(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  stats(): BusTelemetrySinkStats {
    return { published: this.#published, shed: this.#shed, failed: this.#failed };
  }
}

/** One line for a telemetry packet the bus could not take. */
export function describeUnpublished(packet: TelemetryPacket, error: unknown): string {
  return `telemetry packet ${packet.packetId} of ${packet.sourceSubsystem} not published: ${describeError(error)}`;
}
