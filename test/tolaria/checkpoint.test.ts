import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, ErrorCode, isEsperError, RecordLog, type EsperError } from '../../src/core/index.js';
import {
  CHECKPOINT_LOG_FILE,
  CheckpointStore,
  decodeCheckpoint,
  describeDiscarded,
  encodeCheckpoint,
  type CheckpointHeader,
} from '../../src/tolaria/checkpoint.js';

function header(globalStep: number): CheckpointHeader {
  return {
    trainingRunId: 'run-ckpt',
    hostId: 'mlp',
    globalStep,
    cursor: { seed: 3, epoch: 1, position: 128 },
    rng: [1, 2, 3, 4],
    optimizer: { kind: 'adam', learningRate: 0.001, variableNames: ['mlp/hidden1/kernel'] },
    hookSites: [],
    progress: {
      loss: { mean: 0.5, variance: 0.01, count: 10 },
      gradNorm: { mean: 1, variance: 0, count: 10 },
      lastLoss: 0.4,
      divergence: { window: [0.5, 0.4], panics: 0 },
      lrScale: 1,
      epoch: {
        lossSum: 1,
        samples: 2,
        correct: 1,
        gradNormSum: 1,
        steps: 1,
        hookMsSum: 0,
        maxHookMs: 0,
        lastHookMs: 0,
        trainMsSum: 3,
        failureReason: '',
      },
      counters: {
        epochsTotal: 1,
        epochsFailed: 0,
        failedEpochStreak: 0,
        nonFiniteLossTotal: 0,
        lastValidationLoss: 0.3,
        lastValidationAccuracy: 0.9,
      },
    },
    createdAtMs: 1_700_000_000_000,
  };
}

const weights = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % 251);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esper-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkpoint records', () => {
  it('round-trip header and blobs, identified by the SHA-256 of the body', () => {
    const { payload, sha256 } = encodeCheckpoint(header(7), weights(1000), weights(300));
    const decoded = decodeCheckpoint(payload);
    expect(decoded.header).toEqual(header(7));
    expect(decoded.weights).toEqual(weights(1000));
    expect(decoded.optimizerState).toEqual(weights(300));
    expect(decoded.sha256).toBe(sha256);
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a record whose contents changed after encoding (SHA-256 mismatch)', () => {
    const { payload } = encodeCheckpoint(header(7), weights(1000), weights(300));
    payload[payload.length - 10] = (payload[payload.length - 10] as number) ^ 0xff;
    let caught: unknown;
    try {
      decodeCheckpoint(payload);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.TOLARIA_CHECKPOINT_CORRUPT)).toBe(true);
    expect(() => decodeCheckpoint(payload.subarray(0, 20))).toThrow(/truncated/);
    const wrongMagic = payload.slice();
    wrongMagic[0] = 0;
    expect(() => decodeCheckpoint(wrongMagic)).toThrow(/magic/);
  });
});

describe('checkpoint headers (zod)', () => {
  /** A record whose SHA-256 verifies but whose header JSON is `edit(header)`. */
  function recordWith(edit: (h: Record<string, unknown>) => void): Uint8Array {
    const { payload } = encodeCheckpoint(header(7), weights(10), weights(4));
    const view = new DataView(payload.buffer);
    const length = view.getUint32(40, true);
    const json = JSON.parse(new TextDecoder().decode(payload.subarray(44, 44 + length))) as Record<string, unknown>;
    edit(json);
    const headerBytes = new TextEncoder().encode(JSON.stringify(json));
    const body = new Uint8Array(4 + headerBytes.length + 14);
    new DataView(body.buffer).setUint32(0, headerBytes.length, true);
    body.set(headerBytes, 4);
    body.set(payload.subarray(44 + length), 4 + headerBytes.length);
    const out = new Uint8Array(40 + body.length);
    out.set(payload.subarray(0, 8));
    out.set(createHash('sha256').update(body).digest(), 8);
    out.set(body, 40);
    return out;
  }

  it.each([
    ['a step that is not a number', (h: Record<string, unknown>) => (h['globalStep'] = '7'), '$.globalStep'],
    [
      'an unknown optimizer',
      (h: Record<string, unknown>) => ((h['optimizer'] as Record<string, unknown>)['kind'] = 'lion'),
      '$.optimizer.kind',
    ],
    [
      'a missing counter',
      (h: Record<string, unknown>) =>
        delete ((h['progress'] as Record<string, Record<string, unknown>>)['counters'] as Record<string, unknown>)['epochsTotal'],
      '$.progress.counters.epochsTotal',
    ],
    ['an unknown field', (h: Record<string, unknown>) => (h['extra'] = 1), '$'],
    ['an RNG word out of range', (h: Record<string, unknown>) => ((h['rng'] as number[])[2] = -1), '$.rng[2]'],
  ])('refuses a verified record with %s (TOLARIA_CHECKPOINT_CORRUPT naming the file and the field)', (_what, edit, field) => {
    const source = { file: '/var/esper/run-1/checkpoints.wal', offset: 4096 };
    let caught: unknown;
    try {
      decodeCheckpoint(recordWith(edit), source);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.TOLARIA_CHECKPOINT_CORRUPT)).toBe(true);
    expect((caught as EsperError).details).toMatchObject({ file: source.file, offset: 4096, reason: 'malformed', field });
    expect((caught as Error).message).toContain('checkpoint record at offset 4096 of /var/esper/run-1/checkpoints.wal');
    expect((caught as Error).message).toContain(field);
  });

  it('accepts the record as written (the edit helper itself is sound)', () => {
    expect(decodeCheckpoint(recordWith(() => undefined)).header).toEqual(header(7));
  });

  it('detects every single-byte change anywhere in a record (property)', () => {
    const { payload } = encodeCheckpoint(header(3), weights(40), weights(12));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: payload.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const damaged = payload.slice();
        damaged[at] = (damaged[at] as number) ^ mask;
        expect(() => decodeCheckpoint(damaged)).toThrow(expect.objectContaining({ code: ErrorCode.TOLARIA_CHECKPOINT_CORRUPT }));
      }),
      { numRuns: 300 },
    );
  });
});

