/**
 * The built-in webhook notifier: POSTs each alert event as JSON to one URL, in order, in the
 * background. Each attempt has a deadline; transient failures (network, timeout, 408, 429,
 * 5xx) are retried with doubling delays; the queue is bounded; what fails or is dropped is
 * counted and reported. `notify` never waits, so evaluation never blocks on the receiver.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { closeOnce, errorMessage, MAX_TIMER_MS, optionChecks } from '../../core/index.js';
import type { AlertEvent, AlertNotifier } from './event.js';

/** Options of {@link WebhookNotifier}. */
export interface WebhookNotifierOptions {
  /** `http:` or `https:` URL receiving the POSTs. Treated as a secret (it often holds a token). */
  readonly url: string;
  /** Deadline of one POST attempt. @default 2000 */
  readonly timeoutMs?: number;
  /** Further attempts after a transient failure. @default 2 */
  readonly retries?: number;
  /** Delay before the first retry; it doubles each retry. @default 200 */
  readonly retryDelayMs?: number;
  /** Events waiting for delivery before new ones are dropped (and counted). @default 256 */
  readonly maxPending?: number;
  /** Told about every event given up on (after its retries, or dropped). */
  readonly onFailure?: (failure: WebhookFailure) => void;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** An event the webhook did not deliver. */
export interface WebhookFailure {
  readonly event: AlertEvent;
  /** `failed` after its attempts, `dropped` (queue full or notifier closed). */
  readonly outcome: 'failed' | 'dropped';
  readonly attempts: number;
  readonly error: string;
}

/** Counters of a {@link WebhookNotifier}. */
export interface WebhookStats {
  readonly delivered: number;
  readonly failed: number;
  readonly dropped: number;
  /** Attempts beyond the first. */
  readonly retries: number;
  readonly pending: number;
  readonly lastError?: string;
}

/** The JSON body of one POST. */
export interface WebhookPayload extends AlertEvent {
  /** Payload format version. */
  readonly version: 1;
  /** `atMs` as RFC 3339. */
  readonly at: string;
}

interface ResolvedWebhookOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly maxPending: number;
}

/** Validates {@link WebhookNotifierOptions} and applies the defaults. */
export function resolveWebhookNotifierOptions(options: WebhookNotifierOptions): ResolvedWebhookOptions {
  const check = optionChecks('WebhookNotifierOptions');
  let protocol: string;
  try {
    protocol = new URL(options.url).protocol;
  } catch {
    protocol = '';
  }
  // The URL is a secret: never shown in the error.
  if (protocol !== 'http:' && protocol !== 'https:') check.fail('url', 'an http: or https: URL', '[redacted]');
  return {
    url: options.url,
    timeoutMs: check.integer('timeoutMs', options.timeoutMs ?? 2_000, { min: 1, max: MAX_TIMER_MS }),
    retries: check.integer('retries', options.retries ?? 2, { min: 0, max: 10 }),
    retryDelayMs: check.integer('retryDelayMs', options.retryDelayMs ?? 200, { min: 0, max: MAX_TIMER_MS }),
    maxPending: check.integer('maxPending', options.maxPending ?? 256, { min: 1 }),
  };
}

class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`webhook answered HTTP ${status}`);
  }
}

const transient = (error: unknown): boolean =>
  !(error instanceof HttpStatusError) || error.status === 408 || error.status === 429 || error.status >= 500;

/** POSTs alert events to a webhook; see the module comment. */
export class WebhookNotifier implements AlertNotifier {
  readonly name = 'webhook';
  readonly #options: ResolvedWebhookOptions;
  readonly #fetch: typeof fetch;
  readonly #onFailure: WebhookNotifierOptions['onFailure'];
  readonly #queue: AlertEvent[] = [];
  readonly #abort = new AbortController();
  #pump: Promise<void> | undefined;
  #closed = false;
  #inFlight = false;
  #stats: { delivered: number; failed: number; dropped: number; retries: number; lastError?: string } = {
    delivered: 0,
    failed: 0,
    dropped: 0,
    retries: 0,
  };

  constructor(options: WebhookNotifierOptions) {
    this.#options = resolveWebhookNotifierOptions(options);
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#onFailure = options.onFailure;
  }

  notify(event: AlertEvent): void {
    if (this.#closed || this.#queue.length >= this.#options.maxPending) {
      this.#give(event, 'dropped', 0, this.#closed ? 'notifier closed' : 'queue full');
      return;
    }
    this.#queue.push(event);
    this.#pump ??= this.#drain()
      .catch((error: unknown) => {
        this.#stats.lastError = errorMessage(error);
      })
      .finally(() => {
        this.#pump = undefined;
      });
  }

  /** Counters since construction. */
  stats(): WebhookStats {
    return { ...this.#stats, pending: this.#queue.length + (this.#inFlight ? 1 : 0) };
  }

  /** Resolves when every queued event has been delivered or given up on. */
  async flush(): Promise<void> {
    while (this.#pump !== undefined) await this.#pump;
  }

  /**
   * Stops accepting events, aborts the attempt in flight and drops what is queued (counted).
   * Call {@link flush} first to deliver the queue. Idempotent.
   */
  readonly close = closeOnce(async (): Promise<void> => {
    this.#closed = true;
    this.#abort.abort();
    await this.flush();
  });

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #drain(): Promise<void> {
    for (let event = this.#queue.shift(); event !== undefined; event = this.#queue.shift()) {
      if (this.#closed) {
        this.#give(event, 'dropped', 0, 'notifier closed');
        continue;
      }
      this.#inFlight = true;
      try {
        await this.#deliver(event);
      } finally {
        this.#inFlight = false;
      }
    }
  }

  async #deliver(event: AlertEvent): Promise<void> {
    const body = JSON.stringify({ version: 1, ...event, at: new Date(event.atMs).toISOString() } satisfies WebhookPayload);
    let attempts = 0;
    for (;;) {
      attempts += 1;
      try {
        await this.#post(body);
        this.#stats.delivered += 1;
        return;
      } catch (error) {
        const message = this.#closed ? 'notifier closed' : errorMessage(error);
        if (this.#closed || !transient(error) || attempts > this.#options.retries) {
          this.#give(event, 'failed', attempts, message);
          return;
        }
        this.#stats.retries += 1;
        try {
          await sleep(this.#options.retryDelayMs * 2 ** (attempts - 1), undefined, { signal: this.#abort.signal });
        } catch {
          this.#give(event, 'failed', attempts, 'notifier closed');
          return;
        }
      }
    }
  }

  async #post(body: string): Promise<void> {
    // A plain controller and timer rather than AbortSignal.any/timeout: composite signals
    // can be garbage-collected before they fire on Node 20, leaving a hung request hung.
    const attempt = new AbortController();
    const abort = (): void => attempt.abort(this.#abort.signal.reason);
    const timer = setTimeout(
      () => attempt.abort(new Error(`webhook timeout after ${this.#options.timeoutMs} ms`)),
      this.#options.timeoutMs,
    );
    this.#abort.signal.addEventListener('abort', abort, { once: true });
    try {
      const response = await this.#fetch(this.#options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: attempt.signal,
      });
      // Read the body so the connection is released (and its time counts in the deadline).
      await response.arrayBuffer();
      if (!response.ok) throw new HttpStatusError(response.status);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', abort);
    }
  }

  #give(event: AlertEvent, outcome: WebhookFailure['outcome'], attempts: number, error: string): void {
    this.#stats[outcome] += 1;
    this.#stats.lastError = error;
    try {
      this.#onFailure?.({ event, outcome, attempts, error });
    } catch {
      // A failing failure callback must not stop the queue.
    }
  }
}
