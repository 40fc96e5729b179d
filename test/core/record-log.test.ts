import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type EsperError } from '../../src/core/errors.js';
import { FRAME_HEADER_BYTES, encodeFrame } from '../../src/core/frame.js';
import type { RecordLogOptions } from '../../src/core/record-log-options.js';
import { RecordLog, rewriteTempPath } from '../../src/core/record-log.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Offsets of consecutive frames holding `payloads`, and the end of the last. */
function layout(payloads: readonly Uint8Array[]): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let end = 0;
  for (const p of payloads) {
    offsets.push(end);
    end += FRAME_HEADER_BYTES + p.length;
  }
  return { offsets, end };
}

async function rejection(promise: Promise<unknown>): Promise<EsperError> {
  try {
    await promise;
  } catch (error) {
    if (isEsperError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

let dir: string;
let opened: RecordLog[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'esper-record-log-'));
  opened = [];
});

afterEach(async () => {
  await Promise.allSettled(opened.map((log) => log.close()));
  await rm(dir, { recursive: true, force: true });
});

async function openLog(name = 'wal.log', options: RecordLogOptions = {}): Promise<RecordLog> {
  const log = await RecordLog.open(path.join(dir, name), options);
  opened.push(log);
  return log;
}

async function payloadsOf(log: RecordLog): Promise<string[]> {
  return (await log.readAll()).map((r) => text(r.payload));
}

/** Reopens the file in a fresh log (as a restarted process would) and lists its payloads. */
async function reopenPayloads(name = 'wal.log'): Promise<string[]> {
  const log = await openLog(name);
  const payloads = await payloadsOf(log);
  await log.close();
  return payloads;
}

