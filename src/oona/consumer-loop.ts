/**
 * One consumer of one group: the loop behind `StreamBus.subscribe` and the bus's reply
 * channel. Emergency stream first; every entry verified and decoded, then the kernel
 * guard and the duplicate window, then the handler, one at a time; acknowledgements once
 * per batch; retry or dead-letter after a failure; reclaim of entries left pending by dead
 * consumers. Delivery rules: Oona section of `docs/architecture.md`.
 *
 * Departures from the prototype (reference prototype-tolaria-oona-nissa-weatherlight §3.7):
 * reclaimed entries are handled (the prototype claimed and never read them), an entry
 * delivered more than `maxAttempts` times is dead-lettered instead of circling, rejected
 * entries are dead-lettered with their reason instead of dropped, and store failures back
 * off and are reported instead of ending the loop silently.
 *
 * All consumers of one group must subscribe with the same message types: entries of other
 * types are acknowledged and skipped for the whole group. On `close()` the handler in flight
 * gets up to `stopTimeoutMs`; the rest of the batch stays pending and is reclaimed.
 */
import { closeOnce, describeError, ErrorCode, EsperError, isEsperError, type Attributes, type CircuitBreaker } from '../core/index.js';
import { BusMessageType, TelemetryLevel } from '../leyline/index.js';
import type { HmacSigner } from '../security/index.js';
import type { Delivery, DeliveryHandler, Subscription } from './bus.js';
import { deadLetterFields, isSignatureReason, openEntry, sealEnvelope, withAttempt, type OpenedEntry } from './envelope.js';
import { DuplicateGuard } from './duplicate-guard.js';
import { KernelGuard } from './kernel-guard.js';
import { DeadLetterReason, OonaEvent } from './names.js';
import type { ResolvedStreamBusOptions } from './options.js';
import type { StreamEntry } from './stream-store.js';
import type { LogicalStream } from './streams.js';
import { Backoff, delay } from './waits.js';

/** Counters a consumer loop reports to its bus. */
export interface ConsumerStats {
  /** A handler resolved and its entry was acknowledged after `latencyMs` of handling. */
  handled(latencyMs: number): void;
  handlerFailed(): void;
  duplicateDropped(): void;
  retried(): void;
  deadLettered(reason: DeadLetterReason): void;
  reclaimed(): void;
}

/** What a consumer loop needs from its bus. */
export interface ConsumerHost {
  readonly options: ResolvedStreamBusOptions;
  readonly signer: HmacSigner;
  /** The bus's consume breaker, shared by its loops; it counts store outages only. */
  readonly breaker: CircuitBreaker;
  readonly stats: ConsumerStats;
  logicalOf(physical: string): LogicalStream;
  /** Emits one bus telemetry event; never throws. */
  emit(description: OonaEvent, level: TelemetryLevel, attributes: Attributes): void;
}

/** Options of one {@link ConsumerLoop}. */
export interface ConsumerLoopOptions {
  readonly group: string;
  readonly consumer: string;
  /** Physical streams read, the emergency stream first. */
  readonly streams: readonly string[];
  /** Where the group starts when it is created. */
  readonly start: '$' | '0';
  /** Whether this loop handles a verified entry; others are acknowledged and skipped. */
  readonly accepts: (entry: OpenedEntry) => boolean;
  readonly handler: DeliveryHandler;
  /** Closes the loop like `close()`. */
  readonly signal?: AbortSignal;
}

/** Initial and largest wait of a loop after a store error, in ms. */
const STORE_BACKOFF_INITIAL_MS = 20;
const STORE_BACKOFF_MAX_MS = 1_000;

