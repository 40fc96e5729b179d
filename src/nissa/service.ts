/**
 * Nissa's ingest: one consumer group (`nissa`) on the bus reading telemetry, state packets,
 * field reports, commands, acknowledgements and run announcements of every run, into
 * {@link NissaMetrics} and then to every listener (the live view's board, the alert engine,
 * the event store).
 *
 * Priority end to end: the bus reads the emergency stream first on every read, so CRITICAL
 * and HIGH packets are handled before anything behind them; a packet's priority is the one
 * it carries (Nissa never recomputes it). When Nissa lags (a message older than
 * `overloadLagMs` when read), it samples what may be sampled — step state packets and
 * telemetry below WARNING, keeping one in `sampleEvery` — and counts the rest in
 * `nissa_ingest_dropped_total`; epoch packets, WARNING-and-above telemetry, field reports,
 * commands, acknowledgements and announcements are always ingested.
 */
import { buildTelemetryPacket, closeOnce, describeError, type TelemetrySink } from '../core/index.js';
import {
  BusMessageType,
  MessagePriority,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandAck,
  type FieldReport,
  type RunAnnouncement,
  type SystemStatePacket,
  type TelemetryPacket,
} from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { NissaMetrics } from './metrics.js';

/** The message types Nissa reads. */
export const NISSA_TYPES: readonly BusMessageType[] = Object.freeze([
  BusMessageType.TELEMETRY,
  BusMessageType.SYSTEM_STATE,
  BusMessageType.FIELD_REPORT,
  BusMessageType.ADAPTATION_COMMAND,
  BusMessageType.COMMAND_ACK,
  BusMessageType.RUN_ANNOUNCEMENT,
]);

/** Consumer group of Nissa on the bus. */
export const NISSA_GROUP = 'nissa';

/** Told of every delivery Nissa ingests (after the metrics). Must not throw; must be quick. */
export type NissaListener = (delivery: Delivery) => void;

/** Options of {@link NissaService}. */
export interface NissaServiceOptions {
  readonly bus: Bus;
  readonly metrics?: NissaMetrics;
  /** Where a failing listener is reported (ERROR `nissa_listener_failed`). */
  readonly telemetry?: TelemetrySink;
  /** @default `nissa-<pid>` */
  readonly consumer?: string;
  /** A message read this long after it was published means Nissa lags, in ms. @default 5000 */
  readonly overloadLagMs?: number;
  /** While lagging, one sampleable message in this many is kept. @default 10 */
  readonly sampleEvery?: number;
}

/** Counters of a {@link NissaService}. */
export interface NissaServiceStats {
  readonly ingested: number;
  readonly dropped: number;
  readonly listenerFailures: number;
  /** Ingested messages per type name. */
  readonly byType: Readonly<Record<string, number>>;
}

const TYPE_NAMES: Partial<Record<BusMessageType, string>> = {
  [BusMessageType.TELEMETRY]: 'telemetry',
  [BusMessageType.SYSTEM_STATE]: 'system_state',
  [BusMessageType.FIELD_REPORT]: 'field_report',
  [BusMessageType.ADAPTATION_COMMAND]: 'command',
  [BusMessageType.COMMAND_ACK]: 'command_ack',
  [BusMessageType.RUN_ANNOUNCEMENT]: 'run_announcement',
};

/** Nissa's consumer on the bus; see the module comment. */
export class NissaService {
  readonly metrics: NissaMetrics;
  readonly #o: NissaServiceOptions;
  readonly #listeners: NissaListener[] = [];
  readonly #byType: Record<string, number> = {};
  #subscription: Subscription | undefined;
  #ingested = 0;
  #dropped = 0;
  #listenerFailures = 0;
  /** Sampleable messages seen while lagging, per type (one in `sampleEvery` is kept). */
  readonly #sampled: Record<string, number> = {};

  constructor(options: NissaServiceOptions) {
    this.#o = options;
    this.metrics = options.metrics ?? new NissaMetrics();
  }

  /** Adds a listener (before or after `start`). */
  addListener(listener: NissaListener): void {
    this.#listeners.push(listener);
  }

  /** Subscribes; resolves once everything published from now on will be read. */
  async start(): Promise<void> {
    this.#subscription = this.#o.bus.subscribe({
      group: NISSA_GROUP,
      consumer: this.#o.consumer ?? `nissa-${process.pid}`,
      types: NISSA_TYPES,
      handler: (delivery) => this.ingest(delivery),
    });
    await this.#subscription.ready;
  }

  /** Ingests one delivery (the subscription's handler; tests call it directly). */
  ingest(delivery: Delivery, nowMs: number = Date.now()): void {
    const started = performance.now();
    const type = TYPE_NAMES[delivery.type] ?? 'other';
    const lagMs = nowMs - delivery.publishedAtMs;
    if (lagMs > (this.#o.overloadLagMs ?? 5_000) && this.#sampleable(delivery)) {
      const seen = (this.#sampled[type] ?? 0) + 1;
      this.#sampled[type] = seen;
      if (seen % (this.#o.sampleEvery ?? 10) !== 0) {
        this.#dropped += 1;
        this.metrics.dropped(type);
        return;
      }
    }
    switch (delivery.type) {
      case BusMessageType.TELEMETRY:
        this.metrics.telemetry(delivery.message as TelemetryPacket);
        break;
      case BusMessageType.SYSTEM_STATE:
        this.metrics.state(delivery.message as SystemStatePacket);
        break;
      case BusMessageType.FIELD_REPORT:
        this.metrics.fieldReport(delivery.message as FieldReport);
        break;
      case BusMessageType.ADAPTATION_COMMAND:
        this.metrics.command(delivery.message as AdaptationCommand);
        break;
      case BusMessageType.COMMAND_ACK:
        this.metrics.commandAck(delivery.message as CommandAck);
        break;
      case BusMessageType.RUN_ANNOUNCEMENT:
        this.metrics.runSeen((delivery.message as RunAnnouncement).trainingRunId);
        break;
      default:
        break;
    }
    for (const listener of this.#listeners) {
      try {
        listener(delivery);
      } catch (error) {
        this.#listenerFailures += 1;
        this.#o.telemetry?.emit(listenerFailed(error));
      }
    }
    this.#ingested += 1;
    this.#byType[type] = (this.#byType[type] ?? 0) + 1;
    this.metrics.observe(type, performance.now() - started, lagMs);
  }

  stats(): NissaServiceStats {
    return { ingested: this.#ingested, dropped: this.#dropped, listenerFailures: this.#listenerFailures, byType: { ...this.#byType } };
  }

  /** Stops reading (the message in hand finishes). Idempotent. */
  readonly close = closeOnce(async () => {
    await this.#subscription?.close();
  });

  /** What may be sampled out while lagging: step packets and telemetry below WARNING, never HIGH/CRITICAL. */
  #sampleable(delivery: Delivery): boolean {
    if (delivery.priority === MessagePriority.HIGH || delivery.priority === MessagePriority.CRITICAL) return false;
    if (delivery.type === BusMessageType.SYSTEM_STATE) return !(delivery.message as SystemStatePacket).epochEnd;
    if (delivery.type === BusMessageType.TELEMETRY) return (delivery.message as TelemetryPacket).level < TelemetryLevel.WARNING;
    return false;
  }
}

function listenerFailed(error: unknown): TelemetryPacket {
  return buildTelemetryPacket({
    source: 'nissa',
    events: [{ description: 'nissa_listener_failed', level: TelemetryLevel.ERROR, attributes: { error: describeError(error) } }],
  });
}