describe('RecordLog: append and reopen', () => {
  it('creates a missing file, appends durably, and reads back payloads with their offsets after reopen', async () => {
    const log = await openLog();
    expect(log.recovery).toMatchObject({ createdFile: true, records: 0, bytes: 0, truncatedTailBytes: 0 });
    const payloads = ['alpha', '', 'gamma-gamma'].map(ascii);
    const results = [];
    for (const p of payloads) results.push(await log.append(p));
    const { offsets, end } = layout(payloads);
    expect(results.map((r) => r.offset)).toEqual(offsets);
    expect(log.stats()).toMatchObject({ records: 3, bytes: end, appends: 3, commits: 3, pendingAppends: 0 });
    await log.close();

    // The file is exactly the frames, back to back.
    expect(new Uint8Array(await readFile(log.path))).toEqual(concat(payloads.map((p) => encodeFrame(p))));

    const again = await openLog();
    expect(again.recovery).toMatchObject({ createdFile: false, records: 3, bytes: end, truncatedTailBytes: 0 });
    expect((await again.readAll()).map((r) => [r.offset, text(r.payload)])).toEqual(offsets.map((o, i) => [o, text(payloads[i]!)]));
  });

  it('fsyncs once per record in per-record mode', async () => {
    const log = await openLog();
    const before = log.stats().fsyncs;
    await Promise.all(['a', 'b', 'c', 'd'].map((s) => log.append(ascii(s))));
    expect(log.stats().fsyncs - before).toBe(4);
    expect(log.stats().commits).toBe(4);
  });

  it('writes concurrent appends in call order with growing offsets', async () => {
    for (const fsync of ['per-record', 'group'] as const) {
      const log = await openLog(`${fsync}.log`, { fsync });
      const words = Array.from({ length: 40 }, (_, i) => `record-${i}`);
      const results = await Promise.all(words.map((w) => log.append(ascii(w))));
      const offsets = results.map((r) => r.offset);
      expect(offsets).toEqual(layout(words.map(ascii)).offsets);
      expect(await payloadsOf(log)).toEqual(words);
    }
  });

  it('copies the payload at call time', async () => {
    const log = await openLog('copy.log', { fsync: 'group' });
    const buffer = ascii('first');
    const pending = log.append(buffer);
    buffer.set(ascii('XXXXX'));
    await pending;
    expect(await payloadsOf(log)).toEqual(['first']);
  });

  it('rejects a payload over maxRecordBytes with RECORD_TOO_LARGE and stays usable', async () => {
    const log = await openLog('small.log', { maxRecordBytes: 8 });
    const error = await rejection(log.append(new Uint8Array(9)));
    expect(error.code).toBe(ErrorCode.RECORD_TOO_LARGE);
    expect(error.details).toMatchObject({ payloadBytes: 9, maxRecordBytes: 8 });
    await log.append(new Uint8Array(8));
    expect(log.stats().records).toBe(1);
  });

  it('rejects a payload that is not a Uint8Array with INVALID_ARGUMENT', async () => {
    const log = await openLog();
    const error = await rejection(log.append('text' as unknown as Uint8Array));
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe('RecordLog: recovery', () => {
  const words = ['field-report-0', 'field-report-one', 'x', 'the last record, cut short'];
  const payloads = words.map(ascii);
  const { offsets, end } = layout(payloads);
  const lastOffset = offsets.at(-1)!;
  const file = concat(payloads.map((p) => encodeFrame(p)));

  it('recovers exactly the complete records when the file is cut at every byte inside the last record, and appends after', async () => {
    for (let cut = lastOffset + 1; cut < end; cut++) {
      const name = `cut-${cut}.log`;
      await writeFile(path.join(dir, name), file.subarray(0, cut));
      const log = await openLog(name);
      expect(log.recovery, `cut at ${cut}`).toMatchObject({
        records: 3,
        bytes: lastOffset,
        truncatedTailBytes: cut - lastOffset,
        tornTailOffset: lastOffset,
        tornTailReason: cut - lastOffset < FRAME_HEADER_BYTES ? 'header-incomplete' : 'payload-incomplete',
      });
      expect(log.stats().truncatedTailBytes).toBe(cut - lastOffset);
      expect((await stat(log.path)).size).toBe(lastOffset);
      expect(await payloadsOf(log)).toEqual(words.slice(0, 3));

      expect(await log.append(ascii('after recovery'))).toEqual({ offset: lastOffset });
      await log.close();
      expect(await reopenPayloads(name)).toEqual([...words.slice(0, 3), 'after recovery']);
    }
  });

  it('keeps a file that ends exactly after a record untouched', async () => {
    await writeFile(path.join(dir, 'clean.log'), file);
    const log = await openLog('clean.log');
    expect(log.recovery).toMatchObject({ records: 4, truncatedTailBytes: 0 });
    expect(log.recovery.tornTailReason).toBeUndefined();
  });

  it('treats a last record whose payload checksum fails as a torn write and cuts it', async () => {
    const damaged = file.slice();
    damaged[end - 2]! ^= 0xff;
    await writeFile(path.join(dir, 'torn.log'), damaged);
    const log = await openLog('torn.log');
    expect(log.recovery).toMatchObject({
      records: 3,
      truncatedTailBytes: end - lastOffset,
      tornTailOffset: lastOffset,
      tornTailReason: 'payload-checksum',
    });
    expect(await payloadsOf(log)).toEqual(words.slice(0, 3));
  });

  it('cuts a zero-filled tail (a file extended but never written)', async () => {
    await writeFile(path.join(dir, 'zeros.log'), concat([file, new Uint8Array(4096)]));
    const log = await openLog('zeros.log');
    expect(log.recovery).toMatchObject({ records: 4, bytes: end, truncatedTailBytes: 4096, tornTailReason: 'header-checksum' });
    expect((await stat(log.path)).size).toBe(end);
  });

  it('fails the open with RECORD_LOG_CORRUPT naming the offset of a damaged middle record, and leaves the file alone', async () => {
    for (const [label, byte] of [
      ['payload byte', offsets[1]! + FRAME_HEADER_BYTES + 3],
      ['length high bit', offsets[1]! + 3],
      ['payload checksum', offsets[1]! + 5],
      ['header checksum', offsets[1]! + 9],
    ] as const) {
      const damaged = file.slice();
      damaged[byte]! ^= 0x80;
      const name = `corrupt-${label.replace(/ /g, '-')}.log`;
      await writeFile(path.join(dir, name), damaged);
      const error = await rejection(RecordLog.open(path.join(dir, name)));
      expect(error.code, label).toBe(ErrorCode.RECORD_LOG_CORRUPT);
      expect(error.details, label).toMatchObject({ offset: offsets[1], nextValidOffset: offsets[2] });
      expect(error.message).toContain(`offset ${offsets[1]}`);
      expect(new Uint8Array(await readFile(path.join(dir, name)))).toEqual(damaged);
    }
  });

  it('fails the open with RECORD_TOO_LARGE when a record declares more than maxRecordBytes', async () => {
    await writeFile(path.join(dir, 'big.log'), file);
    const error = await rejection(RecordLog.open(path.join(dir, 'big.log'), { maxRecordBytes: 10 }));
    expect(error.code).toBe(ErrorCode.RECORD_TOO_LARGE);
    expect(error.details).toMatchObject({ offset: offsets[0], payloadBytes: payloads[0]!.length, maxRecordBytes: 10 });
  });

  it('recovers exactly the prefix of fully written records for any record set cut at any point (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .array(fc.uint8Array({ maxLength: 80 }), { maxLength: 10 })
          .chain((set) => fc.tuple(fc.constant(set), fc.nat({ max: layout(set).end }))),
        async ([set, cut]) => {
          const name = `prop-${run++}.log`;
          await writeFile(path.join(dir, name), concat(set.map((p) => encodeFrame(p))).subarray(0, cut));
          const complete = layout(set).offsets.filter((o, i) => o + FRAME_HEADER_BYTES + set[i]!.length <= cut);
          const keptEnd = layout(set.slice(0, complete.length)).end;
          const log = await RecordLog.open(path.join(dir, name));
          try {
            expect(log.recovery).toMatchObject({ records: complete.length, bytes: keptEnd, truncatedTailBytes: cut - keptEnd });
            const records = await log.readAll();
            expect(records.map((r) => r.offset)).toEqual(complete);
            expect(records.map((r) => r.payload)).toEqual(set.slice(0, complete.length));
            expect((await stat(log.path)).size).toBe(keptEnd);
          } finally {
            await log.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reports any single-bit flip before the last record as corruption at that record, and one in the last as a torn tail (property)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .array(fc.uint8Array({ maxLength: 60 }), { minLength: 1, maxLength: 8 })
          .chain((set) => fc.tuple(fc.constant(set), fc.nat({ max: layout(set).end * 8 - 1 }))),
        async ([set, bit]) => {
          const name = `flip-${run++}.log`;
          const bytes = concat(set.map((p) => encodeFrame(p)));
          bytes[bit >> 3]! ^= 1 << (bit & 7);
          await writeFile(path.join(dir, name), bytes);
          const { offsets: starts } = layout(set);
          const hit = starts.findLastIndex((o) => o <= bit >> 3);
          const opening = RecordLog.open(path.join(dir, name));
          if (hit < set.length - 1) {
            const error = await rejection(opening);
            expect(error.code).toBe(ErrorCode.RECORD_LOG_CORRUPT);
            expect(error.details.offset).toBe(starts[hit]);
            return;
          }
          const log = await opening;
          try {
            expect(log.recovery).toMatchObject({ records: set.length - 1, tornTailOffset: starts[hit] });
            expect((await log.readAll()).map((r) => r.payload)).toEqual(set.slice(0, -1));
          } finally {
            await log.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('RecordLog: group commit', () => {
  it('commits many concurrent appends with far fewer fsyncs, each durable when its promise resolves', async () => {
    const log = await openLog('group.log', { fsync: 'group' });
    const fsyncsBefore = log.stats().fsyncs;
    const count = 200;
    const seenAtResolve: boolean[] = [];
    const appends = Array.from({ length: count }, (_, i) => {
      const payload = ascii(`report-${i}`);
      return log.append(payload).then((result) => {
        // When the promise resolves, the record's bytes are already counted as synced.
        const stats = log.stats();
        seenAtResolve.push(stats.fsyncs > fsyncsBefore && stats.bytes >= result.offset + FRAME_HEADER_BYTES + payload.length);
        return result;
      });
    });
    expect(log.stats().pendingAppends).toBe(count);
    await Promise.all(appends);
    const stats = log.stats();
    expect(stats.appends).toBe(count);
    expect(stats.pendingAppends).toBe(0);
    expect(stats.commits).toBeLessThanOrEqual(count / 10);
    expect(stats.fsyncs - fsyncsBefore).toBe(stats.commits);
    expect(seenAtResolve).toEqual(Array(count).fill(true));
    await log.close();
    expect(await reopenPayloads('group.log')).toEqual(Array.from({ length: count }, (_, i) => `report-${i}`));
  });

  it('writes a full batch at once without waiting for the delay', async () => {
    const log = await openLog('full.log', { fsync: 'group', groupCommitMaxRecords: 4, groupCommitMaxDelayMs: 60_000 });
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((s) => log.append(ascii(s))));
    expect(results).toHaveLength(4);
    expect(log.stats().commits).toBe(1);
  });

  it('flush() resolves once earlier appends are durable, without waiting for the delay', async () => {
    const log = await openLog('flush.log', { fsync: 'group', groupCommitMaxDelayMs: 60_000 });
    const pending = log.append(ascii('waiting'));
    await log.flush();
    expect(log.stats()).toMatchObject({ appends: 1, pendingAppends: 0 });
    await expect(pending).resolves.toEqual({ offset: 0 });
  });
});

describe('RecordLog: close', () => {
  it('flushes a pending group commit, is idempotent, and refuses later appends with RECORD_LOG_CLOSED', async () => {
    const log = await openLog('close.log', { fsync: 'group', groupCommitMaxDelayMs: 60_000 });
    const pending = log.append(ascii('in flight at close'));
    const first = log.close();
    expect(log.close()).toBe(first);
    expect(log.state).toBe('closing');
    await first;
    expect(log.state).toBe('closed');
    await expect(pending).resolves.toEqual({ offset: 0 });
    const error = await rejection(log.append(ascii('too late')));
    expect(error.code).toBe(ErrorCode.RECORD_LOG_CLOSED);
    await expect(log.rewrite(() => true)).rejects.toMatchObject({ code: ErrorCode.RECORD_LOG_CLOSED });
    expect(await reopenPayloads('close.log')).toEqual(['in flight at close']);
  });

  it('closes through Symbol.asyncDispose', async () => {
    let outer: RecordLog | undefined;
    {
      await using log = await RecordLog.open(path.join(dir, 'dispose.log'), { fsync: 'group' });
      outer = log;
      void log.append(ascii('disposed with me')).catch(() => undefined);
    }
    expect(outer.state).toBe('closed');
    expect(await reopenPayloads('dispose.log')).toEqual(['disposed with me']);
  });
});

describe('RecordLog: rewrite', () => {
  it('keeps exactly the survivors (replaced payloads included), renumbers them, and keeps appending to the new file', async () => {
    const log = await openLog('retain.log', { fsync: 'group' });
    await Promise.all(['old-1', 'keep-2', 'old-3', 'edit-4', 'keep-5'].map((s) => log.append(ascii(s))));
    const seen: number[] = [];
    const result = await log.rewrite((payload, offset) => {
      seen.push(offset);
      const s = text(payload);
      if (s.startsWith('old')) return false;
      if (s.startsWith('edit')) return ascii('edited-4');
      return true;
    });
    const survivors = ['keep-2', 'edited-4', 'keep-5'];
    expect(seen).toEqual(layout(['old-1', 'keep-2', 'old-3', 'edit-4', 'keep-5'].map(ascii)).offsets);
    expect(result).toEqual({
      kept: 3,
      dropped: 2,
      bytesBefore: layout(['old-1', 'keep-2', 'old-3', 'edit-4', 'keep-5'].map(ascii)).end,
      bytesAfter: layout(survivors.map(ascii)).end,
    });
    expect(log.stats()).toMatchObject({ records: 3, bytes: result.bytesAfter, rewrites: 1 });
    expect((await log.readAll()).map((r) => [r.offset, text(r.payload)])).toEqual(
      survivors.map((s, i) => [layout(survivors.map(ascii)).offsets[i], s]),
    );

    expect(await log.append(ascii('after-rewrite'))).toEqual({ offset: result.bytesAfter });
    await log.close();
    expect(await readdir(dir)).toEqual(['retain.log']);
    expect(await reopenPayloads('retain.log')).toEqual([...survivors, 'after-rewrite']);
  });

  it('includes appends called before rewrite() and not those called after it', async () => {
    const log = await openLog('order.log', { fsync: 'group', groupCommitMaxDelayMs: 60_000 });
    const before = log.append(ascii('before'));
    const offered: string[] = [];
    const rewriting = log.rewrite((payload) => {
      offered.push(text(payload));
      return false;
    });
    const after = log.append(ascii('after'));
    await Promise.all([before, rewriting, after]);
    expect(offered).toEqual(['before']);
    expect(await payloadsOf(log)).toEqual(['after']);
  });

  it('leaves the log unchanged and removes the temp file when keep() throws', async () => {
    const log = await openLog('throws.log');
    await log.append(ascii('precious'));
    const boom = new Error('retention policy failed');
    await expect(
      log.rewrite(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(log.state).toBe('open');
    expect(await readdir(dir)).toEqual(['throws.log']);
    await log.append(ascii('still writable'));
    expect(await payloadsOf(log)).toEqual(['precious', 'still writable']);
  });

  it('rejects a keep() result that is neither boolean nor bytes, and one over the bound', async () => {
    const log = await openLog('bad-keep.log', { maxRecordBytes: 16 });
    await log.append(ascii('x'));
    await expect(log.rewrite(() => 'yes' as unknown as boolean)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(log.rewrite(() => new Uint8Array(17))).rejects.toMatchObject({ code: ErrorCode.RECORD_TOO_LARGE });
    expect(await payloadsOf(log)).toEqual(['x']);
    expect(await readdir(dir)).toEqual(['bad-keep.log']);
  });

  it('after a crash before the rename, the old file is intact and the next open deletes the stray temp file', async () => {
    const log = await openLog('crash.log');
    for (const s of ['one', 'two', 'three']) await log.append(ascii(s));
    await log.close();
    // What a rewrite interrupted before its rename leaves behind: a partial temp file.
    const tempPath = rewriteTempPath(log.path);
    await writeFile(tempPath, encodeFrame(ascii('two')).subarray(0, 7));

    const reopened = await openLog('crash.log');
    expect(reopened.recovery).toMatchObject({ removedTempFile: true, records: 3, truncatedTailBytes: 0 });
    expect(await payloadsOf(reopened)).toEqual(['one', 'two', 'three']);
    expect(await readdir(dir)).toEqual(['crash.log']);
  });
});

describe('RecordLog: reading', () => {
  it('iterates the records durable when iteration starts, while appends continue', async () => {
    const log = await openLog('iter.log', { fsync: 'group' });
    await Promise.all(['a', 'b'].map((s) => log.append(ascii(s))));
    const seen: string[] = [];
    for await (const record of log.records()) {
      seen.push(text(record.payload));
      if (seen.length === 1) await log.append(ascii('c'));
    }
    expect(seen).toEqual(['a', 'b']);
    expect(await payloadsOf(log)).toEqual(['a', 'b', 'c']);
  });

  it('reports bytes damaged after open as RECORD_LOG_CORRUPT with the offset', async () => {
    const log = await openLog('rot.log');
    await log.append(ascii('first'));
    const { offset } = await log.append(ascii('second'));
    const bytes = new Uint8Array(await readFile(log.path));
    bytes[offset + FRAME_HEADER_BYTES]! ^= 1;
    await writeFile(log.path, bytes);
    const error = await rejection(log.readAll());
    expect(error.code).toBe(ErrorCode.RECORD_LOG_CORRUPT);
    expect(error.details.offset).toBe(offset);

    await truncate(log.path, offset + 4);
    expect((await rejection(log.readAll())).details).toMatchObject({ offset, defect: 'truncated' });
  });

  it('reads records larger than its read window', async () => {
    const log = await openLog('large.log', { fsync: 'group' });
    const big = Uint8Array.from({ length: 3 * 1024 * 1024 + 5 }, (_, i) => (i * 7) & 0xff);
    await Promise.all([log.append(ascii('small')), log.append(big), log.append(ascii('tail'))]);
    await log.close();
    const again = await openLog('large.log');
    const records = await again.readAll();
    expect(records.map((r) => r.payload.length)).toEqual([5, big.length, 4]);
    expect(Buffer.from(records[1]!.payload).equals(big)).toBe(true);
  });
});

describe('RecordLog: write failures', () => {
  // /dev/full accepts opens and fails every write with ENOSPC: a real device, no fakes.
  const haveDevFull = existsSync('/dev/full');

  it.skipIf(!haveDevFull)('rejects the failed batch and every later append with RECORD_LOG_IO_FAILED and turns failed', async () => {
    const log = await RecordLog.open('/dev/full', { fsync: 'group' });
    opened.push(log);
    const results = await Promise.allSettled([log.append(ascii('a')), log.append(ascii('b'))]);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason as EsperError;
      expect(error.code).toBe(ErrorCode.RECORD_LOG_IO_FAILED);
      expect(error.details).toMatchObject({ errno: 'ENOSPC', offset: 0, records: 2 });
    }
    expect(log.state).toBe('failed');
    expect(log.stats()).toMatchObject({ appends: 0, pendingAppends: 0, records: 0 });
    expect((await rejection(log.append(ascii('c')))).code).toBe(ErrorCode.RECORD_LOG_IO_FAILED);
    expect((await rejection(log.flush())).code).toBe(ErrorCode.RECORD_LOG_IO_FAILED);
    await log.close();
    expect(log.state).toBe('closed');
  });
});

describe('RecordLog: open errors', () => {
  it('wraps file-system failures at open in RECORD_LOG_IO_FAILED with the errno', async () => {
    const error = await rejection(RecordLog.open(path.join(dir, 'missing-dir', 'wal.log')));
    expect(error.code).toBe(ErrorCode.RECORD_LOG_IO_FAILED);
    expect(error.details).toMatchObject({ errno: 'ENOENT' });
  });
});
