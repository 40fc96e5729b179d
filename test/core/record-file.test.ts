import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { encodeFrame, FRAME_HEADER_BYTES } from '../../src/core/frame.js';
import { asLogError, readCommittedFrames, scanForRecovery, writeFully } from '../../src/core/record-file.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const MAX = 1 << 20;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'esper-record-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `bytes` to a fresh file and scans it. */
async function scan(bytes: Uint8Array) {
  const file = path.join(dir, 'log');
  await writeFile(file, bytes);
  const handle = await open(file, 'r');
  try {
    return await scanForRecovery(handle, file, bytes.length, MAX);
  } finally {
    await handle.close();
  }
}

function frames(...payloads: string[]): Uint8Array {
  return Buffer.concat(payloads.map((p) => encodeFrame(ascii(p))));
}

describe('scanForRecovery', () => {
  it('counts complete records and reports no torn tail for a clean file', async () => {
    const bytes = frames('a', 'bb', 'ccc');
    expect(await scan(bytes)).toEqual({ records: 3, validEnd: bytes.length });
  });

  it('reports a tail cut inside a header or a payload as torn, at the start of that record', async () => {
    const two = frames('first', 'second');
    const firstEnd = FRAME_HEADER_BYTES + 5;
    expect(await scan(two.subarray(0, firstEnd + 3))).toEqual({
      records: 1,
      validEnd: firstEnd,
      torn: { offset: firstEnd, reason: 'header-incomplete' },
    });
    expect(await scan(two.subarray(0, two.length - 1))).toEqual({
      records: 1,
      validEnd: firstEnd,
      torn: { offset: firstEnd, reason: 'payload-incomplete' },
    });
  });

  it('fails with RECORD_LOG_CORRUPT naming both offsets when a damaged record has a valid one after it', async () => {
    const bytes = frames('one', 'two', 'three');
    const second = FRAME_HEADER_BYTES + 3;
    bytes[second + FRAME_HEADER_BYTES] = (bytes[second + FRAME_HEADER_BYTES] as number) ^ 0xff;
    const error = await scan(bytes).catch((e: unknown) => e);
    expect(isEsperError(error, ErrorCode.RECORD_LOG_CORRUPT)).toBe(true);
    expect((error as { details: object }).details).toMatchObject({ offset: second, nextValidOffset: second * 2 });
  });
});

describe('readCommittedFrames', () => {
  it('yields private copies of every payload with its offset', async () => {
    const file = path.join(dir, 'log');
    const bytes = frames('x', 'yy');
    await writeFile(file, bytes);
    const handle = await open(file, 'r');
    const records = [];
    for await (const record of readCommittedFrames(handle, file, bytes.length, MAX)) records.push(record);
    await handle.close();
    expect(records.map((r) => [r.offset, new TextDecoder().decode(r.payload)])).toEqual([
      [0, 'x'],
      [FRAME_HEADER_BYTES + 1, 'yy'],
    ]);
  });

  it('treats a committed range that ends early as corruption, never as a torn tail', async () => {
    const file = path.join(dir, 'log');
    const bytes = frames('x', 'yy');
    await writeFile(file, bytes.subarray(0, bytes.length - 1));
    const handle = await open(file, 'r');
    const reading = (async () => {
      for await (const _ of readCommittedFrames(handle, file, bytes.length, MAX));
    })();
    await expect(reading).rejects.toMatchObject({ code: ErrorCode.RECORD_LOG_CORRUPT, details: { offset: FRAME_HEADER_BYTES + 1 } });
    await handle.close();
  });
});

describe('writeFully and asLogError', () => {
  it('writes every buffer at the position, empty ones included', async () => {
    const file = path.join(dir, 'out');
    const handle = await open(file, 'w+');
    const written = await writeFully(handle, [ascii('ab'), new Uint8Array(0), ascii('cde')], 0);
    const back = Buffer.alloc(5);
    await handle.read(back, 0, 5, 0);
    await handle.close();
    expect(written).toBe(5);
    expect(back.toString()).toBe('abcde');
  });

  it('wraps a file-system error in RECORD_LOG_IO_FAILED naming the path and errno, and passes Esper errors through', () => {
    const fsError = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const wrapped = asLogError(fsError, 'append', '/var/x.wal');
    expect(wrapped).toMatchObject({ code: ErrorCode.RECORD_LOG_IO_FAILED, details: { path: '/var/x.wal', errno: 'ENOSPC' } });
    const typed = asLogError(wrapped, 'close', '/var/x.wal');
    expect(typed).toBe(wrapped);
  });
});
