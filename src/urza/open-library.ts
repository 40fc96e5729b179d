/**
 * Urza opens itself from settings: {@link openUrzaLibrary} turns the `storage` settings and
 * a key ring into an {@link UrzaLibrary} that verifies every safety data sheet it serves.
 */
import path from 'node:path';
import type { EsperSettings, TelemetrySink } from '../core/index.js';
import type { KeyRing } from '../security/index.js';
import { createBsdsVerifier } from './bsds-verifier.js';
import { UrzaLibrary } from './library.js';
import type { UrzaLibraryOptions } from './library-options.js';

/** What {@link openUrzaLibrary} is given; none of it is closed by the library. */
export interface UrzaLibraryDeps {
  /** Keys the safety data sheets are checked with (`createBsdsVerifier`). */
  readonly keyRing: KeyRing;
  /** Where integrity failures and slow queries are reported. */
  readonly telemetry?: TelemetrySink;
}

/**
 * Opens the library under `storage.urzaDatabasePath` (root: its directory) and
 * `storage.urzaArtifactDir`, checking sheets with `deps.keyRing`. The caller closes it.
 * @throws EsperError URZA_STORAGE_INVALID naming the file for a catalog or artifact directory that cannot be used
 */
export function openUrzaLibrary(settings: Pick<EsperSettings, 'storage'>, deps: UrzaLibraryDeps): Promise<UrzaLibrary> {
  const storage = settings.storage;
  const options: UrzaLibraryOptions = {
    rootDir: path.dirname(storage.urzaDatabasePath),
    dbPath: storage.urzaDatabasePath,
    artifactDir: storage.urzaArtifactDir,
    bsdsVerifier: createBsdsVerifier(deps.keyRing),
    ...(deps.telemetry === undefined ? {} : { telemetry: deps.telemetry }),
  };
  return UrzaLibrary.open(options);
}
