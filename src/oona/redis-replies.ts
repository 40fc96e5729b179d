/** Parsers of the Redis replies the `RedisStreamStore` reads (ioredis buffers copied out). */
import { ErrorCode, EsperError } from '../core/index.js';
import type { EntryFields, StreamEntry } from './stream-store.js';

export function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'string') return value;
  throw new EsperError(ErrorCode.OONA_STORE_FAILED, `unexpected Redis reply element ${String(value)}`);
}

export function integer(value: unknown): number {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value) || typeof value === 'string') return Number(text(value));
  throw new EsperError(ErrorCode.OONA_STORE_FAILED, `unexpected Redis reply element ${String(value)}`);
}

/** Flat `[name, value, ...]` into fields, copying each value out of ioredis's buffers. */
export function parseFields(flat: unknown): EntryFields {
  const fields: Record<string, Uint8Array> = {};
  if (!Array.isArray(flat)) return Object.freeze(fields);
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const value: unknown = flat[i + 1];
    fields[text(flat[i])] = Buffer.isBuffer(value) ? copyOut(value) : new Uint8Array(0);
  }
  return Object.freeze(fields);
}

/**
 * A plain Uint8Array copy of `value`. Small values are carved from Node's allocation pool,
 * as `Buffer.from` does: a fresh ArrayBuffer per field of every entry read costs more, in
 * allocation and garbage collection, than the rest of parsing it.
 */
function copyOut(value: Buffer): Uint8Array {
  const copy = Buffer.from(value);
  return new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
}

/** `[[id, [f, v, ...]], ...]` into entries of `stream`; nil entries (deleted) are skipped. */
export function parseEntries(stream: string, reply: unknown, deliveryCount: number): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const entries: StreamEntry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || item[1] === null || item[1] === undefined) continue;
    entries.push({ stream, id: text(item[0]), fields: parseFields(item[1]), deliveryCount });
  }
  return entries;
}

/** XREADGROUP reply (nil, or `[[stream, entries], ...]`) in the order of `streams`. */
export function parseReadReply(reply: unknown, streams: readonly string[], keyPrefix: string): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const byStream = new Map<string, StreamEntry[]>();
  for (const item of reply) {
    if (!Array.isArray(item)) continue;
    const key = text(item[0]);
    const stream = keyPrefix !== '' && key.startsWith(keyPrefix) ? key.slice(keyPrefix.length) : key;
    byStream.set(stream, parseEntries(stream, item[1], 1));
  }
  return streams.flatMap((stream) => byStream.get(stream) ?? []);
}

/** A flat `[key, value, ...]` reply as a map keyed by text. */
export function parseRecord(flat: unknown): Map<string, unknown> {
  const record = new Map<string, unknown>();
  if (!Array.isArray(flat)) return record;
  for (let i = 0; i + 1 < flat.length; i += 2) record.set(text(flat[i]), flat[i + 1]);
  return record;
}
