/**
 * TFRecord framing: TensorFlow's masked CRC-32C, and records that round-trip through the
 * reader while any flipped bit is caught.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c, ErrorCode } from '../../../src/core/index.js';
import { frameRecord, maskedCrc32c, readRecords, TFRECORD_OVERHEAD_BYTES } from '../../../src/nissa/index.js';
import { thrownBy } from '../../support/thrown.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('masked CRC-32C', () => {
  it('computes CRC-32C (Castagnoli) on the standard check vectors', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it("masks as TensorFlow's crc32c::Mask does: rotate right 15, add 0xa282ead8", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const crc = crc32c(bytes);
        const rotated = ((crc >>> 15) | (crc << 17)) >>> 0;
        expect(maskedCrc32c(bytes)).toBe((rotated + 0xa282ead8) % 2 ** 32);
      }),
    );
    // crc32c('123456789') = 0xe3069283 rotated right by 15 is 0x2507c60d; + 0xa282ead8.
    expect(maskedCrc32c(ascii('123456789'))).toBe((0x2507c60d + 0xa282ead8) % 2 ** 32);
  });
});

describe('TFRecord framing', () => {
  it('frames each record as length (uint64 LE), its masked CRC, the data and its masked CRC', () => {
    const data = ascii('hello');
    const framed = frameRecord(data);
    const view = new DataView(framed.buffer);
    expect(framed.length).toBe(data.length + TFRECORD_OVERHEAD_BYTES);
    expect(view.getBigUint64(0, true)).toBe(5n);
    expect(view.getUint32(8, true)).toBe(maskedCrc32c(framed.subarray(0, 8)));
    expect(framed.subarray(12, 17)).toEqual(data);
    expect(view.getUint32(17, true)).toBe(maskedCrc32c(data));
  });

  it('reads back any sequence of records it framed, with their offsets', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), (records) => {
        const file = Buffer.concat(records.map(frameRecord));
        const read = readRecords(file, 'mem');
        expect(read.map((r) => Array.from(r.data))).toEqual(records.map((r) => Array.from(r)));
        let offset = 0;
        read.forEach((r, i) => {
          expect(r.offset).toBe(offset);
          offset += (records[i]?.length ?? 0) + TFRECORD_OVERHEAD_BYTES;
        });
      }),
    );
  });

  it('detects any single flipped bit, naming the file and the record', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 100 }), { minLength: 1, maxLength: 5 }), fc.nat(), (records, at) => {
        const file = Buffer.concat(records.map(frameRecord));
        const bit = at % (file.length * 8);
        file[bit >> 3]! ^= 1 << (bit & 7);
        const error = thrownBy(() => readRecords(file, 'events.out.tfevents.1.test'), ErrorCode.NISSA_TENSORBOARD_CORRUPT);
        expect(error.message).toContain('events.out.tfevents.1.test');
        expect(error.details['file']).toBe('events.out.tfevents.1.test');
      }),
    );
  });

  it('reports a truncated file', () => {
    const file = Buffer.concat([frameRecord(ascii('one')), frameRecord(ascii('two'))]);
    for (const cut of [1, 4, 12, 18]) {
      const error = thrownBy(() => readRecords(file.subarray(0, file.length - cut), 'f'), ErrorCode.NISSA_TENSORBOARD_CORRUPT);
      expect(error.details['offset']).toBe(19);
    }
  });
});
