/**
 * Tezzeret builds its forge itself: {@link createForge} turns the `storage` settings and the
 * collaborators other subsystems own (the Karn catalog, Urza's library) into a
 * {@link TezzeretForge} with its compiler and job WAL.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { EsperSettings, TelemetrySink } from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import type { Bus } from '../oona/index.js';
import { TezzeretCompiler } from './compiler.js';
import { TezzeretForge, type ForgeArtifactStore } from './forge.js';

/** What {@link createForge} is given; none of it is closed by the forge. */
export interface ForgeDeps {
  /** Blueprints the forge compiles. */
  readonly catalog: KarnCatalog;
  /** Where artifacts are committed (Urza's library). */
  readonly library: ForgeArtifactStore;
  readonly telemetry?: TelemetrySink;
  /** Where `KernelCatalogUpdate` is published. @default none */
  readonly bus?: Bus;
  /**
   * The job WAL.
   * @default `<storage.varDir>/tezzeret/forge.wal`
   */
  readonly walPath?: string;
}

/** The forge's job WAL under the var dir: `<storage.varDir>/tezzeret/forge.wal`. */
export function forgeWalPath(settings: Pick<EsperSettings, 'storage'>): string {
  return path.join(settings.storage.varDir, 'tezzeret', 'forge.wal');
}

/**
 * A forge compiling into `deps.library` with one prewarm pass per artifact, which keeps
 * forging the catalog quick (Urza's prefetch worker measures live latency over 5 passes).
 * The WAL's directory is created.
 */
export async function createForge(settings: Pick<EsperSettings, 'storage'>, deps: ForgeDeps): Promise<TezzeretForge> {
  const walPath = deps.walPath ?? forgeWalPath(settings);
  await mkdir(path.dirname(walPath), { recursive: true });
  return new TezzeretForge({
    compiler: new TezzeretCompiler({ catalog: deps.catalog, prewarmSamples: 1 }),
    library: deps.library,
    walPath,
    ...(deps.telemetry === undefined ? {} : { telemetry: deps.telemetry }),
    ...(deps.bus === undefined ? {} : { bus: deps.bus }),
  });
}
