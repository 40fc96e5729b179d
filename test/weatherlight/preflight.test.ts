/**
 * Preflight of the mandatory dependencies against the real Redis of the test run and real
 * directories: each failure (Redis down, no key, unwritable var dir, Urza unopenable) gives
 * its own message; all of them are listed together; the success path passes.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeOf } from '../../src/cli/scaffold.js';
import { ErrorCode, loadSettings, type EsperSettings } from '../../src/core/index.js';
import { preflight, preflightError, runPreflight } from '../../src/weatherlight/index.js';
import { freePort } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';
import { until } from './supervisor-support.js';

const SECRET = 'preflight-test-secret-0123456789';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-preflight-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let counter = 0;
function settingsFor(options: { busUrl?: string; secret?: string | undefined; varDir?: string } = {}): EsperSettings {
  counter += 1;
  const env: Record<string, string> = {};
  const secret = 'secret' in options ? options.secret : SECRET;
  if (secret !== undefined) env['ESPER_LEYLINE_SECRET'] = secret;
  return loadSettings({
    env,
    overrides: {
      oona: { busUrl: options.busUrl ?? testRedisUrl() },
      storage: { varDir: options.varDir ?? path.join(root, `var-${counter}`) },
    },
  });
}

describe('preflight', () => {
  it('passes with Redis answering, a configured key, a writable var dir and Urza opening, and leaves no probe behind', async () => {
    const settings = settingsFor();
    const result = await preflight(settings);
    expect(result.ok).toBe(true);
    expect(result.checks.map((c) => [c.name, c.status])).toEqual([
      ['redis', 'passed'],
      ['signing_key', 'passed'],
      ['var_dir', 'passed'],
      ['urza', 'passed'],
    ]);
    expect(result.checks[0]?.message).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:\d+.* answered PING in [\d.]+ ms$/);
    expect(result.checks[1]?.message).toBe('key ring loaded: active key default, 1 key(s)');
    expect((await readdir(settings.storage.varDir)).filter((f) => f.startsWith('.esper-preflight'))).toEqual([]);
  });

  it('with Redis down names the URL, password redacted, and says why', async () => {
    const port = await freePort();
    const settings = settingsFor({ busUrl: `redis://:hunter2-password@127.0.0.1:${port}/0` });
    const result = await runPreflight(settings, { redisTimeoutMs: 1_000 });
    expect(result.ok).toBe(false);
    expect(result.failures.map((f) => f.name)).toEqual(['redis']);
    const message = result.failures[0]?.message ?? '';
    expect(message).toBe(
      `Redis at redis://:[redacted]@127.0.0.1:${port}/0 did not answer PING: ECONNREFUSED (connect ECONNREFUSED 127.0.0.1:${port}) (check ESPER_OONA_BUS_URL and that redis-server is running)`,
    );
    expect(message).not.toContain('hunter2');
    expect(result.failures[0]?.code).toBe(ErrorCode.OONA_STORE_UNAVAILABLE);

    const error = preflightError(result);
    expect(error?.code).toBe(ErrorCode.WEATHERLIGHT_PREFLIGHT_FAILED);
    expect(error?.details).toEqual({ failed: 'redis' });
    expect(exitCodeOf(error)).toBe(1);
    await expect(preflight(settings, { redisTimeoutMs: 1_000 })).rejects.toMatchObject({ code: ErrorCode.WEATHERLIGHT_PREFLIGHT_FAILED });
  });

  it('with a server that accepts but never answers times out and closes its connection', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      socket.resume(); // reads (and drops) what comes, so it sees the probe's FIN
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const result = await runPreflight(settingsFor({ busUrl: `redis://127.0.0.1:${port}` }), { redisTimeoutMs: 200 });
      expect(result.failures.map((f) => f.name)).toEqual(['redis']);
      expect(result.failures[0]?.message).toMatch(new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${port} did not answer PING: .*200 ms`));
      await until(() => sockets.size === 0, 'the probe connection to close', 5_000);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('with no key configured for a distributed bus says which variables to set', async () => {
    const result = await runPreflight(settingsFor({ secret: undefined }));
    expect(result.failures).toEqual([
      {
        name: 'signing_key',
        status: 'failed',
        message:
          'no signing key configured: set ESPER_LEYLINE_SECRET (one secret, ≥ 16 bytes) or ESPER_LEYLINE_KEYS (id:secret,...), the same in every process',
      },
    ]);
  });

  it('with a key too short says so', async () => {
    const result = await runPreflight(settingsFor({ secret: 'short' }));
    expect(result.failures[0]).toMatchObject({ name: 'signing_key', code: ErrorCode.KEY_RING_INVALID });
    expect(result.failures[0]?.message).toMatch(/at least 16 required/);
  });

  it('on an embedded bus with no key accepts the local key the run will create, and checks one that exists', async () => {
    const varDir = path.join(root, 'embedded-var');
    const settings = settingsFor({ busUrl: 'memory://', secret: undefined, varDir });
    const fresh = await runPreflight(settings);
    expect(fresh.ok).toBe(true);
    expect(fresh.checks[0]).toMatchObject({ name: 'redis', status: 'skipped' });
    expect(fresh.checks[1]?.message).toBe(`no key configured: the run will create the local key ${path.join(varDir, 'keys', 'local.key')}`);

    await mkdir(path.join(varDir, 'keys'), { recursive: true });
    await writeFile(path.join(varDir, 'keys', 'local.key'), 'a'.repeat(64), { mode: 0o644 });
    await chmod(path.join(varDir, 'keys', 'local.key'), 0o644);
    const tooOpen = await runPreflight(settings);
    expect(tooOpen.failures).toMatchObject([{ name: 'signing_key', code: ErrorCode.KEY_FILE_INVALID }]);
    expect(tooOpen.failures[0]?.message).toMatch(/local key file .*local\.key is unusable: mode 644, must be 600/);

    await chmod(path.join(varDir, 'keys', 'local.key'), 0o600);
    expect((await runPreflight(settings)).checks[1]?.message).toMatch(/^local key .*local\.key loaded$/);
  });

  it('with an unwritable var dir (a path under a regular file) names the dir; Urza inside it is not checked', async () => {
    const file = path.join(root, 'a-file');
    await writeFile(file, 'not a directory');
    const varDir = path.join(file, 'var');
    const result = await runPreflight(settingsFor({ varDir }));
    expect(result.failures).toEqual([
      {
        name: 'var_dir',
        status: 'failed',
        message: `var dir ${varDir} is not writable (ENOTDIR): set ESPER_STORAGE_VAR_DIR to a writable directory`,
        code: 'ENOTDIR',
      },
    ]);
    expect(result.checks.find((c) => c.name === 'urza')?.status).toBe('skipped');
  });

  it('with an Urza catalog that cannot be opened names the file', async () => {
    const varDir = path.join(root, 'urza-broken');
    await mkdir(path.join(varDir, 'urza'), { recursive: true });
    await writeFile(path.join(varDir, 'urza', 'catalog.db'), 'this is not a SQLite database, it is some text long enough to matter');
    const result = await runPreflight(settingsFor({ varDir }));
    expect(result.failures.map((f) => f.name)).toEqual(['urza']);
    expect(result.failures[0]?.code).toBe(ErrorCode.URZA_STORAGE_INVALID);
    expect(result.failures[0]?.message).toContain(path.join(varDir, 'urza', 'catalog.db'));
  });

  it('lists every failure at once, one line each', async () => {
    const file = path.join(root, 'another-file');
    await writeFile(file, '');
    const port = await freePort();
    const result = await runPreflight(
      settingsFor({ busUrl: `redis://127.0.0.1:${port}`, secret: undefined, varDir: path.join(file, 'var') }),
      {
        redisTimeoutMs: 1_000,
      },
    );
    const error = preflightError(result);
    expect(error?.details).toEqual({ failed: 'redis,signing_key,var_dir' });
    const lines = error?.message.split('\n') ?? [];
    expect(lines[0]).toBe('preflight failed:');
    expect(lines.slice(1).map((l) => l.split(':')[0])).toEqual(['  redis', '  signing_key', '  var_dir']);
  });
});
