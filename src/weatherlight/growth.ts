/**
 * What lets a training run grow, built from settings by the subsystems' own factories: the
 * Urza library (`openUrzaLibrary`), every catalog blueprint compiled for the host's seed
 * sites by Tezzeret's forge (`createForge`; WAL-resumable, so a second run only verifies),
 * optionally Urabrask's sheets for what has none (`certifyUnsheeted`), the run's command
 * verifier (`openCommandVerifier`) and Kasmina (`createKasmina`) bound to the host.
 */
import { closeOnce, runCleanup, type AsyncWorker, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { KarnCatalog } from '../karn/index.js';
import { createKasmina, type Kasmina } from '../kasmina/index.js';
import type { Bus } from '../oona/index.js';
import { openCommandVerifier, runNonceFile, type KeyRing, type OpenedCommandVerifier } from '../security/index.js';
import { createForge, type ForgeRunSummary } from '../tezzeret/index.js';
import type { SeedSiteDescriptor } from '../leyline/index.js';
import type { HostModel } from '../tolaria/index.js';
import { certifyUnsheeted, type CertifyLibrarySummary } from '../urabrask/index.js';
import { openUrzaLibrary, type UrzaLibrary } from '../urza/index.js';

/** What {@link openGrowth} is given; none of it is closed by the growth. */
export interface GrowthDeps {
  readonly host: HostModel;
  readonly trainingRunId: string;
  readonly telemetry: TelemetrySink;
  /** Key ring commands are verified and sheets signed and checked with. */
  readonly keyRing: KeyRing;
  /** Kernels are prefetched over this bus (an Urza prefetch worker must answer). */
  readonly prefetch?: { readonly bus: Bus; readonly worker: AsyncWorker };
  /**
   * Also probe every compiled blueprint without a sheet that verifies with Urabrask and store
   * its signed BSDS and graph metadata in Urza (what Tamiyo reads). @default false
   */
  readonly certify?: boolean;
  /** Called with one line per provisioning step (forge, certification). */
  readonly onProgress?: (line: string) => void;
}

/** A provisioned Kasmina and what it holds open. */
export interface Growth extends AsyncDisposable {
  readonly kasmina: Kasmina;
  readonly library: UrzaLibrary;
  readonly catalog: KarnCatalog;
  readonly commandVerifier: OpenedCommandVerifier;
  /** What the forge did for the host's sites. */
  readonly forged: ForgeRunSummary;
  /** What Urabrask certified (with `certify`). */
  readonly certified?: CertifyLibrarySummary;
  /** Closes Kasmina (final packets), then the nonce ledger, then the library; idempotent. */
  close(): Promise<void>;
}

/**
 * Opens Urza, forges missing artifacts for the host's sites, certifies them when asked, and
 * builds the run's command verifier (nonces in `<storage.varDir>/security/nonces-kasmina-<run>.wal`)
 * and Kasmina from `settings.kasmina`.
 * @throws EsperError from any part; what was opened is closed again
 */
export async function openGrowth(settings: EsperSettings, deps: GrowthDeps): Promise<Growth> {
  const { host, telemetry, keyRing } = deps;
  const catalog = new KarnCatalog();
  const library = await openUrzaLibrary(settings, { keyRing, telemetry });
  let verifier: OpenedCommandVerifier | undefined;
  try {
    const { forged, certified } = await provisionBlueprints(settings, {
      catalog,
      library,
      sites: host.descriptor.sites,
      telemetry,
      keyRing,
      certify: deps.certify === true,
      ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
    });
    // On disk, so a restarted run still refuses replays of the commands it accepted.
    verifier = await openCommandVerifier(settings, {
      keyRing,
      telemetry,
      source: 'kasmina',
      nonceFile: runNonceFile(settings, 'kasmina', deps.trainingRunId),
    });
    const kasmina = await createKasmina(settings.kasmina, {
      latencyBudgets: settings.core.latencyBudgets,
      host,
      trainingRunId: deps.trainingRunId,
      telemetry,
      catalog,
      kernels: library,
      verifier: verifier.verifier,
      ...(deps.prefetch === undefined ? {} : { prefetch: deps.prefetch }),
    });
    const opened = verifier;
    const close = closeOnce(() => runCleanup('growth', [() => kasmina.close(), () => opened.close(), () => library.close()]));
    return {
      kasmina,
      library,
      catalog,
      commandVerifier: verifier,
      forged,
      ...(certified === undefined ? {} : { certified }),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    const opened = verifier;
    // The opening failure must stay visible; a failed cleanup is reported with it, not instead of it.
    await runCleanup('growth', [opened !== undefined && (() => opened.close()), () => library.close()]).catch((cleanup: unknown) => {
      throw new AggregateError([error, cleanup], 'opening growth failed, and so did closing what was opened');
    });
    throw error;
  }
}

/** What {@link provisionBlueprints} is given. */
export interface ProvisionDeps {
  readonly catalog: KarnCatalog;
  /** Open; not closed here. */
  readonly library: UrzaLibrary;
  readonly sites: readonly SeedSiteDescriptor[];
  readonly telemetry: TelemetrySink;
  readonly keyRing: KeyRing;
  /** Also have Urabrask certify what has no verifying sheet. */
  readonly certify: boolean;
  readonly onProgress?: (line: string) => void;
}

/**
 * Tezzeret's forge compiles every catalog blueprint that fits `sites` and is not yet in
 * Urza (WAL-resumable, so a second call only verifies), then, with `certify`, Urabrask
 * certifies what has no verifying sheet.
 * @throws EsperError from the forge or the certifier
 */
export async function provisionBlueprints(
  settings: EsperSettings,
  deps: ProvisionDeps,
): Promise<{ readonly forged: ForgeRunSummary; readonly certified?: CertifyLibrarySummary }> {
  const { catalog, library, telemetry } = deps;
  const started = performance.now();
  const forged = await (await createForge(settings, { catalog, library, telemetry })).forgeAll(deps.sites);
  deps.onProgress?.(
    `blueprints: ${forged.completed} compiled, ${forged.skipped} already in Urza, ${forged.failed} failed for ${deps.sites.length} sites (${seconds(performance.now() - started)})`,
  );
  if (!deps.certify) return { forged };
  const certified = await certifyUnsheeted(library, { keyRing: deps.keyRing });
  deps.onProgress?.(`safety data sheets: ${certified.certified} issued by Urabrask (${seconds(certified.wallMs)})`);
  return { forged, certified };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
