/**
 * The `tensorflow.Event` protobuf, hand-encoded — only the fields a scalar event file uses:
 *
 * ```proto
 * message Event { double wall_time = 1; int64 step = 2;
 *                 oneof what { string file_version = 3; Summary summary = 5; } }
 * message Summary { repeated Value value = 1; }
 * message Value { string tag = 1; float simple_value = 2; }
 * ```
 *
 * TensorFlow's format, not Esper's contract, so it lives here rather than in `proto/`.
 */
import { ErrorCode, EsperError } from '../../core/index.js';

/** The `file_version` of the first event of every event file. */
export const EVENT_FILE_VERSION = 'brain.Event:2';

/** One scalar of a summary. */
export interface ScalarValue {
  readonly tag: string;
  readonly value: number;
}

/** An event: the file version, or a summary of scalars at a step. */
export type TfEvent =
  | { readonly wallTimeS: number; readonly step: number; readonly fileVersion: string }
  | { readonly wallTimeS: number; readonly step: number; readonly scalars: readonly ScalarValue[] };

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** A growable byte buffer with the protobuf primitives. */
class ProtoWriter {
  #bytes = new Uint8Array(64);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  #reserve(n: number): void {
    if (this.#length + n <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + n));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A non-negative integer up to 2^53 as a varint. */
  varint(value: number): this {
    this.#reserve(10);
    let v = value;
    while (v >= 0x80) {
      this.#bytes[this.#length++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#bytes[this.#length++] = v;
    return this;
  }

  double(value: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value, true);
    this.#length += 8;
    return this;
  }

  float(value: number): this {
    this.#reserve(4);
    this.#view.setFloat32(this.#length, value, true);
    this.#length += 4;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.varint(value.length);
    this.#reserve(value.length);
    this.#bytes.set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  string(value: string): this {
    return this.bytes(new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}

/**
 * The serialized Event.
 * @throws EsperError `INVALID_ARGUMENT` for a step that is not a non-negative safe integer
 */
export function encodeEvent(event: TfEvent): Uint8Array {
  if (!Number.isSafeInteger(event.step) || event.step < 0) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `an event's step must be a non-negative integer, not ${event.step}`);
  }
  const w = new ProtoWriter().tag(1, WIRE_I64).double(event.wallTimeS).tag(2, WIRE_VARINT).varint(event.step);
  if ('fileVersion' in event) return w.tag(3, WIRE_LEN).string(event.fileVersion).finish();
  const summary = new ProtoWriter();
  for (const { tag, value } of event.scalars) {
    summary.tag(1, WIRE_LEN).bytes(new ProtoWriter().tag(1, WIRE_LEN).string(tag).tag(2, WIRE_I32).float(value).finish());
  }
  return w.tag(5, WIRE_LEN).bytes(summary.finish()).finish();
}

/** Reads fields of one message; unknown fields are skipped by wire type. */
class ProtoReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #at = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.#at >= this.#bytes.length;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.#byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw new Error('a varint longer than 10 bytes');
  }

  fixed(bytes: 4 | 8): number {
    this.#need(bytes);
    const value = bytes === 8 ? this.#view.getFloat64(this.#at, true) : this.#view.getFloat32(this.#at, true);
    this.#at += bytes;
    return value;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    this.#need(n);
    const out = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.fixed(8);
    else if (wire === WIRE_I32) this.fixed(4);
    else if (wire === WIRE_LEN) this.bytes();
    else throw new Error(`unsupported wire type ${wire}`);
  }

  #byte(): number {
    this.#need(1);
    return this.#bytes[this.#at++]!;
  }

  #need(n: number): void {
    if (this.#at + n > this.#bytes.length) throw new Error('a field past the end of the message');
  }
}

/**
 * Decodes an Event written by {@link encodeEvent} (or by TensorFlow, as far as these fields go).
 * @throws Error when the bytes are not a well-formed Event
 */
export function decodeEvent(bytes: Uint8Array): TfEvent {
  const r = new ProtoReader(bytes);
  let wallTimeS = 0;
  let step = 0;
  let fileVersion: string | undefined;
  const scalars: ScalarValue[] = [];
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === WIRE_I64) wallTimeS = r.fixed(8);
    else if (field === 2 && wire === WIRE_VARINT) step = r.varint();
    else if (field === 3 && wire === WIRE_LEN) fileVersion = new TextDecoder().decode(r.bytes());
    else if (field === 5 && wire === WIRE_LEN) scalars.push(...decodeSummary(r.bytes()));
    else r.skip(wire);
  }
  return fileVersion === undefined ? { wallTimeS, step, scalars } : { wallTimeS, step, fileVersion };
}

function decodeSummary(bytes: Uint8Array): ScalarValue[] {
  const r = new ProtoReader(bytes);
  const values: ScalarValue[] = [];
  while (!r.done) {
    const key = r.varint();
    if (key !== 1 * 8 + WIRE_LEN) {
      r.skip(key % 8);
      continue;
    }
    const v = new ProtoReader(r.bytes());
    let tag = '';
    let value: number | undefined;
    while (!v.done) {
      const k = v.varint();
      if (k === 1 * 8 + WIRE_LEN) tag = new TextDecoder().decode(v.bytes());
      else if (k === 2 * 8 + WIRE_I32) value = v.fixed(4);
      else v.skip(k % 8);
    }
    // A Value without simple_value holds an image, histogram or tensor: not a scalar.
    if (value !== undefined) values.push({ tag, value });
  }
  return values;
}
