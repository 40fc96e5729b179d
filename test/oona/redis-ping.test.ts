/** `pingRedis`: one PING with a deadline, against the test run's Redis and a port nobody listens on. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { pingRedis } from '../../src/oona/index.js';
import { freePort } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';

describe('pingRedis', () => {
  it('resolves with the round trip when Redis answers PONG', async () => {
    const ms = await pingRedis(testRedisUrl(), { timeoutMs: 2_000 });
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(2_000);
  });

  it('fails with OONA_STORE_UNAVAILABLE naming the URL, password redacted, when nothing listens', async () => {
    const port = await freePort();
    const error = await pingRedis(`redis://user:s3cret-pass@127.0.0.1:${port}/2`, { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: ErrorCode.OONA_STORE_UNAVAILABLE,
      details: { url: `redis://user:[redacted]@127.0.0.1:${port}/2` },
    });
    expect((error as Error).message).toMatch(/did not answer PING: ECONNREFUSED/);
    expect((error as Error).message).not.toContain('s3cret');
  });

  it('refuses a timeout that is not a positive integer', async () => {
    await expect(pingRedis(testRedisUrl(), { timeoutMs: 0 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });
});
