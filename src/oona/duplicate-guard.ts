/**
 * Drops a second copy of a message a subscription already handled: an entry whose
 * envelope `message_id` was seen within the last `windowSize` messages, with an attempt no
 * higher and in another entry (a byte-identical re-XADD, or a retry copy written twice by
 * a consumer that crashed between copy and acknowledgement). The bus's own retries
 * (same message id, higher attempt) and redeliveries of the same entry after a reclaim
 * (at-least-once) pass. What a copy does past the window is the table in
 * `docs/architecture.md` (Oona, "Duplicates").
 */
import { optionChecks } from '../core/index.js';

/** One delivery as the guard sees it. */
export interface DuplicateGuardInput {
  /** Envelope `message_id` (stable across retries). */
  readonly messageId: string;
  /** Envelope `attempt`. */
  readonly attempt: number;
  /** Identifies the stream entry (physical stream and entry id). */
  readonly entryKey: string;
}

interface Seen {
  readonly attempt: number;
  readonly entryKey: string;
}

/** The message-id window of one subscription (see module doc). */
export class DuplicateGuard {
  readonly #windowSize: number;
  /** message id → what was last accepted; insertion order = age. */
  readonly #seen = new Map<string, Seen>();

  /** @param windowSize message ids remembered, integer ≥ 1 */
  constructor(windowSize: number) {
    this.#windowSize = optionChecks('DuplicateGuard').integer('windowSize', windowSize, { min: 1 });
  }

  /** Message ids remembered now. */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * Whether `input` is a copy of a message already accepted; when it is not, remembers it
   * (forgetting the oldest id past the window).
   */
  isDuplicate(input: DuplicateGuardInput): boolean {
    const seen = this.#seen.get(input.messageId);
    if (seen !== undefined) {
      if (input.attempt <= seen.attempt && input.entryKey !== seen.entryKey) return true;
      this.#seen.delete(input.messageId);
    }
    this.#seen.set(input.messageId, { attempt: Math.max(input.attempt, seen?.attempt ?? 0), entryKey: input.entryKey });
    if (this.#seen.size > this.#windowSize) this.#seen.delete(this.#seen.keys().next().value as string);
    return false;
  }
}
