/**
 * Simic's experience ingestion: field reports from Oona (group `simic`) and from a run's
 * field-report WAL, into the durable {@link ReplayBuffer}.
 *
 * Acknowledgement rule: the bus handler awaits the buffer's durable `add` before it
 * returns, and the bus acknowledges a delivery only once its handler resolved — so an
 * acknowledged report is always in the buffer. A crash before the add resolves leaves the
 * entry pending; it is redelivered (or reclaimed) and the buffer deduplicates it by
 * report id. (The prototype consumed without ack or dedupe, reference §15.1.)
 */
import { readFile } from 'node:fs/promises';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { closeOnce, ErrorCode, EsperError, FrameReader, optionChecks, ServiceState, systemClock, type Clock } from '../core/index.js';
import { BusMessageType, type FieldReport } from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import type { ReplayAddResult, ReplayBuffer } from './replay-buffer.js';
import { decodeFieldReport } from './replay-record.js';

/** Default consumer group of Simic's field-report subscription. */
export const SIMIC_CONSUMER_GROUP = 'simic';

/** Options of {@link SimicIngestor}. */
export interface SimicIngestorOptions {
  readonly buffer: Pick<ReplayBuffer, 'add'>;
  readonly bus: Pick<Bus, 'subscribe'>;
  /** Consumer name within the group (one per process). */
  readonly consumer: string;
  /** @default 'simic' */
  readonly group?: string;
  /** Where a newly created group starts. @default 'all' (every retained report) */
  readonly from?: 'new' | 'all';
  /**
   * Called after a report's add resolved, just before the handler returns (and the bus
   * acknowledges). For telemetry and tests.
   */
  readonly onIngested?: (report: FieldReport, result: ReplayAddResult) => void;
  /** Default receipt time of WAL reports without `issued_at`. @default systemClock */
  readonly clock?: Clock;
}

/** Lifecycle of a {@link SimicIngestor}. */
export type SimicIngestorState = 'created' | 'running' | 'stopped';

/** Counters of an ingestor (bus and WAL together). */
export interface SimicIngestorStats {
  readonly added: number;
  readonly duplicates: number;
  readonly expired: number;
}

/** What {@link SimicIngestor.ingestWal} read. */
export interface WalIngestResult extends SimicIngestorStats {
  /** Records read. */
  readonly records: number;
  /** Bytes of an incomplete last record left unread (a writer mid-append, or a crash). */
  readonly tornTailBytes: number;
}

/** Ingests field reports into a replay buffer (see module doc). */
export class SimicIngestor implements AsyncDisposable {
  readonly #options: SimicIngestorOptions;
  readonly #clock: Clock;
  readonly #state = new ServiceState<SimicIngestorState>('simic ingestor', 'created');
  #subscription: Subscription | undefined;
  #added = 0;
  #duplicates = 0;
  #expired = 0;
  readonly #close = closeOnce(async () => {
    this.#state.set('stopped');
    await this.#subscription?.close();
  });

  constructor(options: SimicIngestorOptions) {
    optionChecks('SimicIngestorOptions').nonEmptyString('consumer', options.consumer);
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** `created`, then `running` after {@link SimicIngestor.start}, `stopped` after close. */
  get state(): SimicIngestorState {
    return this.#state.current;
  }

  /**
   * Subscribes to FIELD_REPORT and resolves once the consumer group exists (nothing
   * published afterwards is missed).
   * @throws EsperError INVALID_STATE unless `created`.
   */
  async start(): Promise<void> {
    this.#state.require('created', 'start');
    this.#state.set('running');
    this.#subscription = this.#options.bus.subscribe({
      group: this.#options.group ?? SIMIC_CONSUMER_GROUP,
      consumer: this.#options.consumer,
      types: [BusMessageType.FIELD_REPORT],
      from: this.#options.from ?? 'all',
      handler: (delivery) => this.#handle(delivery),
    });
    await this.#subscription.ready;
  }

  async #handle(delivery: Delivery): Promise<void> {
    if (delivery.type !== BusMessageType.FIELD_REPORT) return;
    const report = delivery.message as FieldReport;
    // The publish time is the same on every redelivery, so a redelivered report's expiry
    // does not move.
    const result = await this.#options.buffer.add(report, { receivedAtMs: delivery.publishedAtMs });
    this.#count(result);
    this.#options.onIngested?.(report, result);
  }

  #count(result: ReplayAddResult): void {
    if (result === 'added') this.#added += 1;
    else if (result === 'duplicate') this.#duplicates += 1;
    else this.#expired += 1;
  }

  /**
   * Imports the field reports of a run's WAL (Tamiyo's field-report store, a `RecordLog`
   * of FieldReport records), reading the file without opening it for writing: a torn
   * tail is left alone and counted. Receipt time is the report's `issued_at` (else now).
   * @throws EsperError SIMIC_REPLAY_INVALID (a damaged or non-FieldReport record, naming
   *   the file and offset), RECORD_LOG_IO_FAILED (unreadable file).
   */
  async ingestWal(walPath: string): Promise<WalIngestResult> {
    const bytes = await readFile(walPath).catch((error: unknown) => {
      throw new EsperError(ErrorCode.RECORD_LOG_IO_FAILED, `field-report WAL ${walPath} cannot be read`, {
        cause: error,
        details: { path: walPath },
      });
    });
    const reader = new FrameReader(bytes);
    let records = 0;
    const counts = { added: 0, duplicate: 0, expired: 0 };
    for (;;) {
      const step = reader.next();
      if (step.kind === 'end') break;
      if (step.kind === 'torn-tail') return { records, ...stats(counts), tornTailBytes: step.droppedBytes };
      if (step.kind === 'corrupt') {
        throw new EsperError(ErrorCode.SIMIC_REPLAY_INVALID, `field-report WAL ${walPath}: damaged record at offset ${step.offset}`, {
          details: { path: walPath, offset: step.offset, defect: step.defect },
        });
      }
      const report = decodeFieldReport(step.payload, walPath, step.offset);
      records += 1;
      const receivedAtMs = report.issuedAt === undefined ? this.#clock.wallMs() : timestampMs(report.issuedAt);
      const result = await this.#options.buffer.add(report, { receivedAtMs });
      this.#count(result);
      counts[result] += 1;
    }
    return { records, ...stats(counts), tornTailBytes: 0 };
  }

  /** Counters since construction. */
  stats(): SimicIngestorStats {
    return { added: this.#added, duplicates: this.#duplicates, expired: this.#expired };
  }

  /** Closes the subscription (the handler in flight finishes and is acknowledged). Idempotent. */
  close(): Promise<void> {
    return this.#close();
  }

  /** Same as {@link SimicIngestor.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function stats(counts: { added: number; duplicate: number; expired: number }): SimicIngestorStats {
  return { added: counts.added, duplicates: counts.duplicate, expired: counts.expired };
}
