/**
 * TFRecord framing, the container of TensorBoard event files: each record is its length
 * (uint64, little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked
 * CRC-32C of the data. This is TensorFlow's format, written from its description
 * (`tensorflow/core/lib/io/record_writer.cc`), not one of Esper's contracts.
 */
import { crc32c, ErrorCode, EsperError } from '../../core/index.js';

/** Bytes of a record's framing around its data: length, length CRC, data CRC. */
export const TFRECORD_OVERHEAD_BYTES = 16;

const MASK_DELTA = 0xa282ead8;

/** TensorFlow's masked CRC-32C: the CRC rotated right by 15 bits plus a constant (mod 2^32). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

/** One record framed for a TFRecord file. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(TFRECORD_OVERHEAD_BYTES + data.length);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** A record read back, with the byte offset of its framing in the file. */
export interface TfRecord {
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * Every record of a TFRecord file's bytes, each length and both CRCs checked.
 * @param source - names the file in errors
 * @throws EsperError `NISSA_TENSORBOARD_CORRUPT` at the first truncated record or CRC mismatch
 */
export function readRecords(bytes: Uint8Array, source: string): TfRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: TfRecord[] = [];
  let offset = 0;
  const corrupt = (what: string): EsperError =>
    new EsperError(ErrorCode.NISSA_TENSORBOARD_CORRUPT, `${source}: ${what} in the record at byte ${offset}`, {
      details: { file: source, offset },
    });
  while (offset < bytes.length) {
    if (bytes.length - offset < 12) throw corrupt('a truncated header');
    if (view.getUint32(offset + 8, true) !== maskedCrc32c(bytes.subarray(offset, offset + 8))) throw corrupt('a length CRC mismatch');
    const length = view.getBigUint64(offset, true);
    const available = BigInt(bytes.length - offset - TFRECORD_OVERHEAD_BYTES);
    if (length > available) throw corrupt(`a length of ${length} bytes past the end of the file`);
    const start = offset + 12;
    const data = bytes.subarray(start, start + Number(length));
    if (view.getUint32(start + data.length, true) !== maskedCrc32c(data)) throw corrupt('a data CRC mismatch');
    records.push({ offset, data });
    offset = start + data.length + 4;
  }
  return records;
}
