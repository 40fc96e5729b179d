/**
 * Vitest global setup: the Redis every integration test uses. `ESPER_TEST_REDIS_URL` when
 * set; otherwise a private `redis-server` (free port, temp dir, no persistence) started
 * here and removed after the run. Tests read the URL with `testRedisUrl()`.
 */
import type { TestProject } from 'vitest/node';
import { PrivateRedisServer } from './redis-server.js';

/** The environment variable naming an existing Redis for the tests. */
export const TEST_REDIS_URL_ENV = 'ESPER_TEST_REDIS_URL';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env[TEST_REDIS_URL_ENV];
  if (configured !== undefined && configured.length > 0) {
    project.provide('redisUrl', configured);
    return () => Promise.resolve();
  }
  const server = await PrivateRedisServer.start({ persistent: false });
  project.provide('redisUrl', server.url);
  return () => server.dispose();
}