/** Appends a record of `step` that frames correctly (valid CRC) but fails its SHA-256. */
async function appendTamperedRecord(step: number): Promise<void> {
  const log = await RecordLog.open(path.join(dir, CHECKPOINT_LOG_FILE));
  const { payload } = encodeCheckpoint(header(step), weights(64), weights(16));
  payload[payload.length - 1] = (payload[payload.length - 1] as number) ^ 1;
  await log.append(payload);
  await log.close();
}

describe('CheckpointStore', () => {
  it('keeps only the last N checkpoints and returns the newest', async () => {
    const store = await CheckpointStore.open(dir, { keepLast: 2 });
    const results = [];
    for (const step of [10, 20, 30, 40]) results.push(await store.write(header(step), weights(64), weights(16)));
    expect(results.map((r) => r.kept)).toEqual([1, 2, 2, 2]);
    expect(store.count).toBe(2);
    const latest = await store.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(40);
    expect(latest?.discarded).toEqual([]);
    await store.close();
    // Reopened: still two, still the newest first; no temp files left behind.
    const reopened = await CheckpointStore.open(dir, { keepLast: 2 });
    expect(reopened.count).toBe(2);
    expect((await reopened.latest())?.checkpoint.header.globalStep).toBe(40);
    await reopened.close();
    expect(await readdir(dir)).toEqual([CHECKPOINT_LOG_FILE]);
  });

  it('passes over a newer record that frames correctly but fails its SHA-256', async () => {
    const store = await CheckpointStore.open(dir);
    await store.write(header(10), weights(64), weights(16));
    await store.close();
    await appendTamperedRecord(20);
    const reopened = await CheckpointStore.open(dir);
    const latest = await reopened.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(10);
    expect(latest?.discarded).toEqual([
      expect.objectContaining({
        file: reopened.path,
        record: 2,
        reason: 'sha256',
        claimedStep: 20,
        detail: 'SHA-256 does not match its contents',
      }),
    ]);
    await reopened.close();
  });

  it('recovers from a torn last record (a crash mid-write) by keeping the previous checkpoint', async () => {
    const store = await CheckpointStore.open(dir);
    await store.write(header(10), weights(64), weights(16));
    await store.close();
    const { payload } = encodeCheckpoint(header(20), weights(64), weights(16));
    await appendFile(path.join(dir, CHECKPOINT_LOG_FILE), encodeFrame(payload).subarray(0, 50));
    const reopened = await CheckpointStore.open(dir);
    const latest = await reopened.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(10);
    expect(latest?.discarded).toEqual([expect.objectContaining({ record: 2, reason: 'truncated', bytes: 50 })]);
    // A write starts a new history: the cut tail is no longer reported.
    await reopened.write(header(30), weights(64), weights(16));
    expect((await reopened.latest())?.discarded).toEqual([]);
    await reopened.close();
  });

  it('cuts a last record whose bytes changed on disk (CRC) and reports it with its offset', async () => {
    const store = await CheckpointStore.open(dir);
    await store.write(header(10), weights(64), weights(16));
    const second = await store.write(header(20), weights(64), weights(16));
    await store.close();
    const file = path.join(dir, CHECKPOINT_LOG_FILE);
    const bytes = await readFile(file);
    const lastOffset = bytes.length - second.bytes - 12;
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0x10;
    await writeFile(file, bytes);
    const reopened = await CheckpointStore.open(dir);
    const latest = await reopened.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(10);
    expect(latest?.discarded).toEqual([
      { file, record: 2, offset: lastOffset, bytes: second.bytes + 12, reason: 'crc', detail: expect.stringContaining('CRC-32C') },
    ]);
    expect(describeDiscarded(latest!.discarded[0]!)).toContain(`checkpoint record 2 at offset ${lastOffset} of ${file}`);
    await reopened.close();
  });

  it('refuses a log in which no record verifies with a typed error naming the file', async () => {
    await appendTamperedRecord(20);
    const store = await CheckpointStore.open(dir);
    const error = await store.latest().catch((e: unknown) => e);
    expect(isEsperError(error, ErrorCode.TOLARIA_CHECKPOINT_CORRUPT)).toBe(true);
    expect((error as EsperError).details).toMatchObject({ file: store.path, discarded: 1 });
    expect((error as Error).message).toContain(store.path);
    await store.close();
  });

  it('reports no checkpoint for an empty directory', async () => {
    const store = await CheckpointStore.open(path.join(dir, 'fresh'));
    expect(await store.latest()).toBeUndefined();
    await store.close();
  });
});
