/**
 * The one integrity frame of Esper: a 12-byte header (payload length, payload CRC-32C,
 * header CRC-32C) before each payload. Layout and why the header has its own checksum:
 * docs/record-log.md.
 */
import { crc32c } from './crc32c.js';
import { ErrorCode, EsperError } from './errors.js';
import { optionChecks } from './options.js';

/** Size of the frame header, in bytes. */
export const FRAME_HEADER_BYTES = 12;

/** Largest payload the 32-bit length field can describe, in bytes. */
export const FRAME_MAX_PAYLOAD_BYTES_LIMIT = 0xffff_ffff;

/** Default bound on a frame's payload, in bytes (16 MiB). */
export const DEFAULT_MAX_FRAME_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** Options shared by the frame encoder, decoder and reader. */
export interface FrameOptions {
  /**
   * Largest payload accepted, in bytes. A frame declaring more is rejected before any of
   * its payload is read, so a damaged or hostile length cannot force a huge allocation.
   * @default DEFAULT_MAX_FRAME_PAYLOAD_BYTES (16 MiB)
   */
  readonly maxPayloadBytes?: number;
}

/**
 * Validates and returns the effective payload bound of `options`; a bad one is
 * `INVALID_ARGUMENT` naming `owner` and `field` (the caller's names for it).
 */
export function resolveMaxPayloadBytes(options: FrameOptions = {}, owner = 'FrameOptions', field = 'maxPayloadBytes'): number {
  const value = options.maxPayloadBytes ?? DEFAULT_MAX_FRAME_PAYLOAD_BYTES;
  return optionChecks(owner).integer(field, value, { min: 0, max: FRAME_MAX_PAYLOAD_BYTES_LIMIT });
}

