/**
 * The primitives the generated Leyline wire codec (`gen/esper/leyline/v1/wire_codec.ts`,
 * written by `tools/protoc-gen-esper-wire.ts`) is made of. Each one reproduces what
 * protobuf-es v2 does for the same value — `BinaryWriter` for bytes out, `BinaryReader`
 * (used as is) for bytes in, `create()` for the shape of a decoded message — so the
 * generated functions give exactly `toBinary`'s bytes and messages equal to
 * `fromBinary`'s, failing where they fail. What makes them faster is what they leave out:
 * no descriptor walk or closure per field, a reused scratch buffer instead of one that
 * grows by doubling for every message, and no `[fieldNo, wireType]` array per tag.
 */
import { protoInt64, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';

/** protobuf-es's default recursion limit of `fromBinary` (message nesting, skipped groups). */
export const RECURSION_LIMIT = 100;

/** The zero value of a bytes field; `create()` shares one instance too (it cannot be mutated). */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const UINT32_MAX = 0xffffffff;

/** Initial scratch size, and the largest scratch buffer kept between encodes. */
const INITIAL_BYTES = 16 * 1024;
const KEPT_BYTES = 1024 * 1024;

/** Bytes of `value` (an unsigned 32-bit integer) as a varint. */
function varint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** `cannot encode field T.f to binary: <problem>`, as protobuf-es words it. */
function fieldError(field: string, problem: string): Error {
  return new Error(`cannot encode field ${field} to binary: ${problem}`);
}

/** protobuf-es's `assertInt32`; returns the value as a number. */
function int32Of(value: unknown, field: string): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number') throw fieldError(field, `invalid int32: ${typeof value}`);
  if (!Number.isInteger(n) || n > INT32_MAX || n < INT32_MIN) throw fieldError(field, `invalid int32: ${n}`);
  return n;
}

/** protobuf-es's `assertUInt32`; returns the value as a number. */
function uint32Of(value: unknown, field: string): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number') throw fieldError(field, `invalid uint32: ${typeof value}`);
  if (!Number.isInteger(n) || n > UINT32_MAX || n < 0) throw fieldError(field, `invalid uint32: ${n}`);
  return n;
}

/**
 * Writes protobuf binary into one scratch buffer that is reused from message to message
 * (see {@link encodeWith}); sub-messages and packed lists reserve one length byte and move
 * their content when the length needs more, as `BinaryWriter.fork/join` do.
 */
export class WireWriter {
  buf: Uint8Array;
  /** `buf` as a Node Buffer (same memory), for its UTF-8 writer. */
  node: Buffer;
  view: DataView;
  pos = 0;
  busy = false;

  constructor(size = INITIAL_BYTES) {
    this.node = Buffer.allocUnsafeSlow(size);
    this.buf = new Uint8Array(this.node.buffer, this.node.byteOffset, size);
    this.view = new DataView(this.node.buffer, this.node.byteOffset, size);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const node = Buffer.allocUnsafeSlow(size);
    node.set(this.buf.subarray(0, this.pos));
    this.node = node;
    this.buf = new Uint8Array(node.buffer, node.byteOffset, size);
    this.view = new DataView(node.buffer, node.byteOffset, size);
  }

  /**
   * A copy of what was written, as a plain Uint8Array. Small results are carved from
   * Node's shared allocation pool like `Buffer.from` does (a fresh ArrayBuffer per message
   * costs more than encoding it, mostly in garbage collection).
   */
  finish(): Uint8Array {
    const size = this.pos;
    const out = Buffer.allocUnsafe(size);
    out.set(this.buf.subarray(0, size));
    return new Uint8Array(out.buffer, out.byteOffset, size);
  }

  /** A one-byte tag (fields 1–15). */
  tag1(tag: number): void {
    this.ensure(1);
    this.buf[this.pos++] = tag;
  }

  /** An unsigned varint of up to 32 bits, unchecked (tags, lengths). */
  varint32(value: number): void {
    this.ensure(5);
    const buf = this.buf;
    let pos = this.pos;
    while (value > 0x7f) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[pos++] = value;
    this.pos = pos;
  }

  /** Reserves the length byte of a length-delimited value; returns where it is. */
  fork(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Writes the length of what followed {@link fork} at `at`, moving the content if needed. */
  join(at: number): void {
    const length = this.pos - at - 1;
    if (length < 0x80) {
      this.buf[at] = length;
      return;
    }
    const size = varint32Size(length);
    this.ensure(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.pos);
    this.pos = at;
    this.varint32(length);
    this.pos += length;
  }

  uint32(value: unknown, field: string): void {
    this.varint32(uint32Of(value, field));
  }

  int32(value: unknown, field: string): void {
    let n = int32Of(value, field);
    if (n >= 0) {
      this.varint32(n);
      return;
    }
    this.ensure(10);
    const buf = this.buf;
    for (let i = 0; i < 9; i++) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>= 7;
    }
    buf[this.pos++] = 1;
  }

