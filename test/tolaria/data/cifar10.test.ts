/**
 * CIFAR-10 binary reader, on small files written here in the standard record format
 * (1 label byte, then 1,024 R, 1,024 G, 1,024 B bytes, each plane row-major 32×32).
 */
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type EsperError } from '../../../src/core/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import {
  CIFAR10_RECORD_BYTES,
  CIFAR10_TEST_FILE,
  CIFAR10_TRAIN_FILES,
  decodeCifar10Records,
  loadCifar10,
} from '../../../src/tolaria/data/cifar10.js';

beforeAll(async () => {
  await initTensorBackend();
});

/** Pixel byte of record `record` in file `file` at plane position `p` (row·32 + col), channel `c`. */
const pixel = (file: number, record: number, p: number, c: number): number => (p * (c + 1) + 7 * record + 31 * file) % 256;
const labelOf = (file: number, record: number): number => (3 * file + record) % 10;

/** `count` records for file number `file` (0…4 train, 5 test). */
function records(file: number, count: number): Uint8Array {
  const out = new Uint8Array(count * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < count; r += 1) {
    const base = r * CIFAR10_RECORD_BYTES;
    out[base] = labelOf(file, r);
    for (let c = 0; c < 3; c += 1) for (let p = 0; p < 1024; p += 1) out[base + 1 + c * 1024 + p] = pixel(file, r, p, c);
  }
  return out;
}

/** Records per file: data_batch_1…5, then test_batch. */
const COUNTS = [2, 1, 3, 1, 2, 3];
const FILES = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE];

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'esper-cifar10-'));
  await Promise.all(FILES.map((name, f) => writeFile(path.join(directory, name), records(f, COUNTS[f] as number))));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<EsperError> {
  try {
    await promise;
  } catch (error) {
    if (isEsperError(error)) return error;
    throw error;
  }
  throw new Error('expected an EsperError');
}

describe('loadCifar10', () => {
  it('reads the five training files in order as train and test_batch as validation', async () => {
    const d = await loadCifar10({ directory });
    expect(d.name).toBe('cifar10');
    expect(d.inputShape).toEqual([32, 32, 3]);
    expect(d.numClasses).toBe(10);
    expect(d.train.size).toBe(9);
    expect(d.validation.size).toBe(3);
    const batch = d.train.batch(Int32Array.from({ length: 9 }, (_, i) => i));
    const expectedLabels = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => {
      const file = i < 2 ? 0 : i < 3 ? 1 : i < 6 ? 2 : i < 7 ? 3 : 4;
      const first = [0, 2, 3, 6, 7][file] as number;
      return labelOf(file, i - first);
    });
    expect(Array.from(batch.labels.dataSync())).toEqual(expectedLabels);
    tf.dispose([batch.inputs, batch.labels]);
  });

  it('transposes the R, G, B planes to NHWC float32 [32, 32, 3] scaled to [0, 1]', async () => {
    const d = await loadCifar10({ directory });
    // Validation example 2 = test_batch (file 5) record 2.
    const batch = d.validation.batch(Int32Array.of(2));
    expect(batch.inputs.shape).toEqual([1, 32, 32, 3]);
    expect(batch.inputs.dtype).toBe('float32');
    const values = batch.inputs.dataSync();
    for (const [row, col] of [
      [0, 0],
      [0, 31],
      [5, 17],
      [31, 0],
      [31, 31],
    ] as const) {
      for (let c = 0; c < 3; c += 1) {
        const p = row * 32 + col;
        expect(values[(row * 32 + col) * 3 + c], `row ${row} col ${col} channel ${c}`).toBe(Math.fround(pixel(5, 2, p, c) / 255));
      }
    }
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThanOrEqual(1);
    expect(batch.labels.dataSync()[0]).toBe(labelOf(5, 2));
    tf.dispose([batch.inputs, batch.labels]);
  });

  it('reports a missing directory as TOLARIA_DATASET_NOT_FOUND', async () => {
    const error = await rejection(loadCifar10({ directory: path.join(directory, 'absent') }));
    expect(error.code).toBe(ErrorCode.TOLARIA_DATASET_NOT_FOUND);
  });

  it('names every missing file', async () => {
    await unlink(path.join(directory, 'data_batch_3.bin'));
    await unlink(path.join(directory, CIFAR10_TEST_FILE));
    const error = await rejection(loadCifar10({ directory }));
    expect(error.code).toBe(ErrorCode.TOLARIA_DATASET_NOT_FOUND);
    expect(error.details.missing).toBe('data_batch_3.bin,test_batch.bin');
  });

  it('refuses a file whose size is not a multiple of 3,073 bytes, naming it', async () => {
    await writeFile(path.join(directory, 'data_batch_2.bin'), Buffer.concat([records(1, 1), Buffer.alloc(100)]));
    const error = await rejection(loadCifar10({ directory }));
    expect(error.code).toBe(ErrorCode.TOLARIA_DATASET_CORRUPT);
    expect(String(error.details.file)).toMatch(/data_batch_2\.bin$/);
    expect(error.details.sizeBytes).toBe(CIFAR10_RECORD_BYTES + 100);
  });
});

describe('decodeCifar10Records', () => {
  it('refuses empty input and labels outside 0…9', () => {
    const bad = records(0, 2);
    bad[CIFAR10_RECORD_BYTES] = 10;
    for (const bytes of [new Uint8Array(0), bad]) {
      let error: unknown;
      try {
        decodeCifar10Records(bytes, 'test.bin');
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.TOLARIA_DATASET_CORRUPT)).toBe(true);
    }
  });
});
