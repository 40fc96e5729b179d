/**
 * Signs and checks Leyline messages that carry `security: CommandSecurity`: HMAC-SHA256
 * over their canonical bytes (spec 01), with the key id, nonce, issue time and freshness
 * window in the security block.
 */
import { createHmac, createSecretKey, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { create, type MessageShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  canonicalBytes,
  CommandSecuritySchema,
  encodingWithSignature,
  type SignedMessage,
  type SignedMessageSchema,
} from '../leyline/index.js';
import { ErrorCode, EsperError, optionChecks, systemClock, type Clock } from '../core/index.js';
import type { KeyRing } from './key-ring.js';

/** Length of a raw HMAC-SHA256. */
export const SIGNATURE_BYTES = 32;

/** Default freshness window stamped on signed messages. */
export const DEFAULT_FRESHNESS_WINDOW_MS = 60_000;

/** Options of {@link HmacSigner}. */
export interface HmacSignerOptions {
  /** @default systemClock */
  readonly clock?: Clock;
  /** Freshness window stamped on every signed message, in ms. @default 60_000 */
  readonly freshnessWindowMs?: number;
}

/** Options of one {@link HmacSigner.sign} call. */
export interface SignOptions {
  /** @default the command id for commands, else a random UUID */
  readonly nonce?: string;
  /** @default the ring's active key */
  readonly keyId?: string;
}

/** HMAC-SHA256 signer over canonical bytes. */
export class HmacSigner {
  readonly #ring: KeyRing;
  readonly #keys: ReadonlyMap<string, KeyObject>;
  readonly #clock: Clock;
  readonly #freshnessWindowMs: number;

  constructor(ring: KeyRing, options: HmacSignerOptions = {}) {
    this.#ring = ring;
    this.#keys = new Map(ring.keyIds.map((id) => [id, createSecretKey(ring.secret(id) as Uint8Array)]));
    this.#clock = options.clock ?? systemClock;
    this.#freshnessWindowMs = optionChecks('HmacSigner').integer(
      'freshnessWindowMs',
      options.freshnessWindowMs ?? DEFAULT_FRESHNESS_WINDOW_MS,
      {
        min: 1,
      },
    );
  }

  /** The key ring this signer uses. */
  get keyRing(): KeyRing {
    return this.#ring;
  }

  /**
   * Returns a signed copy of `message`: security block filled (key id, nonce, issued_at
   * now, freshness window) and signature computed over the canonical bytes.
   */
  sign<Desc extends SignedMessageSchema>(schema: Desc, message: MessageShape<Desc>, options: SignOptions = {}): MessageShape<Desc> {
    return this.#sign(schema, message, options).message;
  }

  /**
   * Like {@link HmacSigner.sign}, and also returns the signed message's binary encoding,
   * built from the canonical bytes without encoding the message twice. Use it when the
   * message goes on the wire.
   */
  signEncoded<Desc extends SignedMessageSchema>(
    schema: Desc,
    message: MessageShape<Desc>,
    options: SignOptions = {},
  ): { readonly message: MessageShape<Desc>; readonly bytes: Uint8Array } {
    const { message: signed, canonical, signature } = this.#sign(schema, message, options);
    return { message: signed, bytes: encodingWithSignature(schema, canonical, signature) };
  }

  #sign<Desc extends SignedMessageSchema>(
    schema: Desc,
    message: MessageShape<Desc>,
    options: SignOptions,
  ): { message: MessageShape<Desc>; canonical: Uint8Array; signature: Uint8Array } {
    const keyId = options.keyId ?? this.#ring.activeKeyId;
    // A shallow copy is enough: only `security` is replaced, nested messages are shared
    // with the input and never written.
    const copy = { ...message } as SignedMessage;
    copy.security = create(CommandSecuritySchema, {
      nonce: options.nonce ?? defaultNonce(copy),
      issuedAt: timestampFromMs(this.#clock.wallMs()),
      freshnessWindow: durationFromMs(this.#freshnessWindowMs),
      keyId,
    });
    const canonical = canonicalBytes(schema, copy as MessageShape<Desc>);
    const signature = this.mac(keyId, canonical);
    (copy.security as { signature: Uint8Array }).signature = signature;
    return { message: copy as MessageShape<Desc>, canonical, signature };
  }

  /** Raw HMAC-SHA256 of `bytes` with key `keyId`; throws UNKNOWN_KEY if absent. */
  mac(keyId: string, bytes: Uint8Array): Uint8Array {
    const secret = this.#keys.get(keyId);
    if (secret === undefined) {
      throw new EsperError(ErrorCode.UNKNOWN_KEY, `unknown key id ${keyId}`, {
        details: { keyId },
      });
    }
    return new Uint8Array(createHmac('sha256', secret).update(bytes).digest());
  }

  /**
   * Constant-time check of `signature` against the HMAC of `bytes` under `keyId`.
   * False for unknown keys and for signatures of the wrong length.
   */
  macMatches(keyId: string, bytes: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== SIGNATURE_BYTES || !this.#keys.has(keyId)) return false;
    return timingSafeEqual(this.mac(keyId, bytes), signature);
  }
}

function defaultNonce(message: SignedMessage): string {
  if ('commandId' in message && message.commandId.length > 0) return message.commandId;
  return randomUUID();
}
