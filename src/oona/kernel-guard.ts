/**
 * Freshness and replay guard for kernel prefetch traffic, one per subscription (reference
 * prototype-tolaria-oona-nissa-weatherlight §3.8): a KERNEL_PREFETCH_REQUEST older than the
 * freshness window by its `issued_at` (unset counts as stale) is stale; a request, or a
 * READY/ERROR answer, whose `request_id` this subscription already saw is a replay. Seen
 * ids live in two FIFO caches of `cacheSize` (requests, answers).
 *
 * Departures from the prototype: stale and replayed entries are dead-lettered
 * (`kernel_stale`, `kernel_replay`) and counted instead of dropped silently; the bus's own
 * retries (same message id, higher attempt) and redeliveries of the same entry pass.
 */
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { optionChecks, systemClock, type Clock } from '../core/index.js';
import { BusMessageType, type BusMessage } from '../leyline/index.js';
import { DeadLetterReason } from './names.js';

/** Options of {@link KernelGuard}. */
export interface KernelGuardOptions {
  /** Kernel prefetch requests older than this are stale, in ms. Integer ≥ 1. */
  readonly freshnessWindowMs: number;
  /** Request ids remembered per cache (requests, answers). Integer ≥ 1. */
  readonly cacheSize: number;
  /** Wall time source compared with `issued_at`. @default systemClock */
  readonly clock?: Clock;
}

/** One delivery as the guard sees it. */
export interface KernelGuardInput {
  readonly type: BusMessageType;
  readonly message: BusMessage;
  /** Envelope `message_id` (stable across retries). */
  readonly messageId: string;
  /** Envelope `attempt`. */
  readonly attempt: number;
  /** Identifies the stream entry (physical stream and entry id). */
  readonly entryKey: string;
}

/** The guard's answer. */
export type KernelVerdict =
  | { readonly accepted: true }
  | {
      readonly accepted: false;
      readonly reason: typeof DeadLetterReason.KERNEL_STALE | typeof DeadLetterReason.KERNEL_REPLAY;
      readonly detail: string;
    };

/** Counters of a {@link KernelGuard}. */
export interface KernelGuardSnapshot {
  readonly staleRejected: number;
  readonly replayRejected: number;
  readonly requestIdsHeld: number;
  readonly answerIdsHeld: number;
}

interface Seen {
  readonly messageId: string;
  readonly attempt: number;
  readonly entryKey: string;
  readonly issuedAtMs: number;
}

const ACCEPTED: KernelVerdict = Object.freeze({ accepted: true });

/** The kernel freshness/replay guard of one subscription (see module doc). */
export class KernelGuard {
  readonly #windowMs: number;
  readonly #cacheSize: number;
  readonly #clock: Clock;
  readonly #requests = new Map<string, Seen>();
  readonly #answers = new Map<string, Seen>();
  #staleRejected = 0;
  #replayRejected = 0;

  constructor(options: KernelGuardOptions) {
    const check = optionChecks('KernelGuard');
    this.#windowMs = check.integer('freshnessWindowMs', options.freshnessWindowMs, { min: 1 });
    this.#cacheSize = check.integer('cacheSize', options.cacheSize, { min: 1 });
    this.#clock = options.clock ?? systemClock;
  }

  /** Checks one delivery and, when accepted, remembers its request id. */
  check(input: KernelGuardInput): KernelVerdict {
    const { message } = input;
    switch (input.type) {
      case BusMessageType.KERNEL_PREFETCH_REQUEST: {
        if (message.$typeName !== 'esper.leyline.v1.KernelPrefetchRequest') return ACCEPTED;
        const issuedAtMs = message.issuedAt === undefined ? 0 : timestampMs(message.issuedAt);
        const oldestFreshMs = this.#clock.wallMs() - this.#windowMs;
        this.#purgeStaleRequests(oldestFreshMs);
        if (issuedAtMs <= 0) return this.#stale(`request ${message.requestId} has no issued_at`);
        if (issuedAtMs < oldestFreshMs) {
          return this.#stale(
            `request ${message.requestId} issued ${Math.round(oldestFreshMs + this.#windowMs - issuedAtMs)} ms ago; window ${this.#windowMs} ms`,
          );
        }
        return this.#remember(this.#requests, message.requestId, input, issuedAtMs);
      }
      case BusMessageType.KERNEL_PREFETCH_READY:
      case BusMessageType.KERNEL_PREFETCH_ERROR: {
        if (message.$typeName !== 'esper.leyline.v1.KernelArtifactReady' && message.$typeName !== 'esper.leyline.v1.KernelArtifactError') {
          return ACCEPTED;
        }
        return this.#remember(this.#answers, message.requestId, input, 0);
      }
      default:
        return ACCEPTED;
    }
  }

  /** Counters and cache sizes. */
  snapshot(): KernelGuardSnapshot {
    return {
      staleRejected: this.#staleRejected,
      replayRejected: this.#replayRejected,
      requestIdsHeld: this.#requests.size,
      answerIdsHeld: this.#answers.size,
    };
  }

  #remember(cache: Map<string, Seen>, requestId: string, input: KernelGuardInput, issuedAtMs: number): KernelVerdict {
    // Without a request id there is nothing to recognise a copy by.
    if (requestId.length === 0) return ACCEPTED;
    const seen = cache.get(requestId);
    if (seen !== undefined) {
      const retry = seen.messageId === input.messageId && input.attempt > seen.attempt;
      const redelivery = seen.entryKey === input.entryKey;
      if (!retry && !redelivery) {
        this.#replayRejected += 1;
        return {
          accepted: false,
          reason: DeadLetterReason.KERNEL_REPLAY,
          detail: `request id ${requestId} already seen (message ${seen.messageId}, attempt ${seen.attempt})`,
        };
      }
      cache.delete(requestId);
    }
    cache.set(requestId, {
      messageId: input.messageId,
      attempt: Math.max(input.attempt, seen?.attempt ?? 0),
      entryKey: input.entryKey,
      issuedAtMs,
    });
    while (cache.size > this.#cacheSize) {
      const oldest = cache.keys().next().value as string;
      cache.delete(oldest);
    }
    return ACCEPTED;
  }

  #purgeStaleRequests(oldestFreshMs: number): void {
    for (const [requestId, seen] of this.#requests) {
      if (seen.issuedAtMs >= oldestFreshMs) return;
      this.#requests.delete(requestId);
    }
  }

  #stale(detail: string): KernelVerdict {
    this.#staleRejected += 1;
    return { accepted: false, reason: DeadLetterReason.KERNEL_STALE, detail };
  }
}