/** The consumer loop (see module doc). */
export class ConsumerLoop implements Subscription {
  readonly ready: Promise<void>;
  /** Settles (never rejects) when the loop has ended. */
  readonly done: Promise<void>;
  readonly group: string;
  readonly consumer: string;
  readonly #host: ConsumerHost;
  readonly #options: ResolvedStreamBusOptions;
  readonly #accepts: (entry: OpenedEntry) => boolean;
  readonly #handler: DeliveryHandler;
  readonly #streams: string[];
  readonly #emergency: string;
  readonly #guard: KernelGuard;
  readonly #duplicates: DuplicateGuard;
  readonly #stop = new AbortController();
  /** Acknowledgements of finished entries not yet sent, by physical stream. */
  readonly #pendingAcks = new Map<string, string[]>();
  readonly #backoff = new Backoff(STORE_BACKOFF_INITIAL_MS, STORE_BACKOFF_MAX_MS);
  readonly #userSignal: AbortSignal | undefined;
  readonly #onUserAbort = (): void => void this.close();
  #readController = new AbortController();
  #start: '$' | '0';
  #needsSetup = true;
  #isReady = false;
  #resolveReady!: () => void;
  #rejectReady!: (error: Error) => void;
  #nextReclaimAt = 0;
  #inOutage = false;
  readonly #close = closeOnce(() => this.#closeLoop());

