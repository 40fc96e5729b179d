import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, RecordLog } from '../../src/core/index.js';
import {
  CHECKPOINT_LOG_FILE,
  CheckpointStore,
  decodeCheckpoint,
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

describe('CheckpointStore', () => {
  it('keeps only the last N checkpoints and returns the newest', async () => {
    const store = await CheckpointStore.open(dir, { keepLast: 2 });
    const results = [];
    for (const step of [10, 20, 30, 40]) results.push(await store.write(header(step), weights(64), weights(16)));
    expect(results.map((r) => r.kept)).toEqual([1, 2, 2, 2]);
    expect(store.count).toBe(2);
    const latest = await store.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(40);
    expect(latest?.skippedInvalid).toBe(0);
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
    const log = await RecordLog.open(path.join(dir, CHECKPOINT_LOG_FILE));
    const { payload } = encodeCheckpoint(header(20), weights(64), weights(16));
    payload[payload.length - 1] = (payload[payload.length - 1] as number) ^ 1;
    await log.append(payload);
    await log.close();
    const reopened = await CheckpointStore.open(dir);
    const latest = await reopened.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(10);
    expect(latest?.skippedInvalid).toBe(1);
    await reopened.close();
  });

  it('recovers from a torn last record (a crash mid-write) by keeping the previous checkpoint', async () => {
    const store = await CheckpointStore.open(dir);
    await store.write(header(10), weights(64), weights(16));
    await store.close();
    const { payload } = encodeCheckpoint(header(20), weights(64), weights(16));
    await appendFile(path.join(dir, CHECKPOINT_LOG_FILE), payload.subarray(0, 50));
    const reopened = await CheckpointStore.open(dir);
    expect((await reopened.latest())?.checkpoint.header.globalStep).toBe(10);
    await reopened.close();
  });

  it('reports no checkpoint for an empty directory', async () => {
    const store = await CheckpointStore.open(path.join(dir, 'fresh'));
    expect(await store.latest()).toBeUndefined();
    await store.close();
  });
});
