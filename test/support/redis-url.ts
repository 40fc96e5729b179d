import { inject } from 'vitest';

/** URL of the Redis this test run uses (see `redis-global-setup.ts`). */
export function testRedisUrl(): string {
  return inject('redisUrl');
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the Redis the integration tests use (`ESPER_TEST_REDIS_URL`, or a private server). */
    redisUrl: string;
  }
}
