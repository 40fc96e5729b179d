/**
 * The live view's HTTP routes on Nissa's Fastify app:
 *
 * - `GET /` the page; `GET /assets/*` its script, stylesheet and uPlot (from npm);
 * - `GET /api/runs` the fleet (summaries, alerts, Weatherlight's mode);
 * - `GET /api/runs/:id` one run's full state (404 for a run not on the board);
 * - `GET /api/stream[?run=<id>]` Server-Sent Events: a `snapshot`, then coalesced `delta`s
 *   (without `run`, the stream follows the most recently seen run once there is one).
 *
 * Open streams are ended in Fastify's `preClose` hook, so `app.close()` does not wait on them.
 */
import type { FastifyInstance } from 'fastify';
import type { RunBoard } from './board.js';
import { loadViewAssets } from './assets.js';
import { LiveStream } from './live-stream.js';
import { LIVE_VIEW_HTML } from './page.js';
import type { AlertEvent, ModeView, RunSummary } from './view-types.js';

/** Options of {@link registerViewRoutes}. */
export interface ViewRoutesOptions {
  /** Most messages per second sent to one stream client (deltas are coalesced). @default 10 */
  readonly maxMessagesPerSecond?: number;
  /** Time between keep-alive comments on a stream, in ms. @default 15000 */
  readonly heartbeatMs?: number;
  /** Open streams at once; more are answered 503. @default 64 */
  readonly maxStreams?: number;
}

/** The defaults of {@link ViewRoutesOptions}. */
export const VIEW_ROUTES_DEFAULTS: Required<ViewRoutesOptions> = { maxMessagesPerSecond: 10, heartbeatMs: 15_000, maxStreams: 64 };

/** The body of `GET /api/runs`. */
export interface FleetView {
  readonly seq: number;
  readonly runs: readonly RunSummary[];
  readonly alerts: readonly AlertEvent[];
  readonly mode: ModeView;
}

/** What {@link registerViewRoutes} returns: the open streams, for tests and stats. */
export interface ViewRoutes {
  /** Streams open now. */
  readonly openStreams: () => number;
}

/** Registers the live view's routes on `app` (before it listens). */
export function registerViewRoutes(app: FastifyInstance, board: RunBoard, options: ViewRoutesOptions = {}): ViewRoutes {
  const resolved = { ...VIEW_ROUTES_DEFAULTS, ...options };
  for (const [field, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`ViewRoutesOptions.${field} must be positive, got ${String(value)}`);
  }
  const timing = { minIntervalMs: 1_000 / resolved.maxMessagesPerSecond, heartbeatMs: resolved.heartbeatMs, retryMs: 2_000 };
  const streams = new Set<LiveStream>();

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(LIVE_VIEW_HTML));
  for (const asset of loadViewAssets()) {
    app.get(`/assets/${asset.name}`, async (_request, reply) =>
      reply.type(asset.contentType).header('cache-control', 'no-cache').send(asset.body),
    );
  }

  app.get('/api/runs', async (): Promise<FleetView> => ({
    seq: board.seq,
    runs: board.runs(),
    alerts: board.alerts(),
    mode: board.currentMode(),
  }));

  app.get<{ Params: { id: string } }>('/api/runs/:id', async (request, reply) => {
    const run = board.run(request.params.id);
    if (run === undefined) return reply.code(404).send({ error: 'unknown run', runId: request.params.id });
    return run;
  });

  app.get<{ Querystring: { run?: string } }>('/api/stream', (request, reply) => {
    if (streams.size >= resolved.maxStreams) {
      void reply.code(503).send({ error: 'too many live view streams', maxStreams: resolved.maxStreams });
      return;
    }
    const runId = typeof request.query.run === 'string' && request.query.run.length > 0 ? request.query.run : undefined;
    reply.hijack();
    const stream = new LiveStream(reply.raw, board, runId, timing, (s) => streams.delete(s));
    streams.add(stream);
    stream.start();
  });

  app.addHook('preClose', async () => {
    for (const stream of [...streams]) stream.close();
  });

  return { openStreams: () => streams.size };
}
