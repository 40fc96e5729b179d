/**
 * Alert drills on the real bus (the test run's Redis, a private key prefix): Nissa composed
 * by `createNissa`, each of the eight prototype rules fired by publishing its drill's
 * telemetry and cleared by its clear packets; the webhook's deliveries seen by a local HTTP
 * receiver; the alerts in `/metrics/summary` and the event store.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { buildAllDrills, createNissa, type Nissa } from '../../src/nissa/index.js';
import { openBusFromSettings, type Bus } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';

const SECRET = 'nissa-alert-drills-secret-0123456789abcdef';

async function until(condition: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('alert drills on the real bus', () => {
  let root: string;
  let prefix: string;
  let settings: EsperSettings;
  let bus: Bus;
  let nissa: Nissa;
  let receiver: Server;
  const received: { alert: string; kind: string }[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'esper-alert-drills-'));
    prefix = `drills-${randomBytes(4).toString('hex')}.`;
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        const event = JSON.parse(body) as { alert: string; kind: string };
        received.push({ alert: event.alert, kind: event.kind });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address() as { port: number };
    settings = loadSettings({
      env: {},
      overrides: {
        storage: { varDir: path.join(root, 'var') },
        oona: { busUrl: testRedisUrl(), streamPrefix: prefix },
        security: { leylineSecret: SECRET },
        nissa: { httpPort: 0, alertWebhookUrl: `http://127.0.0.1:${address.port}/alerts` },
      },
    });
    bus = openBusFromSettings(settings, { keyRing: KeyRing.fromSettings(settings.security), telemetry: new MemoryTelemetrySink() });
    nissa = await createNissa(settings, { bus, telemetry: new MemoryTelemetrySink() });
  });

  afterAll(async () => {
    await nissa.close();
    await bus.close();
    await new Promise((resolve) => receiver.close(resolve));
    const redis = new Redis(testRedisUrl());
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    await rm(root, { recursive: true, force: true });
  });

  it('fires each of the eight rules from its drill and clears it; the webhook receives every event', async () => {
    const drills = buildAllDrills({ settings: settings.nissa });
    expect(drills).toHaveLength(8);
    for (const drill of drills) {
      for (const packet of drill.fire) await bus.publish(packet);
      await until(() => nissa.alerts.isActive(drill.rule.name, drill.source));
      const summary = (await (await fetch(`${nissa.url}/metrics/summary`)).json()) as { alerts: Record<string, { active: unknown[] }> };
      expect(summary.alerts[drill.rule.name]?.active, drill.rule.name).toHaveLength(1);
      for (const packet of drill.clear) await bus.publish(packet);
      await until(() => !nissa.alerts.isActive(drill.rule.name, drill.source));
    }
    // One webhook delivery per event, fired then resolved, for every rule.
    await until(() => received.length >= 16);
    for (const drill of drills) {
      expect(
        received.filter((r) => r.alert === drill.rule.name).map((r) => r.kind),
        drill.rule.name,
      ).toEqual(['fired', 'resolved']);
    }
    // The Prometheus side sees the inputs, the live view the alerts.
    const metrics = await (await fetch(`${nissa.url}/metrics`)).text();
    // The last sample of the isolation drill (its clear packet) is under the rule's threshold of 3.
    const isolation = /^esper_kasmina_isolation_violations\{source="kasmina"\} (\S+)$/m.exec(metrics);
    expect(Number(isolation?.[1])).toBeLessThanOrEqual(3);
    expect(nissa.board.alerts().length).toBeGreaterThan(0);
  }, 60_000);
});
