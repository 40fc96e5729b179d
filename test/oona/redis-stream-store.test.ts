/**
 * RedisStreamStore against the test run's Redis (`test/support/redis-global-setup.ts`), with a unique
 * key prefix and connection name per test; every key a test creates is deleted after it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { MAX_TIMER_MS } from '../../src/core/index.js';
import { RedisStreamStore, resolveRedisStreamStoreOptions } from '../../src/oona/redis-stream-store.js';
import type { StreamStore } from '../../src/oona/stream-store.js';
import { body, bodyOf, describeStreamStoreConformance, pollUntil, rejectionOf, uniquePrefix } from './stream-store.conformance.js';
import { testRedisUrl } from '../support/redis-url.js';
import { thrownBy } from '../support/thrown.js';

const REDIS_URL = testRedisUrl();

let admin: Redis;
const connectionNames = new WeakMap<StreamStore, string>();

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  await admin.ping();
});

afterAll(async () => {
  await admin.quit();
});

function uniqueConnectionName(): string {
  return `esper-test-${randomBytes(6).toString('hex')}`;
}

interface ClientRow {
  readonly id: string;
  readonly name: string;
  readonly flags: string;
}

async function clientsNamed(name: string): Promise<ClientRow[]> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .map((line) => ({
      id: / ?id=(\d+)/.exec(line)?.[1] ?? '',
      name: / name=(\S*)/.exec(line)?.[1] ?? '',
      flags: / flags=(\S*)/.exec(line)?.[1] ?? '',
    }))
    .filter((row) => row.name === name);
}

/** Resolves once `readers` blocking connections of `store` are blocked on the server. */
async function waitUntilBlocked(store: StreamStore, readers: number): Promise<void> {
  const name = connectionNames.get(store);
  if (name === undefined) throw new Error('store was not made by this file');
  await pollUntil(async () => {
    const blocked = (await clientsNamed(`${name}:block`)).filter((row) => row.flags.includes('b'));
    return blocked.length >= readers ? true : undefined;
  }, `${readers} blocked reader(s)`);
}

function makeStore(options: { connectionName?: string } = {}): RedisStreamStore {
  const connectionName = options.connectionName ?? uniqueConnectionName();
  const store = new RedisStreamStore({ url: REDIS_URL, connectionName });
  connectionNames.set(store, connectionName);
  return store;
}

describeStreamStoreConformance('RedisStreamStore', { makeStore: () => makeStore(), waitUntilBlocked });

