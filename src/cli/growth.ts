/**
 * Assembles what lets a training run grow, from settings, for the CLI commands: the Urza
 * library under `storage.*`, every catalog blueprint compiled by Tezzeret's forge for the
 * host's seed sites (WAL-resumable: a second run only verifies), the command verifier, and
 * Kasmina (`createKasmina`) bound to the host.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { closeOnce, ErrorCode, isEsperError, runCleanup, type AsyncWorker, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { KarnCatalog } from '../karn/index.js';
import { createKasmina, type KasminaExecutor } from '../kasmina/index.js';
import type { Bus } from '../oona/index.js';
import { CommandVerifier, FileNonceStore, HmacSigner, type KeyRing, NonceLedger } from '../security/index.js';
import { forgeJobsFor, TezzeretCompiler, TezzeretForge } from '../tezzeret/index.js';
import { UrabraskService } from '../urabrask/index.js';
import type { HostModel } from '../tolaria/index.js';
import { createBsdsVerifier, UrzaLibrary } from '../urza/index.js';

/** What {@link openGrowth} needs. */
export interface GrowthOptions {
  readonly settings: EsperSettings;
  readonly host: HostModel;
  readonly trainingRunId: string;
  readonly telemetry: TelemetrySink;
  /** Key ring commands are verified with. */
  readonly keyRing: KeyRing;
  /** Kernels are prefetched over this bus (an Urza prefetch worker must answer). */
  readonly prefetch?: { readonly bus: Bus; readonly worker: AsyncWorker };
  /** Called with progress lines while blueprints are compiled. */
  readonly onProgress?: (line: string) => void;
  /**
   * Also probe every compiled blueprint that has no safety data sheet yet with Urabrask and
   * store its signed BSDS and graph metadata in Urza (what Tamiyo reads). @default false
   */
  readonly certify?: boolean;
}

/** A provisioned Kasmina and what it holds open. */
export interface Growth {
  readonly kasmina: KasminaExecutor;
  readonly library: UrzaLibrary;
  readonly catalog: KarnCatalog;
  readonly verifier: CommandVerifier;
  /** Shuts Kasmina down (final packets), then the nonce ledger and the library; idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Opens Urza, forges missing artifacts for the host's sites, and builds Kasmina. */
export async function openGrowth(options: GrowthOptions): Promise<Growth> {
  const { settings, host } = options;
  const storage = settings.storage;
  const catalog = new KarnCatalog();
  const library = await UrzaLibrary.open({
    rootDir: path.dirname(storage.urzaDatabasePath),
    dbPath: storage.urzaDatabasePath,
    artifactDir: storage.urzaArtifactDir,
    telemetry: options.telemetry,
    bsdsVerifier: createBsdsVerifier(options.keyRing),
  });
  let ledger: NonceLedger | undefined;
  try {
    const jobs = forgeJobsFor(catalog, host.descriptor.sites);
    const started = performance.now();
    const walPath = path.join(storage.varDir, 'tezzeret', 'forge.wal');
    await mkdir(path.dirname(walPath), { recursive: true });
    const forge = new TezzeretForge({
      compiler: new TezzeretCompiler({ catalog, prewarmSamples: 1 }),
      library,
      telemetry: options.telemetry,
      walPath,
    });
    const summary = await forge.run(jobs);
    options.onProgress?.(
      `blueprints: ${summary.completed} compiled, ${summary.skipped} already in Urza, ${summary.failed} failed for ${host.descriptor.sites.length} sites (${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    if (options.certify === true) {
      const certifier = new UrabraskService({ library, signer: new HmacSigner(options.keyRing) });
      const certifyStarted = performance.now();
      let certified = 0;
      for (const entry of library.list()) {
        const blueprintId = entry.descriptor.blueprintId;
        if (hasVerifiedSheet(library, blueprintId)) continue;
        const artifact = library.artifacts(blueprintId)[0];
        if (artifact === undefined) continue;
        const loaded = await library.load(blueprintId, artifact.siteKey);
        await certifier.certify({ descriptor: entry.descriptor, artifactBytes: loaded.bytes, siteKey: artifact.siteKey });
        certified += 1;
      }
      options.onProgress?.(
        `safety data sheets: ${certified} issued by Urabrask (${((performance.now() - certifyStarted) / 1000).toFixed(1)} s)`,
      );
    }
    const security = settings.security;
    const signer = new HmacSigner(options.keyRing, { freshnessWindowMs: security.freshnessWindowMs });
    // On disk, so a restarted run still refuses replays of the commands it accepted.
    const nonceFile = path.join(storage.varDir, 'security', `nonces-kasmina-${encodeURIComponent(options.trainingRunId)}.wal`);
    ledger = await NonceLedger.open({
      store: await FileNonceStore.open(nonceFile),
      ttlSeconds: security.nonceTtlSeconds,
      maxEntries: security.nonceMaxEntries,
      sink: options.telemetry,
      source: 'kasmina',
    });
    const verifier = new CommandVerifier({
      signer,
      ledger,
      sink: options.telemetry,
      source: 'kasmina',
      maxFreshnessWindowMs: security.freshnessWindowMs,
      futureSkewMs: security.futureSkewMs,
    });
    const kasmina = await createKasmina(settings.kasmina, {
      latencyBudgets: settings.core.latencyBudgets,
      host,
      trainingRunId: options.trainingRunId,
      telemetry: options.telemetry,
      catalog,
      kernels: library,
      verifier,
      ...(options.prefetch === undefined ? {} : { prefetch: options.prefetch }),
    });
    const nonces = ledger;
    const close = closeOnce(() => runCleanup('growth', [() => kasmina.close(), () => nonces.close(), () => library.close()]));
    return { kasmina: kasmina.executor, library, catalog, verifier, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    const opened = ledger;
    // The opening failure must stay visible; a failed cleanup is reported with it, not instead of it.
    await runCleanup('growth', [opened !== undefined && (() => opened.close()), () => library.close()]).catch((cleanup: unknown) => {
      throw new AggregateError([error, cleanup], `opening growth failed, and so did closing what was opened`);
    });
    throw error;
  }
}

/**
 * Whether Urza holds a sheet of `blueprintId` that verifies. A sheet that fails (already
 * reported by Urza as a CRITICAL `integrity_failure`) counts as none, so it is probed and
 * issued again rather than trusted or silently dropped.
 */
function hasVerifiedSheet(library: UrzaLibrary, blueprintId: string): boolean {
  try {
    return library.getBsds(blueprintId) !== undefined;
  } catch (error) {
    if (isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) return false;
    throw error;
  }
}
