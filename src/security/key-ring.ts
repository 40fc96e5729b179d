/**
 * HMAC key ring. One active key signs; every key in the ring verifies, so a key can be
 * rotated without downtime: add the new key first in `ESPER_LEYLINE_KEYS`, keep the old
 * one after it until every producer has switched, then drop it.
 */
import { constants } from 'node:fs';
import { link, mkdir, open, rm } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { ErrorCode, EsperError } from '../core/index.js';

/** Secrets shorter than this are refused: an HMAC is only as strong as its key. */
export const MIN_SECRET_BYTES = 16;

/** Key id used for the single secret of `ESPER_LEYLINE_SECRET`. */
export const DEFAULT_KEY_ID = 'default';

/** One named secret. */
export interface KeyEntry {
  readonly keyId: string;
  readonly secret: Uint8Array;
}

const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** An immutable set of HMAC secrets with one active signing key. */
export class KeyRing {
  readonly #keys: ReadonlyMap<string, Uint8Array>;
  readonly activeKeyId: string;

  /** @param entries keys; the first one is the active signing key. */
  constructor(entries: readonly KeyEntry[]) {
    if (entries.length === 0) {
      throw new EsperError(ErrorCode.KEY_RING_INVALID, 'key ring needs at least one key');
    }
    const keys = new Map<string, Uint8Array>();
    for (const { keyId, secret } of entries) {
      if (!KEY_ID_PATTERN.test(keyId)) {
        throw new EsperError(ErrorCode.KEY_RING_INVALID, `invalid key id ${JSON.stringify(keyId)}`);
      }
      if (keys.has(keyId)) {
        throw new EsperError(ErrorCode.KEY_RING_INVALID, `duplicate key id ${keyId}`);
      }
      if (secret.length < MIN_SECRET_BYTES) {
        throw new EsperError(
          ErrorCode.KEY_RING_INVALID,
          `secret of key ${keyId} is ${secret.length} bytes; at least ${MIN_SECRET_BYTES} required`,
        );
      }
      keys.set(keyId, Uint8Array.from(secret));
    }
    this.#keys = keys;
    this.activeKeyId = (entries[0] as KeyEntry).keyId;
  }

  /**
   * Builds the ring from the security settings (`settings.security`, read from
   * `ESPER_LEYLINE_KEYS` / `ESPER_LEYLINE_SECRET` by `loadSettings`): `leylineKeys` as
   * comma-separated `id:secret` pairs (first = active), or `leylineSecret` as one key with
   * id `default`. Setting both, or neither, is an error.
   */
  static fromSettings(security: { readonly leylineSecret?: string | undefined; readonly leylineKeys?: string | undefined }): KeyRing {
    const keys = security.leylineKeys;
    const secret = security.leylineSecret;
    if (keys !== undefined && keys !== '' && secret !== undefined && secret !== '') {
      throw new EsperError(ErrorCode.KEY_RING_INVALID, 'set either ESPER_LEYLINE_KEYS or ESPER_LEYLINE_SECRET, not both');
    }
    if (keys !== undefined && keys !== '') return KeyRing.parse(keys);
    if (secret !== undefined && secret !== '') {
      return new KeyRing([{ keyId: DEFAULT_KEY_ID, secret: Buffer.from(secret, 'utf8') }]);
    }
    throw new EsperError(ErrorCode.KEY_RING_INVALID, 'no signing key: set ESPER_LEYLINE_SECRET or ESPER_LEYLINE_KEYS (id:secret,...)');
  }

  /** Parses `id:secret,id:secret`; secrets are UTF-8 and may contain ':'. */
  static parse(spec: string): KeyRing {
    const entries = spec
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0)
      .map((part) => {
        const colon = part.indexOf(':');
        if (colon <= 0 || colon === part.length - 1) {
          throw new EsperError(ErrorCode.KEY_RING_INVALID, 'ESPER_LEYLINE_KEYS entries must look like id:secret');
        }
        return {
          keyId: part.slice(0, colon),
          secret: Buffer.from(part.slice(colon + 1), 'utf8'),
        };
      });
    return new KeyRing(entries);
  }

  /** Ids of every key, active first. */
  get keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }

  /** Whether the ring holds `keyId`. */
  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** A copy of the secret of `keyId`, or `undefined`. Never log it. */
  secret(keyId: string): Uint8Array | undefined {
    const secret = this.#keys.get(keyId);
    return secret === undefined ? undefined : Uint8Array.from(secret);
  }

  /** Redacted form for logs. */
  toJSON(): { activeKeyId: string; keyIds: readonly string[] } {
    return { activeKeyId: this.activeKeyId, keyIds: this.keyIds };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `KeyRing(active=${this.activeKeyId}, keys=[${this.keyIds.join(', ')}], secrets redacted)`;
  }
}

