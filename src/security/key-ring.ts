/**
 * HMAC key ring. One active key signs; every key in the ring verifies, so a key can be
 * rotated without downtime: add the new key first in `ESPER_LEYLINE_KEYS`, keep the old
 * one after it until every producer has switched, then drop it.
 */
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
