import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AlertEngine,
  alertInputsFromPacket,
  AlertRuleName,
  buildDrill,
  WebhookNotifier,
  type WebhookFailure,
} from '../../src/nissa/index.js';

interface Receiver {
  readonly url: string;
  readonly bodies: unknown[];
  readonly server: Server;
}

const servers: Server[] = [];

/** A real HTTP receiver on 127.0.0.1, port 0; `respond` decides each answer. */
async function receiver(respond: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<Receiver> {
  const bodies: unknown[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      n += 1;
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      respond(n, req, res);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/esper`, bodies, server };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

function fireDrill(engine: AlertEngine, rule: string): void {
  const drill = buildDrill(rule);
  for (const p of [...drill.fire, ...drill.clear]) engine.evaluate(alertInputsFromPacket(p), p.sourceSubsystem);
}

describe('WebhookNotifier', () => {
  it('POSTs fired then resolved as JSON to a local receiver', async () => {
    const hook = await receiver((_n, req, res) => {
      expect(req.method).toBe('POST');
      expect(req.headers['content-type']).toBe('application/json');
      res.writeHead(204).end();
    });
    const webhook = new WebhookNotifier({ url: hook.url });
    const engine = new AlertEngine({ notifiers: [webhook] });
    fireDrill(engine, AlertRuleName.ISOLATION_VIOLATION);
    await webhook.flush();
    expect(hook.bodies).toEqual([
      expect.objectContaining({
        version: 1,
        kind: 'fired',
        alert: 'kasmina_isolation_violation',
        source: 'kasmina',
        routes: ['pagerduty'],
        severity: 'critical',
        value: 6,
      }),
      expect.objectContaining({ version: 1, kind: 'resolved', alert: 'kasmina_isolation_violation', value: 1.5 }),
    ]);
    expect((hook.bodies[0] as { at: string }).at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(webhook.stats()).toMatchObject({ delivered: 2, failed: 0, dropped: 0, retries: 0, pending: 0 });
    await webhook.close();
  });

  it('retries a 503 and delivers on the next attempt', async () => {
    const hook = await receiver((n, _req, res) => res.writeHead(n === 1 ? 503 : 200).end('ok'));
    const webhook = new WebhookNotifier({ url: hook.url, retryDelayMs: 10 });
    const engine = new AlertEngine({ notifiers: [webhook] });
    fireDrill(engine, AlertRuleName.COMPILE_RETRY_HIGH);
    await webhook.flush();
    expect(hook.bodies).toHaveLength(3);
    expect(webhook.stats()).toMatchObject({ delivered: 2, failed: 0, retries: 1 });
    await webhook.close();
  });

  it('gives up after its retries on a receiver that hangs, counting and reporting, without blocking evaluation', async () => {
    const hook = await receiver(() => {
      /* never answers */
    });
    const failures: WebhookFailure[] = [];
    const webhook = new WebhookNotifier({
      url: hook.url,
      timeoutMs: 100,
      retries: 1,
      retryDelayMs: 10,
      onFailure: (f) => failures.push(f),
    });
    const engine = new AlertEngine({ notifiers: [webhook] });
    const started = performance.now();
    fireDrill(engine, AlertRuleName.BSDS_CRITICAL);
    expect(performance.now() - started).toBeLessThan(250); // evaluation returned before any 100 ms attempt ended
    expect(webhook.stats().pending).toBeGreaterThan(0);
    await webhook.flush();
    expect(failures.map((f) => [f.outcome, f.event.kind, f.attempts])).toEqual([
      ['failed', 'fired', 2],
      ['failed', 'resolved', 2],
    ]);
    expect(failures[0]?.error).toMatch(/timeout|abort/i);
    expect(webhook.stats()).toMatchObject({ delivered: 0, failed: 2, retries: 2 });
    expect(hook.bodies).toHaveLength(4);
    await webhook.close();
  });

  it('does not retry a 400, and counts a refused connection as failed', async () => {
    const hook = await receiver((_n, _req, res) => res.writeHead(400).end());
    const webhook = new WebhookNotifier({ url: hook.url, retryDelayMs: 1 });
    const engine = new AlertEngine({ notifiers: [webhook] });
    fireDrill(engine, AlertRuleName.ISOLATION_VIOLATION);
    await webhook.flush();
    expect(hook.bodies).toHaveLength(2);
    expect(webhook.stats()).toMatchObject({ failed: 2, retries: 0, lastError: 'webhook answered HTTP 400' });

    const port = (hook.server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => hook.server.close(() => resolve()));
    const refused = new WebhookNotifier({ url: `http://127.0.0.1:${port}/`, retries: 1, retryDelayMs: 1 });
    new AlertEngine({ notifiers: [refused] }).evaluate(new Map([['kasmina.isolation.violations', 9]]), 'kasmina');
    await refused.flush();
    expect(refused.stats()).toMatchObject({ failed: 1, retries: 1 });
  });

  it('drops past maxPending and after close, counting both', async () => {
    const hook = await receiver((_n, _req, res) => setTimeout(() => res.writeHead(200).end(), 50));
    const webhook = new WebhookNotifier({ url: hook.url, maxPending: 1 });
    const engine = new AlertEngine({ notifiers: [webhook] });
    for (const rule of [AlertRuleName.ISOLATION_VIOLATION, AlertRuleName.COMPILE_RETRY_HIGH]) fireDrill(engine, rule);
    await webhook.flush();
    await webhook.close();
    // One in flight, one queued, two dropped; after close the engine's event is dropped too.
    expect(webhook.stats()).toMatchObject({ delivered: 2, dropped: 2 });
    engine.evaluate(new Map([['kasmina.isolation.violations', 9]]), 'kasmina');
    expect(webhook.stats()).toMatchObject({ delivered: 2, dropped: 3, lastError: 'notifier closed' });
  });

  it('refuses a URL that is not http(s) without showing it', () => {
    expect(() => new WebhookNotifier({ url: 'ftp://user:token@example.test/' })).toThrow(
      /url must be an http: or https: URL, got "\[redacted\]"/,
    );
  });
});
