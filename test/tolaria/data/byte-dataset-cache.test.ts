/**
 * The byte dataset cache: round trip, and every tampered, truncated or foreign file is
 * refused with a reason rather than trusted.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import {
  DATASET_CACHE_PREFIX_BYTES,
  decodeDatasetCache,
  encodeDatasetCache,
  readDatasetCache,
  writeDatasetCache,
  type DatasetCacheContents,
  type DatasetCacheShape,
} from '../../../src/tolaria/data/byte-dataset-cache.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-dataset-cache-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const shape: DatasetCacheShape = { source: 'toy@1/every-3rd', trainExamples: 6, validationExamples: 3, exampleBytes: 4, classes: 3 };

function toy(): DatasetCacheContents {
  return {
    train: { inputs: Uint8Array.from({ length: 24 }, (_, i) => (i * 37) % 256), labels: Uint8Array.of(0, 1, 2, 0, 1, 2) },
    validation: { inputs: Uint8Array.from({ length: 12 }, (_, i) => 255 - i), labels: Uint8Array.of(2, 1, 0) },
  };
}

/** Arbitrary shape and matching contents. */
const arbitraryCache = fc
  .record({
    source: fc.string({ maxLength: 20 }),
    trainExamples: fc.integer({ min: 0, max: 8 }),
    validationExamples: fc.integer({ min: 0, max: 8 }),
    exampleBytes: fc.integer({ min: 1, max: 6 }),
    classes: fc.integer({ min: 1, max: 12 }),
  })
  .chain((s) => {
    const split = (n: number) =>
      fc.record({
        inputs: fc.uint8Array({ minLength: n * s.exampleBytes, maxLength: n * s.exampleBytes }),
        labels: fc.uint8Array({ minLength: n, maxLength: n, max: s.classes - 1 }),
      });
    return fc.record({
      shape: fc.constant(s),
      contents: fc.record({ train: split(s.trainExamples), validation: split(s.validationExamples) }),
    });
  });

/** Re-signs a tampered file with a correct checksum, as an attacker who knows the format would. */
function reseal(bytes: Uint8Array): void {
  const hash = createHash('sha256').update(bytes.subarray(0, 32)).update(bytes.subarray(64)).digest();
  bytes.set(hash, 32);
}

describe('byte dataset cache', () => {
  it('decodes exactly what it encoded, for any shape and contents', () => {
    fc.assert(
      fc.property(arbitraryCache, ({ shape: s, contents }) => {
        const decoded = decodeDatasetCache(encodeDatasetCache(s, contents), s);
        expect('reason' in decoded).toBe(false);
        expect(decoded).toEqual(contents);
      }),
    );
  });

  it('refuses a file with any single byte changed', () => {
    const bytes = encodeDatasetCache(shape, toy());
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (position, delta) => {
        const tampered = Uint8Array.from(bytes);
        tampered[position] = ((tampered[position] as number) + delta) % 256;
        expect(decodeDatasetCache(tampered, shape)).toHaveProperty('reason');
      }),
    );
  });

  it('refuses a file truncated at any length, or with bytes appended', () => {
    const bytes = encodeDatasetCache(shape, toy());
    for (let length = 0; length < bytes.length; length += 1) {
      expect(decodeDatasetCache(bytes.subarray(0, length), shape)).toHaveProperty('reason');
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(decodeDatasetCache(longer, shape)).toHaveProperty('reason');
  });

  it('refuses a valid file that describes other data or another split rule', () => {
    const bytes = encodeDatasetCache(shape, toy());
    expect(decodeDatasetCache(bytes, { ...shape, source: 'toy@1/every-4th' })).toHaveProperty('reason');
    expect(decodeDatasetCache(bytes, { ...shape, classes: 4 })).toHaveProperty('reason');
  });

  it('refuses a re-sealed file whose label is outside the classes (a checksum is not a signature)', () => {
    const bytes = encodeDatasetCache(shape, toy());
    const firstTrainLabel = DATASET_CACHE_PREFIX_BYTES + new TextEncoder().encode(shape.source).length + 6 * 4;
    bytes[firstTrainLabel] = 3;
    reseal(bytes);
    expect(decodeDatasetCache(bytes, shape)).toEqual({ reason: 'a label ≥ 3' });
  });

  it('rejects contents that do not fit the shape with INVALID_ARGUMENT', () => {
    const contents = toy();
    for (const bad of [
      { ...contents, train: { ...contents.train, labels: contents.train.labels.subarray(1) } },
      { ...contents, validation: { ...contents.validation, labels: Uint8Array.of(0, 1, 3) } },
    ]) {
      let caught: unknown;
      try {
        encodeDatasetCache(shape, bad);
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
  });

  it('writes atomically into a new directory, leaving no temp file, and reads it back', async () => {
    const file = path.join(root, 'nested', 'toy.bin');
    expect(await readDatasetCache(file, shape)).toEqual({ status: 'missing' });
    await writeDatasetCache(file, shape, toy());
    await writeDatasetCache(file, shape, toy());
    expect(await readdir(path.dirname(file))).toEqual(['toy.bin']);
    const read = await readDatasetCache(file, shape);
    expect(read.status).toBe('hit');
    if (read.status === 'hit') expect(read.contents).toEqual(toy());
  });

  it('reports an unreadable path as invalid, not missing', async () => {
    const directory = path.join(root, 'a-directory.bin');
    await mkdir(directory);
    const read = await readDatasetCache(directory, shape);
    expect(read.status).toBe('invalid');
  });
});
