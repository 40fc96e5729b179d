import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { ArtifactFiles, sha256Hex } from '../../src/urza/artifact-files.js';
import { SaveFaults, UrzaSaveStep } from '../../src/urza/library-options.js';
import { UrzaStorageReason } from '../../src/urza/storage-error.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urza-files-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function openError(dir: string, listsArtifacts: boolean): Promise<unknown> {
  try {
    await ArtifactFiles.open(dir, listsArtifacts);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('ArtifactFiles', () => {
  it('writes content-addressed files, reads them back, and sweeps what is not referenced', async () => {
    const files = await ArtifactFiles.open(path.join(root, 'artifacts'), false);
    const kept = await files.write(bytes('kept'), new SaveFaults(undefined));
    const stray = await files.write(bytes('stray'), new SaveFaults(undefined));
    expect(kept).toBe(`${sha256Hex(bytes('kept'))}.esa`);
    expect(await files.read(kept)).toEqual(bytes('kept'));
    expect(await files.read('absent.esa')).toBeUndefined();
    await writeFile(path.join(files.dir, '.leftover.esa.tmp'), 'half');
    expect(await files.sweep(new Set([kept]))).toBe(2);
    expect(await readdir(files.dir)).toEqual([kept]);
    expect(stray).not.toBe(kept);
  });

  it('leaves the temp file of a simulated crash for the sweep, and cleans up after a real failure', async () => {
    const files = await ArtifactFiles.open(path.join(root, 'artifacts'), false);
    const crash = new Error('crash');
    const faults = new SaveFaults((step) => {
      if (step === UrzaSaveStep.TEMP_WRITTEN) throw crash;
    });
    await expect(files.write(bytes('x'), faults)).rejects.toBe(crash);
    expect(faults.crashed).toBe(true);
    expect((await readdir(files.dir)).filter((name) => name.endsWith('.tmp'))).toHaveLength(1);
    expect(await files.sweep(new Set())).toBe(1);
  });

  it('creates a missing directory only when the catalog lists no artifact', async () => {
    const dir = path.join(root, 'lost');
    const error = await openError(dir, true);
    expect(isEsperError(error, ErrorCode.URZA_STORAGE_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({
      path: dir,
      reason: UrzaStorageReason.ARTIFACT_DIR_MISSING,
    });
    expect((await ArtifactFiles.open(dir, false)).dir).toBe(dir);
  });

  it('refuses a file where the directory should be, naming it', async () => {
    const dir = path.join(root, 'artifacts');
    await writeFile(dir, 'not a directory');
    for (const listsArtifacts of [false, true]) {
      const error = await openError(dir, listsArtifacts);
      expect(isEsperError(error, ErrorCode.URZA_STORAGE_INVALID)).toBe(true);
      expect((error as { details: Record<string, unknown> }).details).toMatchObject({ path: dir, reason: UrzaStorageReason.UNREADABLE });
    }
  });
});
