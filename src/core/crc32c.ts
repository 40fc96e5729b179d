/**
 * CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), the checksum of every record-log
 * frame. Table-driven slicing-by-8 in plain TypeScript: Node's `zlib.crc32` computes the
 * IEEE polynomial, and a native call costs more than hashing a small record.
 */

const POLY_REFLECTED = 0x82f63b78;

/** 8 tables of 256 entries: table k advances a byte through k further zero bytes. */
const TABLES: Int32Array = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/**
 * CRC-32C of `bytes`, as an unsigned 32-bit integer.
 *
 * `seed` continues a running checksum: `crc32c(b, crc32c(a))` equals the CRC-32C of `a`
 * followed by `b`, so large inputs can be hashed in pieces.
 *
 * @param bytes - data to checksum
 * @param seed - the CRC-32C of the data that precedes `bytes` @default 0 (no preceding data)
 */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  const t = TABLES;
  const b = bytes;
  const n = b.length;
  const end8 = n - (n & 7);
  let c = ~seed;
  let i = 0;
  // The non-null assertions below are in bounds by construction (i + 7 < end8 ≤ n, and
  // every table index is < 2048); `noUncheckedIndexedAccess` cannot see that.
  while (i < end8) {
    const lo = c ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    c =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + b[i + 4]!]! ^
      t[512 + b[i + 5]!]! ^
      t[256 + b[i + 6]!]! ^
      t[b[i + 7]!]!;
    i += 8;
  }
  while (i < n) c = t[(c ^ b[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
