/**
 * TensorBoard scalar event files: what the writer appends reads back through our reader and
 * through an independent Python reader (Debian's python3-protobuf, descriptors built at
 * run time, its own CRC-32C), which also reports a corrupted file.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { EVENT_FILE_VERSION, openScalarWriter, readScalarEvents } from '../../../src/nissa/index.js';

const run = promisify(execFile);
/** Debian's Python, which has python3-protobuf (the one on PATH may not). */
const PYTHON = '/usr/bin/python3';
const READER = path.resolve(import.meta.dirname, '../fixtures/read_tfevents.py');

interface PythonScalars {
  file_version: string | null;
  records: number;
  scalars: { tag: string; step: number; value: number; wall_time: number }[];
}

async function pythonRead(file: string): Promise<PythonScalars> {
  const { stdout } = await run(PYTHON, [READER, file]);
  return JSON.parse(stdout) as PythonScalars;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-tfevents-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const T0_MS = 1_767_225_600_000; // 2026-01-01T00:00:00Z

describe('openScalarWriter', () => {
  it('names the file events.out.tfevents.<unix seconds>.<hostname> and starts it with brain.Event:2', async () => {
    const dir = path.join(root, 'named', 'grown');
    const writer = await openScalarWriter(dir, { nowMs: () => T0_MS, hostname: 'box' });
    await writer.close();
    expect(path.basename(writer.file)).toBe('events.out.tfevents.1767225600.box');
    expect(await readScalarEvents(writer.file)).toEqual({ fileVersion: EVENT_FILE_VERSION, scalars: [] });
  });

  it('gives a second writer opened in the same second its own file', async () => {
    const dir = path.join(root, 'twice');
    const a = await openScalarWriter(dir, { nowMs: () => T0_MS, hostname: 'box' });
    const b = await openScalarWriter(dir, { nowMs: () => T0_MS, hostname: 'box' });
    await Promise.all([a.close(), b.close()]);
    expect(a.file).not.toBe(b.file);
    expect((await readdir(dir)).sort()).toEqual(['events.out.tfevents.1767225600.box', 'events.out.tfevents.1767225600.box.1']);
  });

  it('appends scalars (as 32-bit floats) that its reader and the Python reader read back the same', async () => {
    const scalars = [
      { tag: 'validation/accuracy', step: 133, value: 0.8125, wallTimeMs: T0_MS + 1_500 },
      { tag: 'validation/loss', step: 133, value: 0.4321, wallTimeMs: T0_MS + 1_500 },
      { tag: 'train/loss', step: 266, value: 1e-7, wallTimeMs: T0_MS + 3_250 },
      { tag: 'train/loss', step: 2 ** 40, value: -3.5, wallTimeMs: T0_MS + 4_000 },
      { tag: 'ünïcode/標籤', step: 0, value: 123456.789, wallTimeMs: T0_MS },
    ];
    const writer = await openScalarWriter(path.join(root, 'scalars'), { nowMs: () => T0_MS, hostname: 'box' });
    for (const s of scalars) writer.scalar(s.tag, s.step, s.value, s.wallTimeMs);
    await writer.close();

    const expected = scalars.map((s) => ({ tag: s.tag, step: s.step, value: Math.fround(s.value), wallTimeS: s.wallTimeMs / 1000 }));
    expect(await readScalarEvents(writer.file)).toEqual({ fileVersion: EVENT_FILE_VERSION, scalars: expected });
    const python = await pythonRead(writer.file);
    expect(python.file_version).toBe(EVENT_FILE_VERSION);
    expect(python.records).toBe(scalars.length + 1);
    expect(python.scalars).toEqual(expected.map((s) => ({ tag: s.tag, step: s.step, value: s.value, wall_time: s.wallTimeS })));
  });

  it('agrees with the Python reader on arbitrary scalars', async () => {
    const scalar = fc.record({
      tag: fc.string({ minLength: 1, maxLength: 20 }),
      step: fc.nat({ max: 2 ** 40 }),
      value: fc.float({ noNaN: true, noDefaultInfinity: true }),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(scalar, { maxLength: 20 }), async (scalars) => {
        const writer = await openScalarWriter(path.join(root, 'property', String(n++)), { nowMs: () => T0_MS, hostname: 'p' });
        for (const s of scalars) writer.scalar(s.tag, s.step, s.value);
        await writer.close();
        const python = await pythonRead(writer.file);
        // JSON has no -0: Python prints it as -0.0, which parses as -0 too.
        expect(python.scalars.map((s) => [s.tag, s.step, s.value])).toEqual(scalars.map((s) => [s.tag, s.step, Math.fround(s.value)]));
      }),
      { numRuns: 15 },
    );
  });

  it('writes a large run in bounded chunks before flush, in order', async () => {
    const writer = await openScalarWriter(path.join(root, 'large'), { maxPendingBytes: 256 });
    for (let step = 0; step < 2_000; step++) writer.scalar('train/loss', step, 1 / (step + 1));
    await writer.close();
    const { scalars } = await readScalarEvents(writer.file);
    expect(scalars.map((s) => s.step)).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
    expect((await pythonRead(writer.file)).scalars).toHaveLength(2_000);
  });

  it('is reported corrupt by the Python reader (and ours) after a flipped bit or a truncation', async () => {
    const writer = await openScalarWriter(path.join(root, 'corrupt'), { nowMs: () => T0_MS, hostname: 'box' });
    writer.scalar('validation/accuracy', 1, 0.5);
    writer.scalar('validation/accuracy', 2, 0.75);
    await writer.close();
    const good = await readFile(writer.file);
    const cases: [string, Buffer][] = [
      ['data CRC mismatch', Buffer.from(good).fill(good[good.length - 10]! ^ 0x10, good.length - 10, good.length - 9)],
      ['length CRC mismatch', Buffer.from(good).fill(good[0]! ^ 0x01, 0, 1)],
      ['past the end of the file', good.subarray(0, good.length - 3)],
    ];
    for (const [reason, bytes] of cases) {
      const file = path.join(root, 'corrupt', `bad.${reason.replace(/ /g, '-')}`);
      await writeFile(file, bytes);
      const failure = await run(PYTHON, [READER, file]).then(
        () => undefined,
        (error: unknown) => error as { code: number; stderr: string },
      );
      expect(failure?.code, reason).toBe(1);
      expect(failure?.stderr).toContain(reason);
      const ours = await readScalarEvents(file).catch((error: unknown) => error);
      expect(isEsperError(ours, ErrorCode.NISSA_TENSORBOARD_CORRUPT), reason).toBe(true);
    }
  });

  it('refuses an empty tag, a negative or fractional step, and writing after close', async () => {
    const writer = await openScalarWriter(path.join(root, 'refuse'));
    expect(() => writer.scalar('', 1, 1)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => writer.scalar('t', -1, 1)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => writer.scalar('t', 1.5, 1)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    const closing = writer.close();
    expect(writer.close()).toBe(closing);
    await closing;
    expect(() => writer.scalar('t', 1, 1)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
  });

  it('names the file it cannot create', async () => {
    // A plain file where the directory should be: mkdir fails for root too.
    await writeFile(path.join(root, 'not-a-dir'), '');
    const dir = path.join(root, 'not-a-dir', 'grown');
    const error = await openScalarWriter(dir, { nowMs: () => T0_MS, hostname: 'ro' }).catch((e: unknown) => e);
    expect(isEsperError(error, ErrorCode.NISSA_TENSORBOARD_WRITE_FAILED)).toBe(true);
    expect((error as Error).message).toContain(path.join(dir, 'events.out.tfevents.1767225600.ro'));
    expect((error as { details: Record<string, unknown> }).details['file']).toBe(path.join(dir, 'events.out.tfevents.1767225600.ro'));
  });
});
