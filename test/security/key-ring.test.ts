import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings } from '../../src/core/index.js';
import { DEFAULT_KEY_ID, KeyRing, MIN_SECRET_BYTES } from '../../src/security/key-ring.js';

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
