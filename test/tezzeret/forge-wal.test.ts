import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type PersistedStateError, RecordLog } from '../../src/core/index.js';
import { ForgeWal, type ForgeWalRecord } from '../../src/tezzeret/forge-wal.js';

let dir: string;
let walPath: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forge-wal-'));
  walPath = path.join(dir, 'forge.wal');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CHECKSUM = 'a'.repeat(64);

async function appendRaw(payloads: readonly string[]): Promise<number[]> {
  const log = await RecordLog.open(walPath);
  const offsets: number[] = [];
  for (const payload of payloads) offsets.push((await log.append(new TextEncoder().encode(payload))).offset);
  await log.close();
  return offsets;
}

describe('ForgeWal', () => {
  it("keeps each job's last record across reopen and compacts to the done ones", async () => {
    const wal = await ForgeWal.open(walPath);
    await wal.append({ v: 1, type: 'started', job: 'BP001@dense:8', attempt: 1, strategy: 'standard' });
    await wal.append({ v: 1, type: 'done', job: 'BP001@dense:8', checksum: CHECKSUM, guardDigest: 'g' });
    await wal.append({ v: 1, type: 'started', job: 'BP002@dense:8', attempt: 1, strategy: 'conservative' });
    await wal.append({ v: 1, type: 'failed', job: 'BP003@dense:8', reason: 'timeout' });
    await wal.close();
    const reopened = await ForgeWal.open(walPath);
    expect(await reopened.states()).toEqual(
      new Map([
        ['BP001@dense:8', { type: 'done', checksum: CHECKSUM }],
        ['BP002@dense:8', { type: 'started' }],
        ['BP003@dense:8', { type: 'failed' }],
      ]),
    );
    await reopened.compact();
    expect(await reopened.states()).toEqual(new Map([['BP001@dense:8', { type: 'done', checksum: CHECKSUM }]]));
    await reopened.close();
  });

  it.each([
    ['not JSON', '{"v":1,', '$'],
    ['an unknown record type', '{"v":1,"type":"paused","job":"BP001@dense:8"}', '$.type'],
    ['a done record without a checksum', '{"v":1,"type":"done","job":"BP001@dense:8","guardDigest":"g"}', '$.checksum'],
    ['a started record with an unknown strategy', '{"v":1,"type":"started","job":"j","attempt":1,"strategy":"reckless"}', '$.strategy'],
    ['another version', '{"v":2,"type":"failed","job":"j","reason":"x"}', '$.v'],
  ])('names the file, offset and path of a record that is %s', async (_label, payload, path) => {
    const [, offset] = await appendRaw(['{"v":1,"type":"failed","job":"ok","reason":"x"}', payload]);
    const wal = await ForgeWal.open(walPath);
    let caught: unknown;
    try {
      await wal.states();
    } catch (error) {
      caught = error;
    }
    await wal.close();
    expect(isEsperError(caught, ErrorCode.TEZZERET_FORGE_WAL_INVALID), String(caught)).toBe(true);
    expect((caught as PersistedStateError).details).toMatchObject({ path: walPath, offset });
    expect((caught as PersistedStateError).issues.map((issue) => issue.path)).toEqual([path]);
    expect((caught as Error).message).toContain(walPath);
  });

  it('reads back every record it wrote (property)', async () => {
    const job = fc.string({ minLength: 1, maxLength: 12 });
    const record: fc.Arbitrary<ForgeWalRecord> = fc.oneof(
      fc.record({
        v: fc.constant(1 as const),
        type: fc.constant('started' as const),
        job,
        attempt: fc.integer({ min: 1, max: 9 }),
        strategy: fc.constantFrom('standard' as const, 'conservative' as const),
      }),
      fc.record({
        v: fc.constant(1 as const),
        type: fc.constant('done' as const),
        job,
        checksum: fc.string({ minLength: 1, maxLength: 64 }),
        guardDigest: fc.string({ minLength: 1, maxLength: 64 }),
      }),
      fc.record({ v: fc.constant(1 as const), type: fc.constant('failed' as const), job, reason: fc.string() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(record, { maxLength: 12 }), async (records) => {
        await rm(walPath, { force: true });
        const wal = await ForgeWal.open(walPath);
        for (const r of records) await wal.append(r);
        const expected = new Map<string, unknown>();
        for (const r of records) expected.set(r.job, r.type === 'done' ? { type: 'done', checksum: r.checksum } : { type: r.type });
        expect(await wal.states()).toEqual(expected);
        await wal.close();
      }),
      { numRuns: 25 },
    );
  });
});
