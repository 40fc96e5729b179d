import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/core/crc32c.js';
import { ErrorCode, isEsperError, type ErrorCode as ErrorCodeValue } from '../../src/core/errors.js';
import {
  DEFAULT_MAX_FRAME_PAYLOAD_BYTES,
  FRAME_HEADER_BYTES,
  FrameReader,
  decodeFrame,
  encodeFrame,
  findValidFrame,
  probeFrame,
  type FrameReadResult,
} from '../../src/core/frame.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function codeOf(run: () => unknown): ErrorCodeValue | 'no error' | 'untyped error' {
  try {
    run();
    return 'no error';
  } catch (error) {
    return isEsperError(error) ? error.code : 'untyped error';
  }
}

function readAll(bytes: Uint8Array, maxPayloadBytes?: number): { payloads: Uint8Array[]; terminal: FrameReadResult } {
  const payloads: Uint8Array[] = [];
  for (const result of new FrameReader(bytes, maxPayloadBytes === undefined ? {} : { maxPayloadBytes })) {
    if (result.kind === 'frame') payloads.push(result.payload);
    else return { payloads, terminal: result };
  }
  throw new Error('reader ended without a terminal result');
}

describe('frame layout', () => {
  it('writes length, payload CRC-32C and header CRC-32C little-endian, then the payload', () => {
    const payload = ascii('123456789');
    const frame = encodeFrame(payload);
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    expect(frame.length).toBe(FRAME_HEADER_BYTES + 9);
    expect(view.getUint32(0, true)).toBe(9);
    expect(view.getUint32(4, true)).toBe(0xe3069283);
    expect(view.getUint32(8, true)).toBe(crc32c(frame.subarray(0, 8)));
    expect(frame.subarray(FRAME_HEADER_BYTES)).toEqual(payload);
  });

  it('encodes an empty payload as a bare, valid header', () => {
    const frame = encodeFrame(new Uint8Array(0));
    expect(frame.length).toBe(FRAME_HEADER_BYTES);
    expect(decodeFrame(frame)).toEqual(new Uint8Array(0));
  });

  it('never accepts a run of zero bytes as a frame', () => {
    expect(codeOf(() => decodeFrame(new Uint8Array(FRAME_HEADER_BYTES)))).toBe(ErrorCode.FRAME_CHECKSUM_MISMATCH);
    expect(findValidFrame(new Uint8Array(4096), 0, DEFAULT_MAX_FRAME_PAYLOAD_BYTES)).toBe(-1);
  });
});

