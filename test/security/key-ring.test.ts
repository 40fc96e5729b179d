import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings } from '../../src/core/index.js';
import { DEFAULT_KEY_ID, KeyRing, LOCAL_KEY_FILE, LOCAL_KEY_ID, MIN_SECRET_BYTES, openLocalKeyRing } from '../../src/security/key-ring.js';

const SECRET_A = 'secret-a-0123456789';
const SECRET_B = 'secret-b-0123456789';

function keyRingError(build: () => unknown): unknown {
  try {
    build();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('KeyRing', () => {
  it('makes the first key the active signing key and verifies with every key', () => {
    const ring = new KeyRing([
      { keyId: 'k2', secret: Buffer.from(SECRET_B) },
      { keyId: 'k1', secret: Buffer.from(SECRET_A) },
    ]);
    expect(ring.activeKeyId).toBe('k2');
    expect(ring.keyIds).toEqual(['k2', 'k1']);
    expect(ring.has('k1')).toBe(true);
    expect(ring.has('k3')).toBe(false);
    expect(Buffer.from(ring.secret('k1')!).toString('utf8')).toBe(SECRET_A);
    expect(ring.secret('k3')).toBeUndefined();
  });

  it('copies secrets, so later changes to the caller buffer do not leak in', () => {
    const secret = Buffer.from(SECRET_A);
    const ring = new KeyRing([{ keyId: 'k1', secret }]);
    secret.fill(0);
    expect(Buffer.from(ring.secret('k1')!).toString('utf8')).toBe(SECRET_A);
  });

  it.each([
    ['an empty ring', []],
    ['an invalid key id', [{ keyId: 'has space', secret: Buffer.from(SECRET_A) }]],
    ['an empty key id', [{ keyId: '', secret: Buffer.from(SECRET_A) }]],
    ['a key id over 64 characters', [{ keyId: 'k'.repeat(65), secret: Buffer.from(SECRET_A) }]],
    [
      'a duplicate key id',
      [
        { keyId: 'k1', secret: Buffer.from(SECRET_A) },
        { keyId: 'k1', secret: Buffer.from(SECRET_B) },
      ],
    ],
    ['a short secret', [{ keyId: 'k1', secret: new Uint8Array(MIN_SECRET_BYTES - 1) }]],
  ])('refuses %s with KEY_RING_INVALID', (_label, entries) => {
    const error = keyRingError(() => new KeyRing(entries));
    expect(isEsperError(error, ErrorCode.KEY_RING_INVALID)).toBe(true);
  });

  it('accepts a secret of exactly the minimum length', () => {
    expect(new KeyRing([{ keyId: 'k1', secret: new Uint8Array(MIN_SECRET_BYTES) }]).keyIds).toEqual(['k1']);
  });

  describe('parse', () => {
    it('reads id:secret pairs, first active, secrets may contain colons', () => {
      const ring = KeyRing.parse(`new:${SECRET_B}:with:colons, old:${SECRET_A} ,`);
      expect(ring.activeKeyId).toBe('new');
      expect(ring.keyIds).toEqual(['new', 'old']);
      expect(Buffer.from(ring.secret('new')!).toString('utf8')).toBe(`${SECRET_B}:with:colons`);
      expect(Buffer.from(ring.secret('old')!).toString('utf8')).toBe(SECRET_A);
    });

    it.each(['nocolon', `:${SECRET_A}`, 'k1:', ''])('refuses %j', (spec) => {
      expect(
        isEsperError(
          keyRingError(() => KeyRing.parse(spec)),
          ErrorCode.KEY_RING_INVALID,
        ),
      ).toBe(true);
    });
  });

  describe('fromSettings', () => {
    it('reads ESPER_LEYLINE_SECRET as one key with the default id', () => {
      const ring = KeyRing.fromSettings(loadSettings({ env: { ESPER_LEYLINE_SECRET: SECRET_A } }).security);
      expect(ring.activeKeyId).toBe(DEFAULT_KEY_ID);
      expect(Buffer.from(ring.secret(DEFAULT_KEY_ID)!).toString('utf8')).toBe(SECRET_A);
    });

    it('reads ESPER_LEYLINE_KEYS for rotation', () => {
      const settings = loadSettings({ env: { ESPER_LEYLINE_KEYS: `b:${SECRET_B},a:${SECRET_A}` } });
      expect(KeyRing.fromSettings(settings.security).keyIds).toEqual(['b', 'a']);
    });

    it('treats empty values as unset', () => {
      const ring = KeyRing.fromSettings({ leylineKeys: '', leylineSecret: SECRET_A });
      expect(ring.keyIds).toEqual([DEFAULT_KEY_ID]);
    });

    it.each([
      ['both secrets', { leylineKeys: `a:${SECRET_A}`, leylineSecret: SECRET_B }],
      ['neither secret', {}],
      ['empty values only', { leylineKeys: '', leylineSecret: '' }],
      ['a short secret', { leylineSecret: 'short' }],
    ])('refuses %s', (_label, security) => {
      expect(
        isEsperError(
          keyRingError(() => KeyRing.fromSettings(security)),
          ErrorCode.KEY_RING_INVALID,
        ),
      ).toBe(true);
    });
  });

  it('redacts secrets in JSON and in util.inspect', () => {
    const ring = new KeyRing([
      { keyId: 'k2', secret: Buffer.from(SECRET_B) },
      { keyId: 'k1', secret: Buffer.from(SECRET_A) },
    ]);
    const json = JSON.stringify(ring);
    expect(JSON.parse(json)).toEqual({ activeKeyId: 'k2', keyIds: ['k2', 'k1'] });
    const shown = inspect(ring);
    expect(shown).toContain('k2');
    for (const text of [json, shown]) {
      expect(text).not.toContain(SECRET_A);
      expect(text).not.toContain(SECRET_B);
    }
  });
});

describe('openLocalKeyRing', () => {
  let varDir: string;
  let keyFile: string;

  beforeEach(async () => {
    varDir = await mkdtemp(path.join(tmpdir(), 'esper-local-key-'));
    keyFile = path.join(varDir, LOCAL_KEY_FILE);
  });

  afterEach(async () => {
    await rm(varDir, { recursive: true, force: true });
  });

  const secretOf = (ring: KeyRing): string => Buffer.from(ring.secret(LOCAL_KEY_ID)!).toString('utf8');

  async function keyFileError(): Promise<unknown> {
    try {
      await openLocalKeyRing(varDir);
    } catch (error) {
      return error;
    }
    return undefined;
  }

  async function expectKeyFileError(reason: string): Promise<void> {
    const error = await keyFileError();
    expect(isEsperError(error, ErrorCode.KEY_FILE_INVALID), String(error)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ path: keyFile, reason });
    expect((error as Error).message).toContain(keyFile);
  }

  it('creates a 0600 key file once under <varDir>/keys and reuses it on the next open', async () => {
    const first = await openLocalKeyRing(varDir);
    expect(first).toMatchObject({ path: keyFile, created: true });
    expect(first.keyRing.keyIds).toEqual([LOCAL_KEY_ID]);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(keyFile))).mode & 0o077).toBe(0);
    expect(await readFile(keyFile, 'utf8')).toMatch(/^[0-9a-f]{64}$/);

    const second = await openLocalKeyRing(varDir);
    expect(second.created).toBe(false);
    expect(secretOf(second.keyRing)).toBe(secretOf(first.keyRing));
    // The file's text is the secret: ESPER_LEYLINE_KEYS=local:<contents> is the same ring.
    expect(secretOf(KeyRing.parse(`local:${await readFile(keyFile, 'utf8')}`))).toBe(secretOf(first.keyRing));
  });

  it('gives racing first opens in one process the one key that won', async () => {
    const rings = await Promise.all(Array.from({ length: 8 }, () => openLocalKeyRing(varDir)));
    expect(new Set(rings.map((r) => secretOf(r.keyRing))).size).toBe(1);
    expect(rings.filter((r) => r.created)).toHaveLength(1);
  });

  it('gives two processes started together over one var dir the same key', async () => {
    const child = path.resolve(import.meta.dirname, 'fixtures/local-key-child.ts');
    const run = promisify(execFile);
    const outputs = await Promise.all([0, 1].map(() => run(process.execPath, ['--import', 'tsx', child, varDir], { timeout: 30_000 })));
    const lines = outputs.map((o) => o.stdout.trim().split(' '));
    const digest = createHash('sha256')
      .update(secretOf((await openLocalKeyRing(varDir)).keyRing))
      .digest('hex');
    expect(lines.map(([, hash]) => hash)).toEqual([digest, digest]);
    expect(lines.filter(([created]) => created === 'true')).toHaveLength(1);
  }, 60_000);

  it('refuses a key file readable by group or others, naming it', async () => {
    await openLocalKeyRing(varDir);
    await chmod(keyFile, 0o644);
    await expectKeyFileError('mode_too_open');
  });

  it('refuses a truncated key file, naming it', async () => {
    await openLocalKeyRing(varDir);
    await truncate(keyFile, 10);
    await expectKeyFileError('wrong_size');
  });

  it('refuses a key file of the right size that is not hex', async () => {
    await mkdir(path.dirname(keyFile), { recursive: true });
    await writeFile(keyFile, 'z'.repeat(64), { mode: 0o600 });
    await expectKeyFileError('not_hex');
  });

  it('refuses a symbolic link or a directory in place of the key file', async () => {
    const target = path.join(varDir, 'elsewhere.key');
    await writeFile(target, 'a'.repeat(64), { mode: 0o600 });
    await mkdir(path.dirname(keyFile), { recursive: true });
    await symlink(target, keyFile);
    await expectKeyFileError('not_a_regular_file');
    await rm(keyFile);
    await mkdir(keyFile);
    await expectKeyFileError('not_a_regular_file');
  });

  it('reports a var dir whose keys directory is a file, naming the key file', async () => {
    await writeFile(path.join(varDir, 'keys'), 'a file where the keys directory should be');
    await expectKeyFileError('unreadable');
  });
});