describe('RedisStreamStore', () => {
  const stores: RedisStreamStore[] = [];
  const keys: string[] = [];
  const clients: Redis[] = [];
  let prefix = '';

  function key(suffix: string): string {
    if (prefix === '') prefix = uniquePrefix();
    const name = `${prefix}${suffix}`;
    keys.push(name);
    return name;
  }

  function track<T extends RedisStreamStore>(store: T): T {
    stores.push(store);
    return store;
  }

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    if (keys.length > 0) await admin.del(...keys.splice(0));
    await Promise.all(clients.splice(0).map((client) => client.quit().catch(() => client.disconnect())));
    prefix = '';
  });

  it('requires exactly one of url and redis', () => {
    for (const options of [{}, { url: REDIS_URL, redis: admin }]) {
      let caught: unknown;
      try {
        resolveRedisStreamStoreOptions(options);
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
    expect(resolveRedisStreamStoreOptions({ url: REDIS_URL })).toMatchObject({
      connectionName: 'esper-oona',
      maxRetriesPerRequest: 4,
      maxIdleBlockingConnections: 4,
    });
  });

  it('names a bad url without echoing its password, and bounds the reconnect delays', () => {
    const secret = 'hunter2-secret';
    for (const [options, field] of [
      [{ url: `http://user:${secret}@localhost:6379` }, 'url'],
      [{ url: REDIS_URL, redis: admin }, 'url'],
      [{ url: REDIS_URL, reconnectBaseDelayMs: 0 }, 'reconnectBaseDelayMs'],
      [{ url: REDIS_URL, reconnectBaseDelayMs: 100, reconnectMaxDelayMs: 50 }, 'reconnectMaxDelayMs'],
      [{ url: REDIS_URL, connectTimeoutMs: MAX_TIMER_MS + 1 }, 'connectTimeoutMs'],
    ] as const) {
      const error = thrownBy(() => resolveRedisStreamStoreOptions(options), ErrorCode.INVALID_ARGUMENT);
      expect(error.details['field']).toBe(field);
      expect(error.message).not.toContain(secret);
      expect(JSON.stringify(error.details)).not.toContain(secret);
    }
  });

  it('quits the connections it created from a url on close', async () => {
    const name = uniqueConnectionName();
    const store = track(makeStore({ connectionName: name }));
    const stream = key('s');
    await store.ensureGroup(stream, 'g', '$');
    const controller = new AbortController();
    const read = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 20_000, signal: controller.signal });
    await waitUntilBlocked(store, 1);
    expect(await clientsNamed(name)).toHaveLength(1);
    controller.abort();
    expect(await read).toEqual([]);
    await store.close();
    await pollUntil(async () => {
      const left = [...(await clientsNamed(name)), ...(await clientsNamed(`${name}:block`))];
      return left.length === 0 ? true : undefined;
    }, 'the store connections to close');
  });

  it('leaves an injected client open on close but closes the blocking connections it made', async () => {
    const name = uniqueConnectionName();
    const injected = new Redis(REDIS_URL, { connectionName: name });
    clients.push(injected);
    const store = track(new RedisStreamStore({ redis: injected, connectionName: name }));
    connectionNames.set(store, name);
    const stream = key('s');
    await store.ensureGroup(stream, 'g', '$');
    const read = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 20_000 });
    await waitUntilBlocked(store, 1);
    await store.close();
    expect(await read).toEqual([]);
    expect(await injected.ping()).toBe('PONG');
    expect(injected.listenerCount('error')).toBe(0);
    await pollUntil(
      async () => ((await clientsNamed(`${name}:block`)).length === 0 ? true : undefined),
      'the blocking connection to close',
    );
    expect(await clientsNamed(name)).toHaveLength(1);
  });

  it('ends an aborted read with CLIENT UNBLOCK and reuses its connection', async () => {
    const name = uniqueConnectionName();
    const store = track(makeStore({ connectionName: name }));
    const stream = key('s');
    await store.ensureGroup(stream, 'g', '$');
    const ids: string[] = [];
    for (let round = 0; round < 3; round += 1) {
      const controller = new AbortController();
      const read = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 20_000, signal: controller.signal });
      await waitUntilBlocked(store, 1);
      const rows = await clientsNamed(`${name}:block`);
      expect(rows).toHaveLength(1);
      ids.push(rows[0]?.id ?? '');
      controller.abort();
      expect(await read).toEqual([]);
    }
    expect(new Set(ids).size).toBe(1);
    expect(store.connectionErrorCount).toBe(0);
  });

  it('maps a refused connection to OONA_STORE_UNAVAILABLE and records the error', async () => {
    const port = await closedPort();
    const store = track(new RedisStreamStore({ url: `redis://127.0.0.1:${port}`, maxRetriesPerRequest: 1, reconnectMaxDelayMs: 100 }));
    const error = await rejectionOf(store.add('s', body('x')));
    expect(isEsperError(error, ErrorCode.OONA_STORE_UNAVAILABLE)).toBe(true);
    const blocked = await rejectionOf(store.readGroup('g', 'c', ['s'], { count: 1, blockMs: 10_000 }));
    expect(isEsperError(blocked, ErrorCode.OONA_STORE_UNAVAILABLE)).toBe(true);
    expect(store.connectionErrorCount).toBeGreaterThan(0);
    expect((store.lastConnectionError as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNREFUSED');
    const closedAt = performance.now();
    await store.close();
    expect(performance.now() - closedAt).toBeLessThan(2_000);
  });

  it('maps a command on a key of the wrong type to the terminal OONA_STORE_FAILED', async () => {
    const store = track(makeStore());
    const stream = key('not-a-stream');
    await admin.set(stream, 'x');
    const add = await rejectionOf(store.add(stream, body('x')));
    expect(isEsperError(add, ErrorCode.OONA_STORE_FAILED)).toBe(true);
    expect((add as { details: Record<string, unknown> }).details).toMatchObject({ command: 'XADD', redisCode: 'WRONGTYPE' });
    const ensure = await rejectionOf(store.ensureGroup(stream, 'g', '$'));
    expect(isEsperError(ensure, ErrorCode.OONA_STORE_FAILED)).toBe(true);
    const groups = await rejectionOf(store.groups(stream));
    expect(isEsperError(groups, ErrorCode.OONA_STORE_FAILED)).toBe(true);
  });

  it('sends the adds of one tick as one pipeline: each gets its own id or error, in call order', async () => {
    const store = track(makeStore());
    const stream = key('s');
    const wrong = key('not-a-stream');
    await admin.set(wrong, 'x');
    const results = await Promise.allSettled([
      store.add(stream, body('a')),
      store.add(wrong, body('x')),
      store.add(stream, body('b')),
      store.add(stream, body('c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const failed = (results[1] as PromiseRejectedResult).reason as unknown;
    expect(isEsperError(failed, ErrorCode.OONA_STORE_FAILED)).toBe(true);
    expect((failed as { details: Record<string, unknown> }).details).toMatchObject({ command: 'XADD', redisCode: 'WRONGTYPE' });
    const ids = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const stored = (await admin.xrange(stream, '-', '+')).map(([id]) => id);
    expect(stored).toEqual(ids);
  });

  it('sends adds still waiting for the end of their tick before any later command', async () => {
    const store = track(makeStore());
    const stream = key('s');
    const added = store.add(stream, body('a'));
    // Called in the same tick, after the add: the add must reach Redis first.
    const length = store.length(stream);
    expect(await length).toBe(1);
    await added;
  });

  it('reports lag for a group it did not create once Redis knows its counter', async () => {
    const store = track(makeStore());
    const stream = key('s');
    await store.add(stream, body('1'));
    await admin.xgroup('CREATE', stream, 'foreign', '$');
    await store.add(stream, body('2'));
    await store.add(stream, body('3'));
    await store.readGroup('foreign', 'c', [stream], { count: 1, blockMs: 0 });
    // Redis 7.0 cannot tell the lag of a group created without ENTRIESREAD mid-stream.
    const [info] = await store.groups(stream);
    expect(info).toMatchObject({ name: 'foreign', pending: 1, lag: undefined });
  });

  it.skipIf(!hasRedisServer())('keeps working across a Redis restart with AOF on', { timeout: 60_000 }, async () => {
    const port = await closedPort();
    const dir = mkdtempSync(join(tmpdir(), 'esper-redis-'));
    let server = await startRedisServer(port, dir);
    try {
      const store = track(new RedisStreamStore({ url: `redis://127.0.0.1:${port}`, connectionName: uniqueConnectionName() }));
      await store.ensureGroup('s', 'g', '0');
      await store.add('s', body('before'));
      await stopRedisServer(server);
      const down = await rejectionOf(store.add('s', body('while down')));
      expect(isEsperError(down, ErrorCode.OONA_STORE_UNAVAILABLE)).toBe(true);
      server = await startRedisServer(port, dir);
      await pollUntil(
        async () => {
          try {
            return await store.add('s', body('after'));
          } catch (error) {
            if (isEsperError(error, ErrorCode.OONA_STORE_UNAVAILABLE)) return undefined;
            throw error;
          }
        },
        'the store to reconnect',
        20_000,
        50,
      );
      const entries = await store.readGroup('g', 'c', ['s'], { count: 10, blockMs: 1_000 });
      expect(entries.map(bodyOf)).toEqual(['before', 'after']);
      expect(store.connectionErrorCount).toBeGreaterThan(0);
    } finally {
      await Promise.all(stores.splice(0).map((store) => store.close()));
      await stopRedisServer(server);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A local TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function hasRedisServer(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, 'redis-server')));
}

async function startRedisServer(port: number, dir: string): Promise<ChildProcess> {
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--save', '', '--dir', dir], {
    stdio: 'ignore',
  });
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await pollUntil(
      async () => {
        try {
          if (probe.status !== 'ready') await probe.connect();
          return (await probe.ping()) === 'PONG' ? true : undefined;
        } catch {
          probe.disconnect();
          return undefined;
        }
      },
      `redis-server on port ${port}`,
      10_000,
      50,
    );
  } finally {
    probe.disconnect();
  }
  return server;
}

async function stopRedisServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  server.kill('SIGTERM');
  await exited;
}
