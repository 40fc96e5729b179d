/**
 * Urza's artifact files: content-addressed (`<sha256>.esa`) in one directory, written
 * durably (temp file, fsync, rename, directory fsync) before the catalog row names them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { UrzaSaveStep, type SaveFaults } from './library-options.js';
import { storageInvalid, UrzaStorageReason } from './storage-error.js';

/** File extension of a stored artifact. */
export const URZA_ARTIFACT_EXTENSION = '.esa';
const TEMP_SUFFIX = '.tmp';

/** SHA-256 of `bytes` as lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The artifact directory of one library root. */
export class ArtifactFiles {
  /** Absolute path of the directory. */
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Opens the directory, creating it only when `catalogListsArtifacts` is false: a catalog
   * that names artifacts in a directory that is not there is a wrong path or lost files,
   * never silently replaced by an empty directory.
   * @throws EsperError `URZA_STORAGE_INVALID` naming `dir` (`artifact_dir_missing`, or
   *   `unreadable` when it is not a directory or cannot be created).
   */
  static async open(dir: string, catalogListsArtifacts: boolean): Promise<ArtifactFiles> {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(dir)).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(dir, error);
      if (catalogListsArtifacts) {
        throw storageInvalid(dir, UrzaStorageReason.ARTIFACT_DIR_MISSING, 'the catalog lists artifacts but their directory does not exist');
      }
      try {
        await mkdir(dir, { recursive: true });
      } catch (mkdirError) {
        throw unreadable(dir, mkdirError);
      }
      isDirectory = true;
    }
    if (!isDirectory) throw storageInvalid(dir, UrzaStorageReason.UNREADABLE, 'not a directory');
    return new ArtifactFiles(dir);
  }

  /**
   * Writes `bytes` under their content-addressed name and makes the name durable; returns
   * the file name. Calls `faults` at the temp-written, renamed and directory-synced steps; a
   * simulated crash there leaves its debris for {@link sweep}.
   */
  async write(bytes: Uint8Array, faults: SaveFaults): Promise<string> {
    const fileName = `${sha256Hex(bytes)}${URZA_ARTIFACT_EXTENSION}`;
    const tempPath = path.join(this.dir, `.${randomUUID()}${URZA_ARTIFACT_EXTENSION}${TEMP_SUFFIX}`);
    try {
      const handle = await open(tempPath, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      faults.at(UrzaSaveStep.TEMP_WRITTEN);
      // Same content ⇒ same name, so replacing an existing file is harmless.
      await rename(tempPath, path.join(this.dir, fileName));
      faults.at(UrzaSaveStep.RENAMED);
      const dirHandle = await open(this.dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
      faults.at(UrzaSaveStep.DIR_SYNCED);
    } catch (error) {
      if (!faults.crashed) await rm(tempPath, { force: true });
      throw error;
    }
    return fileName;
  }

  /**
   * The bytes of `fileName` (a plain `Uint8Array` view), or `undefined` when the file does not exist.
   * @throws EsperError `URZA_STORAGE_INVALID` naming the file when it exists but cannot be read.
   */
  async read(fileName: string): Promise<Uint8Array | undefined> {
    const file = path.join(this.dir, fileName);
    try {
      const buffer = await readFile(file);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw unreadable(file, error);
    }
  }

  /** Removes `fileName` if present. */
  async remove(fileName: string): Promise<void> {
    await rm(path.join(this.dir, fileName), { force: true });
  }

  /** Removes temp files and artifact files not in `referenced`; returns how many. */
  async sweep(referenced: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir)) {
      const isTemp = name.endsWith(TEMP_SUFFIX);
      const isOrphan = name.endsWith(URZA_ARTIFACT_EXTENSION) && !referenced.has(name);
      if (isTemp || isOrphan) {
        await this.remove(name);
        removed += 1;
      }
    }
    return removed;
  }
}

function unreadable(file: string, cause: unknown): Error {
  const code = (cause as NodeJS.ErrnoException).code ?? 'error';
  return storageInvalid(file, UrzaStorageReason.UNREADABLE, `cannot be used (${code})`, { cause });
}