  sint32(value: unknown, field: string): void {
    const n = int32Of(value, field);
    this.varint32(((n << 1) ^ (n >> 31)) >>> 0);
  }

  bool(value: unknown): void {
    this.ensure(1);
    this.buf[this.pos++] = value ? 1 : 0;
  }

  double(value: unknown): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, value as number, true);
    this.pos += 8;
  }

  float(value: unknown, field: string): void {
    if (typeof value === 'string') {
      const o = value;
      value = Number(value);
      if (Number.isNaN(value) && o !== 'NaN') throw fieldError(field, `invalid float32: ${o}`);
    } else if (typeof value !== 'number') {
      throw fieldError(field, `invalid float32: ${typeof value}`);
    }
    const n = value as number;
    // A value too large for a float32 becomes infinity when rounded; NaN and infinity are valid.
    if (!Number.isFinite(Math.fround(n)) && Number.isFinite(n)) throw fieldError(field, `invalid float32: ${n}`);
    this.ensure(4);
    this.view.setFloat32(this.pos, n, true);
    this.pos += 4;
  }

  fixed32(value: unknown, field: string): void {
    const n = uint32Of(value, field);
    this.ensure(4);
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  sfixed32(value: unknown, field: string): void {
    const n = int32Of(value, field);
    this.ensure(4);
    this.view.setInt32(this.pos, n, true);
    this.pos += 4;
  }

  int64(value: unknown, field: string): void {
    const { lo, hi } = encode64(value, field, false);
    this.varint64(lo, hi);
  }

  uint64(value: unknown, field: string): void {
    const { lo, hi } = encode64(value, field, true);
    this.varint64(lo, hi);
  }

  sint64(value: unknown, field: string): void {
    const { lo: l, hi: h } = encode64(value, field, false);
    const sign = h >> 31;
    this.varint64((l << 1) ^ sign, ((h << 1) | (l >>> 31)) ^ sign);
  }

  fixed64(value: unknown, field: string): void {
    this.bits64(encode64(value, field, true));
  }

  sfixed64(value: unknown, field: string): void {
    this.bits64(encode64(value, field, false));
  }

  bits64(tc: { lo: number; hi: number }): void {
    this.ensure(8);
    this.view.setInt32(this.pos, tc.lo, true);
    this.view.setInt32(this.pos + 4, tc.hi, true);
    this.pos += 8;
  }

  /** `BinaryWriter.writeVarint64`. */
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < 28; i = i + 7) {
      const shift = lo >>> i;
      const hasNext = !(shift >>> 7 === 0 && hi === 0);
      buf[pos++] = (hasNext ? shift | 0x80 : shift) & 0xff;
      if (!hasNext) {
        this.pos = pos;
        return;
      }
    }
    const splitBits = ((lo >>> 28) & 0x0f) | ((hi & 0x07) << 4);
    const hasMoreBits = !(hi >> 3 === 0);
    buf[pos++] = (hasMoreBits ? splitBits | 0x80 : splitBits) & 0xff;
    if (hasMoreBits) {
      for (let i = 3; i < 31; i = i + 7) {
        const shift = hi >>> i;
        const hasNext = !(shift >>> 7 === 0);
        buf[pos++] = (hasNext ? shift | 0x80 : shift) & 0xff;
        if (!hasNext) {
          this.pos = pos;
          return;
        }
      }
      buf[pos++] = (hi >>> 31) & 0x01;
    }
    this.pos = pos;
  }

  /** A length-prefixed UTF-8 string (lone surrogates become U+FFFD, as with `TextEncoder`). */
  string(value: unknown): void {
    const text = typeof value === 'string' ? value : String(value);
    const length = text.length;
    this.ensure(length * 3 + 5);
    const buf = this.buf;
    const start = this.pos;
    if (length < 0x80) {
      let pos = start + 1;
      let i = 0;
      for (; i < length; i++) {
        const code = text.charCodeAt(i);
        if (code > 0x7f) break;
        buf[pos++] = code;
      }
      if (i === length) {
        buf[start] = length;
        this.pos = pos;
        return;
      }
    }
    const guess = varint32Size(length);
    const written = this.node.write(text, start + guess, 'utf8');
    const size = varint32Size(written);
    if (size !== guess) buf.copyWithin(start + size, start + guess, start + guess + written);
    this.varint32(written);
    this.pos += written;
  }

  /** A length-prefixed bytes value. */
  bytes(value: unknown, field: string): void {
    const length = uint32Of((value as Uint8Array).byteLength, field);
    this.varint32(length);
    this.ensure(length);
    this.buf.set(value as Uint8Array, this.pos);
    this.pos += length;
  }

  /** Unknown fields kept on a message, written after its known fields as `toBinary` does. */
  unknown(fields: readonly { readonly no: number; readonly wireType: number; readonly data: Uint8Array }[]): void {
    for (const { no, wireType, data } of fields) {
      this.varint32(uint32Of(((no << 3) | wireType) >>> 0, 'unknown field tag'));
      this.ensure(data.length);
      this.buf.set(data, this.pos);
      this.pos += data.length;
    }
  }
}

