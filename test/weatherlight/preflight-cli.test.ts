/**
 * Preflight of `esper up` on a real process, as a careless operator meets it: Redis down, no
 * signing key configured, a var dir that cannot be written. Each gives one clear message
 * naming the problem and what to set, exit code 1, and nothing started — no service
 * process, nothing written under the var dir.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEsper } from '../support/esper-process.js';
import { testRedisUrl } from '../support/redis-url.js';
import { freePort } from '../support/redis-server.js';

const SECRET = 'a'.repeat(64);

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-preflight-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function up(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = startEsper(['up', '--dataset', 'spirals'], env);
  const { code } = await child.exit;
  return { code, stderr: child.stderr() };
}

/** The lines of the failure itself (the settings line logged at start aside). */
function failureLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line !== '' && !line.includes(': settings {'));
}

describe('esper up preflight', () => {
  it('Redis down: one message naming the URL and what to check; exit 1; no service started', async () => {
    const varDir = path.join(root, 'var-redis');
    const { code, stderr } = await up({
      ESPER_STORAGE_VAR_DIR: varDir,
      ESPER_OONA_BUS_URL: `redis://127.0.0.1:${await freePort()}`,
      ESPER_LEYLINE_SECRET: SECRET,
    });
    expect(code, stderr).toBe(1);
    expect(failureLines(stderr)).toEqual([
      expect.stringMatching(/^esper run: preflight failed:$/),
      expect.stringMatching(
        /^ {2}redis: Redis at redis:\/\/127\.0\.0\.1:\d+ did not answer .*\(check ESPER_OONA_BUS_URL and that redis-server is running\) \[ESPER_WEATHERLIGHT_PREFLIGHT_FAILED\]$/,
      ),
    ]);
    expect(stderr).not.toMatch(/\[(tamiyo|trainer-1)\]/);
  }, 60_000);

  it('no signing key configured: one message saying which variable to set; exit 1; nothing written', async () => {
    const varDir = path.join(root, 'var-key');
    const { code, stderr } = await up({ ESPER_STORAGE_VAR_DIR: varDir, ESPER_OONA_BUS_URL: testRedisUrl() });
    expect(code, stderr).toBe(1);
    const lines = failureLines(stderr);
    expect(lines[0]).toBe('esper run: preflight failed:');
    expect(lines[1]).toMatch(/^ {2}signing_key: .*ESPER_LEYLINE_SECRET/);
    expect(lines).toHaveLength(2);
    expect(stderr).not.toMatch(/\[(tamiyo|trainer-1)\]/);
    // No local key was created for it, and no run directory.
    expect(await readdir(varDir).catch(() => [])).not.toContain('keys');
    expect(await readdir(varDir).catch(() => [])).not.toContain('runs');
  }, 60_000);

  it('a var dir that cannot be written (a file is in the way): one message naming it; exit 1', async () => {
    const blocker = path.join(root, 'not-a-dir');
    await writeFile(blocker, 'in the way');
    const { code, stderr } = await up({
      ESPER_STORAGE_VAR_DIR: path.join(blocker, 'var'),
      ESPER_OONA_BUS_URL: testRedisUrl(),
      ESPER_LEYLINE_SECRET: SECRET,
    });
    expect(code, stderr).toBe(1);
    const lines = failureLines(stderr);
    expect(lines[0]).toBe('esper run: preflight failed:');
    expect(lines.find((l) => l.startsWith('  var_dir: '))).toContain(path.join(blocker, 'var'));
    expect(stderr).not.toMatch(/\[(tamiyo|trainer-1)\]/);
  }, 60_000);
});

describe('esper up --learn', () => {
  it.each([
    [['--policy', 'heuristic'], {}, /--learn needs --policy gnn \(got heuristic\)/],
    [['--policy', 'gnn'], { ESPER_TAMIYO_GNN_INIT_SEED: '7' }, /--learn needs tamiyo\.gnnSampling/],
    [['--policy', 'gnn'], { ESPER_TAMIYO_GNN_SAMPLING: 'true' }, /--learn needs tamiyo\.gnnInitSeed/],
  ] as const)(
    'refuses %j without what Simic learns from (exit 2, nothing started)',
    async (args, env, message) => {
      const varDir = path.join(root, `var-learn-${args[1]}-${Object.keys(env).join('-')}`);
      const child = startEsper(['up', '--learn', '--dataset', 'spirals', ...args], {
        ESPER_STORAGE_VAR_DIR: varDir,
        ESPER_OONA_BUS_URL: testRedisUrl(),
        ESPER_LEYLINE_SECRET: SECRET,
        ...env,
      });
      const { code } = await child.exit;
      expect(code, child.stderr()).toBe(2);
      expect(child.stderr()).toMatch(message);
      expect(child.stderr()).not.toMatch(/\[(tamiyo|simic|trainer-1)\]/);
    },
    60_000,
  );
});
