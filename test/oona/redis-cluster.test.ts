/**
 * Oona on a real Redis Cluster: three private masters started by this file
 * (`fixtures/redis-cluster.ts`), the whole bus conformance suite (publish → subscribe →
 * ack, retries, dead letters, request/reply, reclaim, back-pressure, close) over a
 * `redis+cluster://` store, and the cluster-specific rules: every stream of a bus hashes to
 * one slot, a read across slots fails loudly, an aborted blocking read ends promptly, and
 * `openBusFromSettings` takes the cluster URL. Keys are not deleted one by one: the cluster
 * is killed and its dir removed after the file.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { BusMessageType } from '../../src/leyline/index.js';
import { openBusFromSettings } from '../../src/oona/from-settings.js';
import { RedisStreamStore } from '../../src/oona/redis-stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { pingRedis } from '../../src/oona/redis-ping.js';
import { describeBusConformance } from './bus.conformance.js';
import { testKeyRing } from './fixtures/bus-options.js';
import { PrivateRedisCluster } from './fixtures/redis-cluster.js';
import { body } from './stream-store.conformance.js';
import { waitFor } from './fixtures/waits.js';
import { telemetryPacket } from './fixtures/messages.js';

let cluster: PrivateRedisCluster;
let clusterStartMs = 0;

beforeAll(async () => {
  const started = performance.now();
  cluster = await PrivateRedisCluster.start();
  clusterStartMs = performance.now() - started;
}, 30_000);

afterAll(async () => {
  console.info(`redis cluster: 3 masters ready in ${clusterStartMs.toFixed(0)} ms`);
  await cluster?.dispose();
});

describeBusConformance(
  'StreamBus on a Redis Cluster',
  async (options) => {
    const store = new RedisStreamStore({ url: cluster.url });
    const bus = new StreamBus({ ...options, store, streamPrefix: `esper-test:${randomUUID()}:` });
    return { bus, store, dispose: () => store.close() };
  },
  { timeoutMs: 20_000 },
);

describe.sequential('RedisStreamStore on a Redis Cluster', { timeout: 20_000 }, () => {
  it('keeps every stream of a bus in one hash slot, served by one master', async () => {
    const store = new RedisStreamStore({ url: cluster.url });
    const bus = new StreamBus({ store, keyRing: testKeyRing(), telemetry: new MemoryTelemetrySink(), streamPrefix: 'slot-check:' });
    try {
      const names = Object.values(bus.options.streams);
      const slots = new Set<string>();
      for (const name of names) slots.add((await cluster.cli(cluster.ports[0] as number, 'CLUSTER', 'KEYSLOT', name)).trim());
      expect(slots.size).toBe(1);
      for (const name of names) await store.add(name, body('x'));
      const holders: number[] = [];
      for (const port of cluster.ports) {
        const count = Number((await cluster.cli(port, 'CLUSTER', 'COUNTKEYSINSLOT', [...slots][0] as string)).trim());
        if (count > 0) holders.push(count);
      }
      // Other tests' buses share the slot too (same `{oona}` tag): one master holds them all.
      expect(holders).toHaveLength(1);
      expect(holders[0]).toBeGreaterThanOrEqual(names.length);
    } finally {
      await bus.close();
      await store.close();
    }
  });

  it('fails a read across two hash slots with the terminal OONA_STORE_FAILED (CROSSSLOT), not a retry', async () => {
    const store = new RedisStreamStore({ url: cluster.url });
    try {
      const [a, b] = [`{a-${randomUUID()}}.s`, `{b-${randomUUID()}}.s`];
      await store.ensureGroup(a, 'g', '0');
      await store.ensureGroup(b, 'g', '0');
      const error = await store.readGroup('g', 'c', [a, b], { count: 1, blockMs: 0 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isEsperError(error, ErrorCode.OONA_STORE_FAILED)).toBe(true);
      expect((error as { details: Record<string, unknown> }).details['redisCode']).toBe('CROSSSLOT');
    } finally {
      await store.close();
    }
  });

  it('ends an aborted blocking read promptly with [] and serves the next read', async () => {
    const store = new RedisStreamStore({ url: cluster.url });
    try {
      const stream = `{t-${randomUUID()}}.s`;
      await store.ensureGroup(stream, 'g', '$');
      const controller = new AbortController();
      const read = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 10_000, signal: controller.signal });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const abortedAt = performance.now();
      controller.abort();
      expect(await read).toEqual([]);
      expect(performance.now() - abortedAt).toBeLessThan(1_000);
      const next = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 5_000 });
      await store.add(stream, body('after'));
      expect((await next).map((entry) => entry.stream)).toEqual([stream]);
    } finally {
      await store.close();
    }
  });

  it('rejects a cluster URL with a database or a seed list, naming the field', () => {
    for (const url of ['redis+cluster://127.0.0.1:7000/2', 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001']) {
      let error: unknown;
      try {
        new RedisStreamStore({ url });
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((error as { details: Record<string, unknown> }).details['field']).toBe('url');
    }
  });

  it('passes preflight PING on the seed node and opens a working bus from settings with a redis+cluster:// URL', async () => {
    expect(await pingRedis(cluster.url)).toBeGreaterThan(0);
    const settings = loadSettings({
      env: {},
      overrides: { oona: { busUrl: cluster.url, streamPrefix: `esper-test:${randomUUID()}:`, blockMs: 50 } },
    });
    const telemetry = new MemoryTelemetrySink();
    const bus = openBusFromSettings(settings, { keyRing: testKeyRing(), telemetry });
    try {
      const seen: BusMessageType[] = [];
      const subscription = bus.subscribe({
        group: 'g',
        consumer: 'c',
        types: [BusMessageType.TELEMETRY],
        handler: (d) => void seen.push(d.type),
      });
      await subscription.ready;
      await bus.publish(telemetryPacket('run-cluster'));
      await waitFor(() => seen.length === 1, 'the telemetry packet');
      await subscription.close();
    } finally {
      await bus.close();
    }
  });
});