/** Key id of the machine-local key (see {@link openLocalKeyRing}). */
export const LOCAL_KEY_ID = 'local';

/** Where the local key lives, relative to the var dir. */
export const LOCAL_KEY_FILE = path.join('keys', 'local.key');

/** The local key file holds exactly this many lower-case hex characters (32 random bytes). */
const LOCAL_KEY_HEX_CHARS = 64;

/** Result of {@link openLocalKeyRing}. */
export interface LocalKeyRing {
  /** One key, id {@link LOCAL_KEY_ID}; its secret is the file's 64 hex characters as UTF-8. */
  readonly keyRing: KeyRing;
  /** Absolute path of the key file. */
  readonly path: string;
  /** Whether this call created the file (say so to the operator once). */
  readonly created: boolean;
}

/**
 * The key ring used when no key is configured: one key, id `local`, kept in
 * `<varDir>/keys/local.key` so that what it signed (safety data sheets in Urza) still
 * verifies in later runs. The first call creates the file atomically (written to a temp
 * file with mode 0600, then hard-linked into place, so concurrent first calls all end up
 * with the one key that won); later calls read it. The secret is the file's text, so
 * `ESPER_LEYLINE_KEYS=local:<file contents>` reproduces the ring elsewhere.
 * @throws EsperError `KEY_FILE_INVALID` (details `path`, `reason`) when the file is not a
 *   regular file, is readable by group or others, does not hold exactly 64 lower-case hex
 *   characters, or cannot be read or created.
 */
export async function openLocalKeyRing(varDir: string): Promise<LocalKeyRing> {
  const file = path.resolve(varDir, LOCAL_KEY_FILE);
  const existing = await readLocalKey(file);
  if (existing !== undefined) return { keyRing: existing, path: file, created: false };
  const dir = path.dirname(file);
  const temp = path.join(dir, `.local.key.${randomUUID()}.tmp`);
  let created = false;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(randomBytes(LOCAL_KEY_HEX_CHARS / 2).toString('hex'));
      await handle.sync();
    } finally {
      await handle.close();
    }
    // link() never replaces an existing file: of two racing first calls, one key wins.
    await link(temp, file);
    created = true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') throw keyFileInvalid(file, 'not_creatable', code ?? 'create failed', error);
  } finally {
    await rm(temp, { force: true });
  }
  const keyRing = await readLocalKey(file);
  if (keyRing === undefined) throw keyFileInvalid(file, 'not_creatable', 'vanished after creation');
  return { keyRing, path: file, created };
}

/** The ring of an existing key file, `undefined` when there is none. */
async function readLocalKey(file: string): Promise<KeyRing | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw keyFileInvalid(file, 'not_a_regular_file', 'a symbolic link');
    throw keyFileInvalid(file, 'unreadable', code ?? 'read failed', error);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw keyFileInvalid(file, 'not_a_regular_file', 'not a regular file');
    if ((stat.mode & 0o077) !== 0) {
      throw keyFileInvalid(file, 'mode_too_open', `mode ${(stat.mode & 0o777).toString(8)}, must be 600 (chmod 600)`);
    }
    if (stat.size !== LOCAL_KEY_HEX_CHARS) {
      throw keyFileInvalid(file, 'wrong_size', `${stat.size} bytes, must be ${LOCAL_KEY_HEX_CHARS} hex characters`);
    }
    const text = await handle.readFile('utf8');
    if (!/^[0-9a-f]{64}$/.test(text)) throw keyFileInvalid(file, 'not_hex', `must be ${LOCAL_KEY_HEX_CHARS} lower-case hex characters`);
    return new KeyRing([{ keyId: LOCAL_KEY_ID, secret: Buffer.from(text, 'utf8') }]);
  } finally {
    await handle.close();
  }
}

function keyFileInvalid(file: string, reason: string, detail: string, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.KEY_FILE_INVALID, `local key file ${file} is unusable: ${detail}`, {
    details: { path: file, reason },
    ...(cause === undefined ? {} : { cause }),
  });
}