/** Total encoded size of a frame carrying `payloadBytes` bytes. */
export function frameBytes(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + payloadBytes;
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function writeU32(b: Uint8Array, at: number, value: number): void {
  b[at] = value & 0xff;
  b[at + 1] = (value >>> 8) & 0xff;
  b[at + 2] = (value >>> 16) & 0xff;
  b[at + 3] = (value >>> 24) & 0xff;
}

function tooLarge(payloadBytes: number, maxPayloadBytes: number, offset?: number): EsperError {
  const at = offset === undefined ? '' : ` at offset ${offset}`;
  return new EsperError(
    ErrorCode.RECORD_TOO_LARGE,
    `frame payload of ${payloadBytes} bytes${at} exceeds the ${maxPayloadBytes}-byte bound`,
    {
      details: offset === undefined ? { payloadBytes, maxPayloadBytes } : { payloadBytes, maxPayloadBytes, offset },
    },
  );
}

/**
 * Encodes `payload` as one frame (a fresh buffer; `payload` is copied, so the caller may
 * reuse it afterwards).
 *
 * @throws EsperError RECORD_TOO_LARGE when the payload exceeds `maxPayloadBytes`.
 */
export function encodeFrame(payload: Uint8Array, options: FrameOptions = {}): Uint8Array {
  const maxPayloadBytes = resolveMaxPayloadBytes(options);
  if (payload.length > maxPayloadBytes) throw tooLarge(payload.length, maxPayloadBytes);
  const frame = new Uint8Array(frameBytes(payload.length));
  writeU32(frame, 0, payload.length);
  writeU32(frame, 4, crc32c(payload));
  writeU32(frame, 8, crc32c(frame.subarray(0, 8)));
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Decodes `bytes` as exactly one frame and returns its payload (a view into `bytes`, not a
 * copy). Checks run in an order that never trusts an unchecked length: header present →
 * header checksum → length bound → payload present and nothing after it → payload
 * checksum.
 *
 * @throws EsperError FRAME_TRUNCATED when `bytes` ends inside the header or the payload;
 *   FRAME_CHECKSUM_MISMATCH when the header or payload checksum fails (`details.part`);
 *   RECORD_TOO_LARGE when the declared length exceeds `maxPayloadBytes`;
 *   DECODE_FAILED when bytes follow the frame.
 */
export function decodeFrame(bytes: Uint8Array, options: FrameOptions = {}): Uint8Array {
  const maxPayloadBytes = resolveMaxPayloadBytes(options);
  if (bytes.length < FRAME_HEADER_BYTES) {
    throw new EsperError(
      ErrorCode.FRAME_TRUNCATED,
      `frame truncated inside its header: ${bytes.length} of ${FRAME_HEADER_BYTES} header bytes`,
      { details: { bytes: bytes.length, part: 'header' } },
    );
  }
  if (crc32c(bytes.subarray(0, 8)) !== readU32(bytes, 8)) {
    throw new EsperError(ErrorCode.FRAME_CHECKSUM_MISMATCH, 'frame header checksum mismatch', {
      details: { part: 'header' },
    });
  }
  const payloadBytes = readU32(bytes, 0);
  if (payloadBytes > maxPayloadBytes) throw tooLarge(payloadBytes, maxPayloadBytes);
  const end = frameBytes(payloadBytes);
  if (bytes.length < end) {
    throw new EsperError(
      ErrorCode.FRAME_TRUNCATED,
      `frame truncated inside its payload: ${bytes.length - FRAME_HEADER_BYTES} of ${payloadBytes} payload bytes`,
      { details: { bytes: bytes.length, payloadBytes, part: 'payload' } },
    );
  }
  if (bytes.length > end) {
    throw new EsperError(ErrorCode.DECODE_FAILED, `${bytes.length - end} unexpected bytes after a ${end}-byte frame`, {
      details: { bytes: bytes.length, frameBytes: end },
    });
  }
  const payload = bytes.subarray(FRAME_HEADER_BYTES, end);
  if (crc32c(payload) !== readU32(bytes, 4)) {
    throw new EsperError(ErrorCode.FRAME_CHECKSUM_MISMATCH, 'frame payload checksum mismatch', {
      details: { part: 'payload', payloadBytes },
    });
  }
  return payload;
}

/** Why the bytes at an offset are not a valid frame, when they are all present. */
export type FrameDefect = 'header-checksum' | 'payload-checksum' | 'length-over-limit';

/** What {@link probeFrame} found at one offset. */
export type FrameProbe =
  /** A valid frame; `end` is the offset just past it. */
  | { readonly kind: 'frame'; readonly payload: Uint8Array; readonly end: number }
  /**
   * The bytes stop before the frame does, inside its header or its payload. `neededBytes`
   * counts the bytes from the offset needed to go further: the header size while the
   * header is incomplete, else the whole frame (the header checksummed, so its length is
   * trustworthy).
   */
  | { readonly kind: 'incomplete'; readonly part: 'header' | 'payload'; readonly neededBytes: number }
  /**
   * The bytes are present but not a valid frame. `end` (the offset just past the frame)
   * and `payloadBytes` are known only when the header itself is valid.
   */
  | {
      readonly kind: 'defect';
      readonly defect: FrameDefect;
      readonly payloadBytes?: number;
      readonly end?: number;
    };

/**
 * Inspects the frame that would start at `offset` of `bytes`, without throwing. The
 * building block of {@link FrameReader} and of readers that stream a file in windows.
 */
export function probeFrame(bytes: Uint8Array, offset: number, maxPayloadBytes: number): FrameProbe {
  const available = bytes.length - offset;
  if (available < FRAME_HEADER_BYTES) return { kind: 'incomplete', part: 'header', neededBytes: FRAME_HEADER_BYTES };
  if (crc32c(bytes.subarray(offset, offset + 8)) !== readU32(bytes, offset + 8)) {
    return { kind: 'defect', defect: 'header-checksum' };
  }
  const payloadBytes = readU32(bytes, offset);
  const end = offset + frameBytes(payloadBytes);
  if (payloadBytes > maxPayloadBytes) return { kind: 'defect', defect: 'length-over-limit', payloadBytes, end };
  if (available < frameBytes(payloadBytes)) {
    return { kind: 'incomplete', part: 'payload', neededBytes: frameBytes(payloadBytes) };
  }
  const payload = bytes.subarray(offset + FRAME_HEADER_BYTES, end);
  if (crc32c(payload) !== readU32(bytes, offset + 4)) {
    return { kind: 'defect', defect: 'payload-checksum', payloadBytes, end };
  }
  return { kind: 'frame', payload, end };
}

/**
 * The first offset ≥ `from` at which a complete, valid frame starts, or -1. Used after a
 * bad frame to tell corruption (valid records follow) from a torn tail (nothing valid
 * follows). Costs one 8-byte checksum per byte scanned.
 */
export function findValidFrame(bytes: Uint8Array, from: number, maxPayloadBytes: number): number {
  for (let at = Math.max(0, from); at + FRAME_HEADER_BYTES <= bytes.length; at++) {
    if (probeFrame(bytes, at, maxPayloadBytes).kind === 'frame') return at;
  }
  return -1;
}

/** Why the tail of a buffer or file was judged torn (written partly, then interrupted). */
export type TornTailReason =
  /** Fewer bytes than a header remain. */
  | 'header-incomplete'
  /** A valid header declares more payload than remains. */
  | 'payload-incomplete'
  /** A damaged header, with no valid frame anywhere after it. */
  | 'header-checksum'
  /** A complete frame whose payload checksum fails, with no valid frame after it. */
  | 'payload-checksum';

/** One step of a {@link FrameReader}. */
export type FrameReadResult =
  /** A valid frame at `offset`; the next one starts at `nextOffset`. */
  | {
      readonly kind: 'frame';
      readonly offset: number;
      readonly payload: Uint8Array;
      readonly nextOffset: number;
    }
  /** The frames ended exactly at the end of the bytes. */
  | { readonly kind: 'end'; readonly offset: number }
  /**
   * From `offset` to the end is an interrupted write: keep everything before `offset`
   * and drop the `droppedBytes` after it.
   */
  | {
      readonly kind: 'torn-tail';
      readonly offset: number;
      readonly reason: TornTailReason;
      readonly droppedBytes: number;
    }
  /**
   * A bad frame at `offset` that is not a torn tail: valid frames follow it (the first at
   * `nextValidOffset`), or its header is valid but declares more than the bound.
   */
  | {
      readonly kind: 'corrupt';
      readonly offset: number;
      readonly defect: FrameDefect;
      readonly nextValidOffset?: number;
    };

/** Options of {@link FrameReader}. */
export interface FrameReaderOptions extends FrameOptions {
  /** Offset of the first frame in the bytes. @default 0 */
  readonly startOffset?: number;
}

/**
 * Reads consecutive frames from a buffer that holds a whole frame sequence (for example a
 * file read into memory). Each {@link FrameReader.next} returns one frame, or the one
 * terminal result that ends the sequence (`end`, `torn-tail` or `corrupt`), which every
 * later call repeats.
 *
 * Tail rule (the same as `RecordLog` applies to files): a bad or incomplete frame with no
 * valid frame anywhere after it is a torn tail, the normal leftover of a crash during a
 * write; a bad frame followed by any valid frame is corruption and is reported with its
 * offset, never skipped. A header that checksums but declares more than the bound is
 * always corruption (a torn write cannot forge a header checksum).
 */
export class FrameReader implements Iterable<FrameReadResult> {
  readonly #bytes: Uint8Array;
  readonly #maxPayloadBytes: number;
  #offset: number;
  #terminal: FrameReadResult | undefined;

  constructor(bytes: Uint8Array, options: FrameReaderOptions = {}) {
    this.#bytes = bytes;
    this.#maxPayloadBytes = resolveMaxPayloadBytes(options);
    const start = options.startOffset ?? 0;
    this.#offset = optionChecks('FrameReaderOptions').integer('startOffset', start, { min: 0, max: bytes.length });
  }

  /** Offset of the next frame to read (or of the terminal result, once reached). */
  get offset(): number {
    return this.#offset;
  }

  /** Reads the next frame, or returns the terminal result. */
  next(): FrameReadResult {
    if (this.#terminal !== undefined) return this.#terminal;
    const bytes = this.#bytes;
    const offset = this.#offset;
    if (offset === bytes.length) return (this.#terminal = { kind: 'end', offset });
    const probe = probeFrame(bytes, offset, this.#maxPayloadBytes);
    switch (probe.kind) {
      case 'frame':
        this.#offset = probe.end;
        return { kind: 'frame', offset, payload: probe.payload, nextOffset: probe.end };
      case 'incomplete':
        return (this.#terminal = {
          kind: 'torn-tail',
          offset,
          reason: probe.part === 'header' ? 'header-incomplete' : 'payload-incomplete',
          droppedBytes: bytes.length - offset,
        });
      case 'defect': {
        if (probe.defect === 'length-over-limit') {
          return (this.#terminal = { kind: 'corrupt', offset, defect: probe.defect });
        }
        // A valid header is trusted to delimit its frame; a damaged one delimits nothing,
        // so the search for a later valid frame starts at the next byte.
        const next = findValidFrame(bytes, probe.end ?? offset + 1, this.#maxPayloadBytes);
        if (next >= 0) return (this.#terminal = { kind: 'corrupt', offset, defect: probe.defect, nextValidOffset: next });
        return (this.#terminal = {
          kind: 'torn-tail',
          offset,
          reason: probe.defect,
          droppedBytes: bytes.length - offset,
        });
      }
    }
  }

  /** Iterates the results up to and including the terminal one. */
  *[Symbol.iterator](): Iterator<FrameReadResult> {
    for (;;) {
      const result = this.next();
      yield result;
      if (result.kind !== 'frame') return;
    }
  }
}