/** `protoInt64.enc` / `uEnc`, with protobuf-es's error wording. */
function encode64(value: unknown, field: string, unsigned: boolean): { lo: number; hi: number } {
  try {
    return unsigned ? protoInt64.uEnc(value as bigint) : protoInt64.enc(value as bigint);
  } catch (error) {
    throw fieldError(field, error instanceof Error ? error.message : String(error));
  }
}

const shared = new WireWriter();

/**
 * `encode(w, message)` on a writer positioned at 0, and a copy of the bytes: the shared
 * scratch writer, or a fresh one if the shared one is in use (an encode that re-enters,
 * say from a value's `toString`).
 */
export function encodeWith<T>(encode: (w: WireWriter, message: T) => void, message: T): Uint8Array {
  const w = shared.busy ? new WireWriter(1024) : shared;
  w.busy = true;
  w.pos = 0;
  try {
    encode(w, message);
    return w.finish();
  } finally {
    w.busy = false;
    w.pos = 0;
    if (w === shared && w.buf.length > KEPT_BYTES) shrink(w);
  }
}

function shrink(w: WireWriter): void {
  const fresh = new WireWriter();
  w.node = fresh.node;
  w.buf = fresh.buf;
  w.view = fresh.view;
}

/** Throws protobuf-es's error for a message of another type where `typeName` belongs. */
export function foreignMessage(field: string, typeName: string, actual: unknown): never {
  throw new Error(`cannot use ${field} with message ${String(actual)} (expected ${typeName})`);
}

/**
 * `BinaryReader` plus what the generated decoders need: a tag read without allocating,
 * unknown fields kept as `fromBinary` keeps them, and whether any were seen (the strict
 * decoder refuses them).
 */
export class WireReader extends BinaryReader {
  /** An unknown field was read somewhere in the message. */
  unknownSeen = false;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    super(bytes);
    this.#bytes = bytes;
  }

  /** `BinaryReader.tag()` as one number (`fieldNo << 3 | wireType`, unsigned), same checks. */
  tagNumber(): number {
    const start = this.pos;
    const tag = this.uint32();
    const bytesRead = this.pos - start;
    if (bytesRead > 5 || (bytesRead === 5 && (this.#bytes[this.pos - 1] as number) > 0x0f)) {
      throw new Error('illegal tag: varint overflows uint32');
    }
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    if (fieldNo <= 0 || wireType > 5) throw new Error(`illegal tag: field no ${fieldNo} wire type ${wireType}`);
    return tag >>> 0;
  }

  /** Skips the unknown field `tag` and keeps it on `message.$unknown`. */
  unknownField(message: { $unknown?: { no: number; wireType: number; data: Uint8Array }[] }, tag: number, depth: number): void {
    const no = tag >>> 3;
    const wireType = tag & 7;
    const data = this.skip(wireType, no, RECURSION_LIMIT - depth);
    (message.$unknown ??= []).push({ no, wireType, data });
    this.unknownSeen = true;
  }

  /** Skips a field inside a map entry other than key and value (not kept, as in protobuf-es). */
  skipTag(tag: number, depth: number): void {
    this.skip(tag & 7, tag >>> 3, RECURSION_LIMIT - depth);
  }
}

/** The depth check `fromBinary` makes on entering a message. */
export function enterMessage(depth: number, typeName: string): number {
  if (depth + 1 > RECURSION_LIMIT) {
    throw new Error(`cannot decode message ${typeName} from binary: maximum recursion depth of ${RECURSION_LIMIT} reached`);
  }
  return depth + 1;
}

/** Sets an own property, even `__proto__` (protobuf-es's `setOwn`). */
export function setOwn(record: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(record, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    record[key] = value;
  }
}

/** Whether `message` has `name` as an own property (explicit presence, as `toBinary` checks it). */
export const hasOwn = (message: object, name: string): boolean => Object.prototype.hasOwnProperty.call(message, name);

/** A map key (always a string locally) as the integer protobuf-es writes for it. */
export function intKey(key: string): unknown {
  const n = Number.parseInt(key);
  return Number.isFinite(n) ? n : key;
}

/** A map key as the 64-bit integer protobuf-es writes for it. */
export function int64Key(key: string, unsigned: boolean): unknown {
  try {
    return unsigned ? protoInt64.uParse(key) : protoInt64.parse(key);
  } catch {
    return key;
  }
}

/** A bool map key as protobuf-es writes it. */
export function boolKey(key: string): unknown {
  return key === 'true' ? true : key === 'false' ? false : key;
}

/** One generated codec: its schema, encoder and decoder. */
export interface WireCodec {
  readonly schema: DescMessage;
  readonly encode: (w: WireWriter, message: never) => void;
  readonly decode: (r: WireReader, length: number, depth: number) => unknown;
}