describe('encodeFrame / decodeFrame', () => {
  it('round-trips any payload', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (payload) => {
        expect(decodeFrame(encodeFrame(payload))).toEqual(payload);
      }),
      { numRuns: 300 },
    );
  });

  it('copies the payload, so later changes to the caller buffer do not alter the frame', () => {
    const payload = ascii('abc');
    const frame = encodeFrame(payload);
    payload[0] = 0x7a;
    expect(decodeFrame(frame)).toEqual(ascii('abc'));
  });

  it('rejects every truncation of a frame with FRAME_TRUNCATED', () => {
    const frame = encodeFrame(ascii('field report bytes'));
    for (let length = 0; length < frame.length; length++) {
      expect(
        codeOf(() => decodeFrame(frame.subarray(0, length))),
        `length ${length}`,
      ).toBe(ErrorCode.FRAME_TRUNCATED);
    }
  });

  it('rejects every single-bit flip of a frame with a typed error, never a wrong payload', () => {
    const frame = encodeFrame(ascii('a small payload'));
    for (let bit = 0; bit < frame.length * 8; bit++) {
      const damaged = frame.slice();
      damaged[bit >> 3]! ^= 1 << (bit & 7);
      const code = codeOf(() => decodeFrame(damaged));
      expect(code, `bit ${bit}`).toBe(ErrorCode.FRAME_CHECKSUM_MISMATCH);
    }
  });

  it('rejects a random single-bit flip of a random frame (property)', () => {
    fc.assert(
      fc.property(
        fc
          .uint8Array({ maxLength: 512 })
          .chain((payload) => fc.tuple(fc.constant(payload), fc.nat({ max: (payload.length + FRAME_HEADER_BYTES) * 8 - 1 }))),
        ([payload, bit]) => {
          const damaged = encodeFrame(payload);
          damaged[bit >> 3]! ^= 1 << (bit & 7);
          expect(codeOf(() => decodeFrame(damaged))).toBe(ErrorCode.FRAME_CHECKSUM_MISMATCH);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects bytes after the frame with DECODE_FAILED', () => {
    const frame = concat(encodeFrame(ascii('x')), new Uint8Array([0]));
    expect(codeOf(() => decodeFrame(frame))).toBe(ErrorCode.DECODE_FAILED);
  });

  it('refuses to encode or decode a payload over maxPayloadBytes with RECORD_TOO_LARGE', () => {
    const payload = new Uint8Array(65);
    expect(codeOf(() => encodeFrame(payload, { maxPayloadBytes: 64 }))).toBe(ErrorCode.RECORD_TOO_LARGE);
    const frame = encodeFrame(payload);
    expect(codeOf(() => decodeFrame(frame, { maxPayloadBytes: 64 }))).toBe(ErrorCode.RECORD_TOO_LARGE);
    // The bound is checked from the header alone, before any payload is needed.
    expect(codeOf(() => decodeFrame(frame.subarray(0, FRAME_HEADER_BYTES), { maxPayloadBytes: 64 }))).toBe(ErrorCode.RECORD_TOO_LARGE);
    expect(decodeFrame(encodeFrame(new Uint8Array(64), { maxPayloadBytes: 64 }), { maxPayloadBytes: 64 }).length).toBe(64);
  });

  it('rejects an invalid maxPayloadBytes with INVALID_ARGUMENT', () => {
    for (const maxPayloadBytes of [-1, 1.5, Number.NaN, 2 ** 32]) {
      expect(codeOf(() => encodeFrame(new Uint8Array(1), { maxPayloadBytes }))).toBe(ErrorCode.INVALID_ARGUMENT);
    }
  });
});

describe('probeFrame', () => {
  it('says how many bytes it needs when the header or the payload is cut short', () => {
    const frame = encodeFrame(new Uint8Array(20));
    expect(probeFrame(frame.subarray(0, 5), 0, 100)).toEqual({ kind: 'incomplete', part: 'header', neededBytes: 12 });
    expect(probeFrame(frame.subarray(0, 20), 0, 100)).toEqual({ kind: 'incomplete', part: 'payload', neededBytes: 32 });
  });
});

describe('FrameReader', () => {
  const payloads = [ascii('one'), ascii(''), ascii('three three'), ascii('four')];
  const frames = payloads.map((p) => encodeFrame(p));
  const offsets = frames.map((_, i) => frames.slice(0, i).reduce((n, f) => n + f.length, 0));
  const all = concat(...frames);

  it('reads every frame with its offset and ends exactly at the end', () => {
    const results = [...new FrameReader(all)];
    expect(results.filter((r) => r.kind === 'frame').map((r) => (r.kind === 'frame' ? [r.offset, r.payload] : []))).toEqual(
      payloads.map((p, i) => [offsets[i], p]),
    );
    expect(results.at(-1)).toEqual({ kind: 'end', offset: all.length });
  });

  it('repeats its terminal result once reached', () => {
    const reader = new FrameReader(frames[0]!);
    expect(reader.next().kind).toBe('frame');
    expect(reader.next()).toEqual({ kind: 'end', offset: frames[0]!.length });
    expect(reader.next()).toEqual({ kind: 'end', offset: frames[0]!.length });
  });

  it('reports a cut inside the last frame as a torn tail at its offset, keeping every complete frame', () => {
    const lastOffset = offsets.at(-1)!;
    for (let cut = lastOffset + 1; cut < all.length; cut++) {
      const { payloads: read, terminal } = readAll(all.subarray(0, cut));
      expect(read).toEqual(payloads.slice(0, -1));
      expect(terminal).toMatchObject({ kind: 'torn-tail', offset: lastOffset, droppedBytes: cut - lastOffset });
      expect((terminal as { reason: string }).reason).toBe(
        cut - lastOffset < FRAME_HEADER_BYTES ? 'header-incomplete' : 'payload-incomplete',
      );
    }
  });

  it('treats a damaged last frame and a zero-filled tail as torn tails', () => {
    const damaged = all.slice();
    damaged[damaged.length - 1]! ^= 0x01;
    expect(readAll(damaged).terminal).toMatchObject({ kind: 'torn-tail', offset: offsets.at(-1), reason: 'payload-checksum' });

    const zeros = concat(all, new Uint8Array(100));
    expect(readAll(zeros)).toMatchObject({
      payloads,
      terminal: { kind: 'torn-tail', offset: all.length, reason: 'header-checksum', droppedBytes: 100 },
    });
  });

  it('reports a damaged middle frame as corrupt with its offset and where valid data resumes', () => {
    const damagedPayload = all.slice();
    damagedPayload[offsets[2]! + FRAME_HEADER_BYTES]! ^= 0x10;
    expect(readAll(damagedPayload)).toEqual({
      payloads: payloads.slice(0, 2),
      terminal: { kind: 'corrupt', offset: offsets[2], defect: 'payload-checksum', nextValidOffset: offsets[3] },
    });

    // A flipped high length bit would claim the rest of the buffer; the header checksum
    // catches it, so it is corruption, not a torn tail.
    const damagedLength = all.slice();
    damagedLength[offsets[1]! + 3]! ^= 0x40;
    expect(readAll(damagedLength)).toEqual({
      payloads: payloads.slice(0, 1),
      terminal: { kind: 'corrupt', offset: offsets[1], defect: 'header-checksum', nextValidOffset: offsets[2] },
    });
  });

  it('reports a checksummed header over the bound as corrupt, even at the tail', () => {
    const big = encodeFrame(new Uint8Array(100));
    expect(readAll(concat(frames[0]!, big.subarray(0, 20)), 50).terminal).toEqual({
      kind: 'corrupt',
      offset: frames[0]!.length,
      defect: 'length-over-limit',
    });
  });

  it('recovers exactly the complete frames from any frame set cut at any point (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 12 }).chain((set) => {
          const total = set.reduce((n, p) => n + p.length + FRAME_HEADER_BYTES, 0);
          return fc.tuple(fc.constant(set), fc.nat({ max: total }));
        }),
        ([set, cut]) => {
          const bytes = concat(...set.map((p) => encodeFrame(p))).subarray(0, cut);
          let end = 0;
          const expected: Uint8Array[] = [];
          for (const p of set) {
            if (end + FRAME_HEADER_BYTES + p.length > cut) break;
            end += FRAME_HEADER_BYTES + p.length;
            expected.push(p);
          }
          const { payloads: read, terminal } = readAll(bytes);
          expect(read).toEqual(expected);
          expect(terminal.kind).toBe(end === cut ? 'end' : 'torn-tail');
          expect(terminal.offset).toBe(end);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects a start offset outside the bytes', () => {
    expect(codeOf(() => new FrameReader(all, { startOffset: all.length + 1 }))).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});
