import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { TelemetryLevel } from '../../src/leyline/index.js';
import { NonceLedger, RedisNonceStore } from '../../src/security/index.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';

const REDIS_URL = testRedisUrl();
let admin: Redis;
let prefix: string;

beforeAll(() => {
  admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await admin.quit();
});

afterEach(async () => {
  await deleteKeysWithPrefix(admin, prefix);
});

/** A verifier's ledger on its own client, as a separate process would have. */
async function openLedger(clock: FakeClock, sink = new MemoryTelemetrySink()): Promise<{ ledger: NonceLedger; client: Redis }> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const ledger = await NonceLedger.open({ store: new RedisNonceStore({ redis: client, keyPrefix: prefix }), clock, ttlSeconds: 10, sink });
  return { ledger, client };
}

describe('RedisNonceStore', () => {
  it('refuses a replay after a restart: a new ledger on the same key prefix remembers the nonce', async () => {
    prefix = `esper-test:nonces:${randomUUID()}:`;
    const clock = new FakeClock();
    const first = await openLedger(clock);
    expect(first.ledger.register('cmd-1')).toBe(true);
    await first.ledger.close();
    await first.client.quit();

    const restarted = await openLedger(clock);
    expect(restarted.ledger.has('cmd-1')).toBe(true);
    expect(restarted.ledger.register('cmd-1')).toBe(false);
    await restarted.ledger.close();
    await restarted.client.quit();
  });

  it('writes each nonce with NX and a PX expiry of the ledger TTL, so Redis forgets it', async () => {
    prefix = `esper-test:nonces:${randomUUID()}:`;
    const { ledger, client } = await openLedger(new FakeClock());
    ledger.register('cmd-1');
    await ledger.flush();
    const ttlMs = await admin.pttl(`${prefix}cmd-1`);
    expect(ttlMs).toBeGreaterThan(9_000);
    expect(ttlMs).toBeLessThanOrEqual(10_000);
    await ledger.close();
    await client.quit();
  });

  it('reports CRITICAL nonce_store_conflict when another verifier sharing the prefix already held the nonce', async () => {
    prefix = `esper-test:nonces:${randomUUID()}:`;
    const clock = new FakeClock();
    const a = await openLedger(clock);
    const sink = new MemoryTelemetrySink();
    const b = await openLedger(clock, sink);
    a.ledger.register('cmd-1');
    await a.ledger.flush();
    b.ledger.register('cmd-1');
    await b.ledger.flush();
    expect(sink.packets.flatMap((p) => p.events)).toEqual([
      expect.objectContaining({ description: 'nonce_store_conflict', level: TelemetryLevel.CRITICAL }),
    ]);
    for (const { ledger, client } of [a, b]) {
      await ledger.close();
      await client.quit();
    }
  });

  it('forgets every nonce of its prefix on clear', async () => {
    prefix = `esper-test:nonces:${randomUUID()}:`;
    const { ledger, client } = await openLedger(new FakeClock());
    ledger.register('a');
    ledger.register('b');
    expect(ledger.clear()).toBe(2);
    await ledger.flush();
    expect(await admin.exists(`${prefix}a`, `${prefix}b`)).toBe(0);
    await ledger.close();
    await client.quit();
  });

  it('fails opening with NONCE_STORE_FAILED naming the prefix when Redis cannot be reached', async () => {
    prefix = `esper-test:nonces:${randomUUID()}:`;
    const client = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => undefined); // the refusal is what this test is about
    const error = await NonceLedger.open({ store: new RedisNonceStore({ redis: client, keyPrefix: prefix }) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.NONCE_STORE_FAILED)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toEqual({ keyPrefix: prefix });
    client.disconnect();
  });
});
