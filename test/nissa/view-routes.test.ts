import http, { type IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerViewRoutes, RunBoard, type LiveMessage } from '../../src/nissa/index.js';
import { statePacket, syntheticRun } from './view-fixtures.js';

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

interface ReceivedEvent {
  readonly event: string;
  readonly data: LiveMessage;
  readonly atMs: number;
}

/** Opens `url` with its own socket (no pooled keep-alive connection to hold the server's close up). */
function openStream(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, resolve);
    request.on('error', reject);
  });
}

/** Reads SSE events from `url` until `until` says stop, then hangs up. */
async function readEvents(
  url: string,
  until: (events: readonly ReceivedEvent[]) => boolean,
  timeoutMs = 5_000,
): Promise<{ events: ReceivedEvent[]; comments: number }> {
  const response = await openStream(url);
  expect(response.headers['content-type']).toContain('text/event-stream');
  const events: ReceivedEvent[] = [];
  let comments = 0;
  let buffer = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stream: no end condition within ${timeoutMs} ms`)), timeoutMs);
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          if (block.startsWith(':')) comments += 1;
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) as LiveMessage, atMs: Date.now() });
        }
        if (until(events)) {
          clearTimeout(timer);
          resolve();
        }
      });
      response.on('end', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    response.destroy();
  }
  return { events, comments };
}

async function start(
  board: RunBoard,
  options: Parameters<typeof registerViewRoutes>[2] = {},
): Promise<{ base: string; openStreams: () => number }> {
  app = Fastify();
  const routes = registerViewRoutes(app, board, options);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { base: `http://127.0.0.1:${address.port}`, openStreams: routes.openStreams };
}

describe('live view routes', () => {
  it('serves the page, its own assets and uPlot from the npm package', async () => {
    app = Fastify();
    registerViewRoutes(app, new RunBoard());
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    for (const src of page.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
      const asset = await app.inject({ url: src[1] ?? '' });
      expect(asset.statusCode, src[1]).toBe(200);
      expect(asset.body.length).toBeGreaterThan(100);
    }
    expect(page.body).not.toMatch(/https?:\/\//);
  });

  it('lists runs and answers a run by id, 404 for an unknown one', async () => {
    const board = new RunBoard();
    for (const d of syntheticRun('r1', 3, 4)) board.ingest(d.type, d.message, 1_000);
    app = Fastify();
    registerViewRoutes(app, board);
    const list = await app.inject({ url: '/api/runs' });
    expect(list.json()).toMatchObject({ runs: [{ runId: 'r1', phase: 'ended' }], alerts: [], mode: { mode: 'unknown' } });
    const run = await app.inject({ url: '/api/runs/r1' });
    expect(run.json()).toMatchObject({ runId: 'r1', full: true, seeds: [{ seedId: 'seed-1' }] });
    const missing = await app.inject({ url: '/api/runs/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'unknown run', runId: 'nope' });
  });

  it('streams a snapshot then coalesced deltas at no more than the configured rate, with heartbeats', async () => {
    const board = new RunBoard();
    const { base } = await start(board, { maxMessagesPerSecond: 10, heartbeatMs: 100 });
    const feeding = (async () => {
      await new Promise((r) => setTimeout(r, 100));
      // 500 deliveries in ~500 ms: the client must get far fewer messages.
      for (let step = 1; step <= 500; step += 1) {
        board.ingest(statePacket('s', { step, epoch: 0 }).type, statePacket('s', { step, epoch: 0 }).message, Date.now());
        if (step % 10 === 0) await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const { events, comments } = await readEvents(`${base}/api/stream?run=s`, (evs) =>
      evs.some((e) => e.data.run?.summary?.globalStep === 500),
    );
    await feeding;
    expect(events[0]?.event).toBe('snapshot');
    expect(events.slice(1).every((e) => e.event === 'delta')).toBe(true);
    const deltas = events.slice(1);
    const spanMs = (deltas.at(-1)?.atMs ?? 0) - (deltas[0]?.atMs ?? 0);
    expect(deltas.length).toBeLessThanOrEqual(Math.ceil(spanMs / 100) + 2);
    expect(deltas.length).toBeLessThan(100);
    // Every step's point reached the client across the deltas, in order.
    const steps = deltas.flatMap((e) => {
      const curve = e.data.run?.curves.stepLoss;
      return curve === undefined ? [] : curve.points.map((p) => p[0]);
    });
    expect(steps).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(comments).toBeGreaterThan(0);
  });

  it('closes a stream when its client goes, and ends open streams when the app closes', async () => {
    const board = new RunBoard();
    const { base, openStreams } = await start(board);
    await readEvents(`${base}/api/stream`, (evs) => evs.length >= 1);
    await expect.poll(openStreams).toBe(0);
    const response = await openStream(`${base}/api/stream`);
    expect(response.statusCode).toBe(200);
    await expect.poll(openStreams).toBe(1);
    const started = Date.now();
    await app?.close();
    app = undefined;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(openStreams()).toBe(0);
    response.destroy();
  });

  it('answers 503 past the stream limit', async () => {
    const { base, openStreams } = await start(new RunBoard(), { maxStreams: 1 });
    const open = await openStream(`${base}/api/stream`);
    await expect.poll(openStreams).toBe(1);
    const refused = await openStream(`${base}/api/stream`);
    expect(refused.statusCode).toBe(503);
    refused.resume();
    open.destroy();
    await expect.poll(openStreams).toBe(0);
  });
});