  constructor(host: ConsumerHost, options: ConsumerLoopOptions) {
    this.#host = host;
    this.#options = host.options;
    this.group = options.group;
    this.consumer = options.consumer;
    this.#accepts = options.accepts;
    this.#handler = options.handler;
    this.#streams = [...options.streams];
    this.#emergency = host.options.streams.emergency;
    this.#start = options.start;
    this.#guard = new KernelGuard({
      freshnessWindowMs: host.options.kernelFreshnessWindowMs,
      cacheSize: host.options.kernelNonceCacheSize,
      clock: host.options.clock,
    });
    this.#duplicates = new DuplicateGuard(host.options.duplicateWindowSize);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A subscription stopped before it was ready rejects `ready`; nobody has to await it.
    this.ready.catch(() => undefined);
    this.#userSignal = options.signal;
    this.#userSignal?.addEventListener('abort', this.#onUserAbort, { once: true });
    if (this.#userSignal?.aborted === true) this.#stop.abort();
    this.done = this.#run().catch((error: unknown) => {
      this.#host.emit(OonaEvent.CONSUMER_ERROR, TelemetryLevel.ERROR, {
        ...this.#where(),
        error: describeError(error),
        detail: 'consumer loop ended unexpectedly',
      });
    });
  }

  /** Physical streams read now. */
  get streams(): readonly string[] {
    return this.#streams;
  }

  /** Whether `close()` was called or the loop ended. */
  get closing(): boolean {
    return this.#stop.signal.aborted;
  }

  /**
   * Stops reading and waits up to `stopTimeoutMs` for the handler in flight. Idempotent:
   * every call returns the first call's promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #closeLoop(): Promise<void> {
    this.#stop.abort();
    this.#readController.abort();
    // Bounded: a handler that ignores its signal cannot hold the bus's `close()` forever;
    // its entry stays pending and is reclaimed (at-least-once).
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#options.stopTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([this.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Creates the group on `streams` (from new entries) and adds them to the streams read,
   * waking a blocked read so the next one includes them.
   */
  async addStreams(streams: readonly string[]): Promise<void> {
    for (const stream of streams) {
      if (this.#streams.includes(stream)) continue;
      await this.#call(() => this.#options.store.ensureGroup(stream, this.group, '$'));
      if (!this.#streams.includes(stream)) this.#streams.push(stream);
      this.#readController.abort();
    }
  }

  async #run(): Promise<void> {
    try {
      while (!this.closing) {
        try {
          if (this.#needsSetup) await this.#setup();
          await this.#iterate();
          this.#recovered();
        } catch (error) {
          if (this.closing) {
            // The entry in hand stays pending and is reclaimed later; say why if unexpected.
            if (!isTransient(error) && !isEsperError(error, ErrorCode.OONA_CLOSED)) this.#reportFailure(error);
            return;
          }
          if (isEsperError(error, ErrorCode.OONA_CLOSED)) {
            this.#host.emit(OonaEvent.CONSUMER_ERROR, TelemetryLevel.ERROR, {
              ...this.#where(),
              error: describeError(error),
              detail: 'the store is closed; the subscription stops',
            });
            return;
          }
          this.#reportFailure(error);
          await delay(this.#backoff.next(), [this.#stop.signal]);
        }
      }
    } finally {
      this.#stop.abort();
      this.#userSignal?.removeEventListener('abort', this.#onUserAbort);
      if (!this.#isReady) {
        this.#rejectReady(new EsperError(ErrorCode.OONA_CLOSED, `subscription ${this.group}/${this.consumer} stopped before it was ready`));
      }
    }
  }

  async #setup(): Promise<void> {
    for (const stream of [...this.#streams]) {
      await this.#call(() => this.#options.store.ensureGroup(stream, this.group, this.#start));
    }
    this.#needsSetup = false;
    if (!this.#isReady) {
      this.#isReady = true;
      this.#resolveReady();
    }
  }

  /**
   * One read and its handling. The read covers every stream (emergency included), and its
   * emergency entries are handled first. When they filled the read's count more may be
   * waiting: those are drained (non-blocking emergency-only reads) before the other
   * entries of the read are handled, so the emergency stream still goes first. Reading the
   * emergency stream on its own before every read would cost a round trip per batch.
   */
  async #iterate(): Promise<void> {
    if (performance.now() >= this.#nextReclaimAt) await this.#reclaim();
    if (this.closing) return;
    const batch = await this.#read(this.#streams, this.#options.blockMs);
    const emergency = this.#emergency;
    if (this.#streams.length === 1 || batch.length === 0) {
      await this.#handleAll(batch);
      return;
    }
    const urgent = batch.filter((entry) => entry.stream === emergency);
    if (urgent.length === 0) {
      await this.#handleAll(batch);
      return;
    }
    await this.#handleAll(urgent);
    let more = urgent.length >= this.#options.readCount;
    while (more && !this.closing) {
      const next = await this.#read([emergency], 0);
      await this.#handleAll(next);
      more = next.length >= this.#options.readCount;
    }
    await this.#handleAll(batch.filter((entry) => entry.stream !== emergency));
  }

  async #read(streams: readonly string[], blockMs: number): Promise<StreamEntry[]> {
    const controller = new AbortController();
    this.#readController = controller;
    if (this.closing) return [];
    const { store, readCount } = this.#options;
    const list = [...streams];
    return this.#call(() => store.readGroup(this.group, this.consumer, list, { count: readCount, blockMs, signal: controller.signal }));
  }

  async #reclaim(): Promise<void> {
    const { store, reclaimIdleMs, readCount, reclaimIntervalMs } = this.#options;
    let again = false;
    for (const stream of [...this.#streams]) {
      if (this.closing) return;
      const claimed = await this.#call(() => store.autoClaim(stream, this.group, this.consumer, reclaimIdleMs, readCount));
      if (claimed.length >= readCount) again = true;
      try {
        for (const entry of claimed) {
          if (this.closing) return;
          this.#host.stats.reclaimed();
          await this.#handle(entry);
        }
      } finally {
        await this.#flushAcks();
      }
    }
    // A full batch means more may be waiting: look again on the next turn.
    this.#nextReclaimAt = again ? 0 : performance.now() + reclaimIntervalMs;
  }

  async #handleAll(entries: readonly StreamEntry[]): Promise<void> {
    try {
      for (const entry of entries) {
        if (this.closing) return;
        await this.#handle(entry);
      }
    } finally {
      await this.#flushAcks();
    }
  }

  async #handle(entry: StreamEntry): Promise<void> {
    const { maxAttempts } = this.#options;
    if (entry.deliveryCount > maxAttempts) {
      await this.#deadLetter(
        entry,
        DeadLetterReason.DELIVERY_EXHAUSTED,
        `delivered ${entry.deliveryCount} times without acknowledgement; max ${maxAttempts}`,
      );
      return;
    }
    const opened = openEntry(this.#host.signer, entry.fields);
    if (!opened.ok) {
      await this.#deadLetter(entry, opened.reason, opened.detail);
      return;
    }
    if (!this.#accepts(opened)) {
      this.#ack(entry);
      return;
    }
    const { envelope } = opened;
    const seen = { messageId: envelope.messageId, attempt: envelope.attempt, entryKey: `${entry.stream}\u0000${entry.id}` };
    const verdict = this.#guard.check({ type: opened.type, message: opened.message, ...seen });
    if (!verdict.accepted) {
      await this.#deadLetter(entry, verdict.reason, verdict.detail, opened);
      return;
    }
    if (this.#duplicates.isDuplicate(seen)) {
      this.#ack(entry);
      this.#host.stats.duplicateDropped();
      this.#host.emit(OonaEvent.DUPLICATE_DROPPED, TelemetryLevel.WARNING, {
        ...this.#where(),
        message_id: envelope.messageId,
        message_type: BusMessageType[opened.type] ?? String(opened.type),
        attempt: envelope.attempt,
        stream: this.#host.logicalOf(entry.stream),
        entry_id: entry.id,
      });
      return;
    }
    const delivery: Delivery = {
      type: opened.type,
      message: opened.message,
      priority: envelope.priority,
      messageId: envelope.messageId,
      correlationId: envelope.correlationId,
      trainingRunId: envelope.trainingRunId,
      publishedAtMs: opened.publishedAtMs,
      attempt: envelope.attempt,
      stream: this.#host.logicalOf(entry.stream),
      entryId: entry.id,
      signal: this.#stop.signal,
    };
    const clock = this.#options.clock;
    const startedMs = clock.monotonicMs();
    try {
      // A handler that returns no promise is done when it returns: no extra turn to wait.
      const result = this.#handler(delivery);
      if (isPromiseLike(result)) await result;
    } catch (error) {
      if (this.closing) {
        // Most likely the handler gave up because the subscription is stopping (its
        // signal aborted): leave the entry pending, unacknowledged and without a spent
        // attempt; it is redelivered by reclaim.
        return;
      }
      this.#host.stats.handlerFailed();
      await this.#retryOrDeadLetter(entry, opened, error);
      return;
    }
    const latencyMs = clock.monotonicMs() - startedMs;
    this.#ack(entry);
    this.#host.stats.handled(latencyMs);
  }

  async #retryOrDeadLetter(entry: StreamEntry, opened: OpenedEntry, error: unknown): Promise<void> {
    const attempt = opened.envelope.attempt;
    if (attempt >= this.#options.maxAttempts) {
      await this.#deadLetter(entry, DeadLetterReason.HANDLER_FAILED, describeError(error), opened);
      return;
    }
    const { store, keyRing } = this.#options;
    const copy = sealEnvelope(this.#host.signer, keyRing.activeKeyId, withAttempt(opened.envelope, attempt + 1));
    // Copy first, then acknowledge: a crash in between repeats the message, never loses it.
    await this.#durable(() => store.add(entry.stream, copy));
    this.#host.stats.retried();
    this.#ack(entry);
  }

  async #deadLetter(entry: StreamEntry, reason: DeadLetterReason, detail: string, opened?: OpenedEntry): Promise<void> {
    const { store, streams } = this.#options;
    const fields = deadLetterFields(entry.fields, {
      reason,
      detail,
      from: entry.stream,
      id: entry.id,
      group: this.group,
    });
    await this.#durable(() => store.add(streams.deadLetter, fields));
    this.#host.stats.deadLettered(reason);
    this.#ack(entry);
    const attributes: Record<string, string | number> = {
      ...this.#where(),
      reason,
      detail,
      stream: this.#host.logicalOf(entry.stream),
      entry_id: entry.id,
      delivery_count: entry.deliveryCount,
    };
    if (opened !== undefined) {
      attributes['message_id'] = opened.envelope.messageId;
      attributes['message_type'] = BusMessageType[opened.type] ?? String(opened.type);
      attributes['attempt'] = opened.envelope.attempt;
    }
    if (isSignatureReason(reason)) {
      this.#host.emit(OonaEvent.SIGNATURE_INVALID, TelemetryLevel.CRITICAL, attributes);
    } else if (reason === DeadLetterReason.MALFORMED || reason === DeadLetterReason.UNKNOWN_TYPE) {
      this.#host.emit(OonaEvent.MESSAGE_MALFORMED, TelemetryLevel.ERROR, attributes);
    } else if (reason === DeadLetterReason.KERNEL_STALE || reason === DeadLetterReason.KERNEL_REPLAY) {
      this.#host.emit(OonaEvent.KERNEL_MESSAGE_REJECTED, TelemetryLevel.WARNING, attributes);
    } else {
      this.#host.emit(OonaEvent.DEAD_LETTER, TelemetryLevel.ERROR, attributes);
    }
  }

  /**
   * Queues the acknowledgement of an entry whose handling is finished (handled, skipped,
   * retried or dead-lettered — the copy is already stored). Acknowledgements are sent in
   * one XACK per stream when the batch in hand is done (`#flushAcks`):
   * a crash before that repeats those messages, never loses them.
   */
  #ack(entry: StreamEntry): void {
    const ids = this.#pendingAcks.get(entry.stream);
    if (ids === undefined) this.#pendingAcks.set(entry.stream, [entry.id]);
    else ids.push(entry.id);
  }

  /** Sends the queued acknowledgements, one XACK per stream. */
  async #flushAcks(): Promise<void> {
    const batches = [...this.#pendingAcks];
    this.#pendingAcks.clear();
    for (const [stream, ids] of batches) {
      await this.#durable(() => this.#options.store.ack(stream, this.group, ids));
    }
  }

  /** A store call through the consume breaker, which counts only store outages. */
  #call<T>(operation: () => Promise<T>): Promise<T> {
    return this.#host.breaker.run(operation);
  }

  /**
   * A write that must land for the entry in hand (retry copy, dead-letter, ack): retried
   * through store outages with backoff while the loop runs; after `close()` it gets one
   * last try, and on failure the entry stays pending and is reclaimed later.
   */
  async #durable<T>(operation: () => Promise<T>): Promise<T> {
    for (;;) {
      const lastTry = this.closing;
      try {
        const result = await this.#call(operation);
        this.#recovered();
        return result;
      } catch (error) {
        if (!isTransient(error) || lastTry) throw error;
        this.#reportFailure(error);
        await delay(this.#backoff.next(), [this.#stop.signal]);
      }
    }
  }

  #reportFailure(error: unknown): void {
    if (isEsperError(error, ErrorCode.OONA_NO_GROUP)) {
      // The stream or group vanished (stream deleted, Redis restarted without its data):
      // create it again from the start of what is there, so nothing retained is skipped.
      this.#needsSetup = true;
      this.#start = '0';
      this.#host.emit(OonaEvent.CONSUMER_ERROR, TelemetryLevel.WARNING, {
        ...this.#where(),
        error: describeError(error),
        detail: 'group missing; creating it again',
      });
      return;
    }
    if (isTransient(error)) {
      if (!this.#inOutage) {
        this.#inOutage = true;
        this.#host.emit(OonaEvent.STORE_UNAVAILABLE, TelemetryLevel.WARNING, {
          ...this.#where(),
          error: describeError(error),
        });
      }
      return;
    }
    this.#host.emit(OonaEvent.CONSUMER_ERROR, TelemetryLevel.ERROR, { ...this.#where(), error: describeError(error) });
  }

  #recovered(): void {
    this.#inOutage = false;
    this.#backoff.reset();
  }

  #where(): Record<string, string> {
    return { group: this.group, consumer: this.consumer };
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Store errors a loop waits out: the store is unreachable or the breaker is open. */
export function isTransient(error: unknown): boolean {
  return isEsperError(error, ErrorCode.OONA_STORE_UNAVAILABLE) || isEsperError(error, ErrorCode.BREAKER_OPEN);
}
