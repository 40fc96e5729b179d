/**
 * Urza's runtime loader (reference prototype-blueprint-pipeline §4.6): turns a catalogued
 * artifact into a live seed module. The integrity check is the library's; a bad file is
 * refused there and left in place for inspection (the prototype evicted it).
 */
import { systemClock, type Clock } from '../core/index.js';
import type { KarnCatalog, SeedModule } from '../karn/index.js';
import { loadArtifact } from '../tezzeret/index.js';
import type { UrzaLibrary } from './library.js';

/** Options of {@link UrzaRuntime}. */
export interface UrzaRuntimeOptions {
  /** The library artifacts are loaded from. Required; not closed by the runtime. */
  readonly library: UrzaLibrary;
  /** Catalog that rebuilds modules from artifacts. @default Tezzeret's shared `KarnCatalog()` */
  readonly catalog?: KarnCatalog;
  /** Time source of `fetchMs`. @default systemClock */
  readonly clock?: Clock;
}

/** Per-call options of {@link UrzaRuntime.fetchKernel}. */
export interface FetchKernelOptions {
  /**
   * Variable-name prefix of the rebuilt module; two live modules need distinct scopes.
   * @default the blueprint id
   */
  readonly scope?: string;
}

/** A fetched kernel. */
export interface FetchedKernel {
  /** The live module; the caller owns it and disposes it. */
  readonly module: SeedModule;
  /** Library load (with checksum verification) plus module rebuild, in ms. */
  readonly fetchMs: number;
  /** SHA-256 hex of the verified artifact bytes. */
  readonly checksum: string;
  /** SHA-256 hex of the artifact's guard spec. */
  readonly guardDigest: string;
  /** The site key the artifact was compiled for. */
  readonly siteKey: string;
}

/** Loads verified artifacts from an {@link UrzaLibrary} into seed modules. */
export class UrzaRuntime {
  readonly #library: UrzaLibrary;
  readonly #catalog: KarnCatalog | undefined;
  readonly #clock: Clock;

  constructor(options: UrzaRuntimeOptions) {
    this.#library = options.library;
    this.#catalog = options.catalog;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Loads the artifact of `(blueprintId, siteKey)` through the library (checksum verified)
   * and rebuilds its module. `fetchMs` runs from the start of the call.
   * @throws EsperError `URZA_NOT_FOUND`, `URZA_INTEGRITY_FAILURE`, `BREAKER_OPEN` from the
   *   library; `TEZZERET_ARTIFACT_INVALID` when verified bytes cannot be rebuilt.
   */
  async fetchKernel(blueprintId: string, siteKey: string, options: FetchKernelOptions = {}): Promise<FetchedKernel> {
    const startMs = this.#clock.monotonicMs();
    const loaded = await this.#library.load(blueprintId, siteKey);
    const module = loadArtifact(loaded.bytes, {
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(this.#catalog === undefined ? {} : { catalog: this.#catalog }),
    });
    return {
      module,
      fetchMs: this.#clock.monotonicMs() - startMs,
      checksum: loaded.record.checksum,
      guardDigest: loaded.record.guardDigest,
      siteKey: loaded.record.siteKey,
    };
  }
}
