/**
 * One Server-Sent Events client of the live view. It starts with a snapshot (`event:
 * snapshot`), then sends coalesced deltas (`event: delta`) at most once per
 * `minIntervalMs`, each holding everything that changed since the previous one, so a slow
 * or throttled client never falls behind by more than one message. Comment lines keep the
 * connection alive through proxies. A client whose socket is full is skipped until it
 * drains; since deltas are taken from a cursor, nothing is lost.
 */
import type { ServerResponse } from 'node:http';
import type { RunBoard } from './board.js';
import type { FleetDelta, RunDelta } from './view-types.js';

/** Timing of a {@link LiveStream}. */
export interface LiveStreamTiming {
  /** Minimum time between two deltas to the client, in ms. */
  readonly minIntervalMs: number;
  /** Time between keep-alive comments, in ms. */
  readonly heartbeatMs: number;
  /** Reconnection delay the browser is told to use, in ms. */
  readonly retryMs: number;
}

/** The payload of `snapshot` and `delta` events. */
export interface LiveMessage {
  readonly fleet: FleetDelta;
  /**
   * The selected run's changes (a stream opened without `run` follows the first run it
   * sees); absent when no run is selected or it is not on the board.
   */
  readonly run?: RunDelta;
}

/** A live SSE connection; {@link LiveStream.close} ends it (idempotent). */
export class LiveStream {
  readonly #raw: ServerResponse;
  readonly #board: RunBoard;
  /** The selected run; without one the stream follows the first run it sees (most recently seen first). */
  #runId: string | undefined;
  readonly #timing: LiveStreamTiming;
  readonly #onClose: (stream: LiveStream) => void;
  #cursor = 0;
  /** Whether the selected run was on the board at the last send (else the next send is full). */
  #runSent = false;
  #dirty = false;
  #blocked = false;
  #closed = false;
  #lastSendMs = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Deltas sent (snapshot included). */
  messagesSent = 0;

  constructor(raw: ServerResponse, board: RunBoard, runId: string | undefined, timing: LiveStreamTiming, onClose: (s: LiveStream) => void) {
    this.#raw = raw;
    this.#board = board;
    this.#runId = runId;
    this.#timing = timing;
    this.#onClose = onClose;
  }

  /** Writes the headers and the snapshot, then follows the board. */
  start(): void {
    this.#raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // The connection ends with the stream: a kept-alive socket would hold up the server's close.
      connection: 'close',
      'x-accel-buffering': 'no',
    });
    this.#raw.on('close', () => this.close({ clientGone: true }));
    this.#raw.on('drain', () => {
      this.#blocked = false;
      if (this.#dirty) this.#schedule();
    });
    this.#raw.write(`retry: ${this.#timing.retryMs}\n\n`);
    this.#send('snapshot');
    this.#unsubscribe = this.#board.subscribe(() => {
      this.#dirty = true;
      this.#schedule();
    });
    this.#heartbeat = setInterval(() => {
      if (!this.#blocked) this.#raw.write(': ping\n\n');
    }, this.#timing.heartbeatMs);
    this.#heartbeat.unref();
  }

  /**
   * Ends the stream and releases its timers and subscription. When the client went away
   * the socket is destroyed: a half-open one would otherwise hold up the server's close.
   */
  close(options: { readonly clientGone?: boolean } = {}): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    clearTimeout(this.#flushTimer);
    clearInterval(this.#heartbeat);
    if (options.clientGone === true) this.#raw.destroy();
    else if (!this.#raw.writableEnded) this.#raw.end();
    this.#onClose(this);
  }

  #schedule(): void {
    if (this.#closed || this.#blocked || this.#flushTimer !== undefined) return;
    const waitMs = Math.max(0, this.#lastSendMs + this.#timing.minIntervalMs - Date.now());
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      if (this.#closed || this.#blocked || !this.#dirty) return;
      this.#send('delta');
    }, waitMs);
    this.#flushTimer.unref();
  }

  #send(event: 'snapshot' | 'delta'): void {
    const since = event === 'snapshot' ? 0 : this.#cursor;
    const fleet = this.#board.fleetDelta(since);
    let run: RunDelta | undefined;
    // A client that named no run follows the most recently seen one, without reconnecting.
    if (this.#runId === undefined) this.#runId = fleet.runs[0]?.runId;
    if (this.#runId !== undefined) {
      run = this.#board.runDelta(this.#runId, this.#runSent ? since : 0);
      this.#runSent = run !== undefined;
    }
    this.#cursor = fleet.seq;
    this.#dirty = false;
    this.#lastSendMs = Date.now();
    const message: LiveMessage = { fleet, ...(run === undefined ? {} : { run }) };
    this.messagesSent += 1;
    const ok = this.#raw.write(`event: ${event}\ndata: ${JSON.stringify(message)}\n\n`);
    if (!ok) this.#blocked = true;
  }
}
