/**
 * Nissa's HTTP server (Fastify): `/metrics` (Prometheus text exposition), `/healthz`,
 * `/metrics/summary` (SLOs and active alerts, JSON), and whatever routes the caller adds
 * (the live view).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { closeOnce } from '../core/index.js';
import type { NissaMetrics } from './metrics.js';

/** Options of {@link startNissaHttp}. */
export interface NissaHttpOptions {
  /** Address to bind (`127.0.0.1` keeps it on the machine). */
  readonly host: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  readonly metrics: NissaMetrics;
  /** The body of `/metrics/summary`. @default `{}` */
  readonly summary?: () => unknown;
  /** Extra fields of `/healthz` besides `status: 'ok'`. */
  readonly health?: () => Record<string, unknown>;
  /** Registers more routes (the live view) before the server listens. */
  readonly routes?: (app: FastifyInstance) => void | Promise<void>;
}

/** A listening Nissa HTTP server. */
export interface NissaHttp {
  /** `http://host:port`. */
  readonly url: string;
  readonly app: FastifyInstance;
  /** Stops listening and closes open connections (live streams too). Idempotent. */
  close(): Promise<void>;
}

/** Starts the server; resolves once it listens. */
export async function startNissaHttp(options: NissaHttpOptions): Promise<NissaHttp> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', options.metrics.contentType);
    return options.metrics.expose();
  });
  app.get('/healthz', () => ({ status: 'ok', ...(options.health?.() ?? {}) }));
  app.get('/metrics/summary', () => options.summary?.() ?? {});
  await options.routes?.(app);
  const url = await app.listen({ host: options.host, port: options.port });
  return { url, app, close: closeOnce(() => app.close()) };
}
