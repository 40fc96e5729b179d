/**
 * The bus conformance suite on `StreamBus` over `RedisStreamStore`, against the Redis at
 * the test run's Redis. Each test gets its own store and a unique stream prefix
 * (`esper-test:<uuid>:`); every key under it is deleted after the test. Tests run one at a
 * time with an explicit timeout.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisStreamStore } from '../../src/oona/redis-stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { describeBusConformance } from './bus.conformance.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';

const REDIS_URL = testRedisUrl();

let admin: Redis;

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});

afterAll(async () => {
  await admin.quit();
});

describeBusConformance(
  'StreamBus on RedisStreamStore',
  async (options) => {
    const streamPrefix = `esper-test:${randomUUID()}:`;
    const store = new RedisStreamStore({ url: REDIS_URL });
    const bus = new StreamBus({ ...options, store, streamPrefix });
    return {
      bus,
      store,
      dispose: async () => {
        try {
          await bus.close();
          await store.close();
        } finally {
          await deleteKeysWithPrefix(admin, streamPrefix);
        }
      },
    };
  },
  { timeoutMs: 20_000 },
);
