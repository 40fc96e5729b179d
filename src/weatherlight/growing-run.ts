/**
 * One growing run, composed: {@link openGrowth} (Urza, forge, sheets, command verifier,
 * Kasmina) plus Tamiyo (`createTamiyo`) choosing among the blueprints compiled for the
 * host's sites — what Tolaria's trainer needs as controller, executor and command verifier.
 */
import { closeOnce, ErrorCode, isEsperError, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import type { SeedReport } from '../kasmina/index.js';
import type { BSDS, HostDescriptor } from '../leyline/index.js';
import { openBusFromSettings, type Bus } from '../oona/index.js';
import type { KeyRing } from '../security/index.js';
import {
  createTamiyo,
  type BlueprintCandidate,
  type HeuristicPolicyOptions,
  type Tamiyo,
  type TamiyoPolicy,
  type TamiyoPolicyName,
} from '../tamiyo/index.js';
import type { HostModel, TrainerDependencies } from '../tolaria/index.js';
import type { GraphMetadata, UrzaLibrary } from '../urza/index.js';
import { openGrowth, type Growth } from './growth.js';

/** What {@link openGrowingRun} is given; none of it is closed by the run. */
export interface GrowingRunDeps {
  readonly host: HostModel;
  readonly trainingRunId: string;
  readonly telemetry: TelemetrySink;
  /** Signs and verifies commands; signs and checks safety data sheets. */
  readonly keyRing: KeyRing;
  /** Tamiyo's policy, by name or as an object (which the run then owns). */
  readonly policy: TamiyoPolicyName | TamiyoPolicy;
  /** Options of the heuristic policy. */
  readonly heuristic?: HeuristicPolicyOptions;
  /** The run seed (the `gnn` policy's weights are drawn from it). @default 0 */
  readonly seed?: number;
  /**
   * Keep Tamiyo's field reports in a record log at `walPath` and publish them on `bus`
   * (@default an in-process bus the run opens and closes). @default none kept
   */
  readonly fieldReports?: { readonly walPath: string; readonly bus?: Bus };
  /** Called with one line per provisioning step (forge, certification). */
  readonly onProgress?: (line: string) => void;
}

/** A composed growing run. */
export interface GrowingRun extends AsyncDisposable {
  /** What Tolaria's trainer takes: Tamiyo as controller, Kasmina as executor, the run's command verifier. */
  readonly collaborators: Required<Pick<TrainerDependencies, 'controller' | 'executor' | 'commandVerifier'>>;
  readonly tamiyo: Tamiyo;
  readonly growth: Growth;
  /** Every seed Kasmina germinated and what became of it (also after close). */
  seedReports(): readonly SeedReport[];
  /**
   * Closes Tamiyo (open field-report windows aborted with `reason`), then Kasmina, the
   * command verifier and Urza, then a bus the run opened. Every step runs even if one fails;
   * idempotent (the first call's promise).
   * @default reason 'run_failed'
   */
  close(reason?: string): Promise<void>;
}

/**
 * Opens a growing run: growth with every blueprint certified (`certify: true`), the
 * candidates read from Urza, and Tamiyo over them.
 * @throws EsperError from any part; what was opened is closed again
 */
export async function openGrowingRun(settings: EsperSettings, deps: GrowingRunDeps): Promise<GrowingRun> {
  const { host, trainingRunId, telemetry, keyRing } = deps;
  const growth = await openGrowth(settings, {
    host,
    trainingRunId,
    telemetry,
    keyRing,
    certify: true,
    ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
  });
  const reports = deps.fieldReports;
  const ownedBus =
    reports === undefined || reports.bus !== undefined
      ? undefined
      : openBusFromSettings({ oona: { ...settings.oona, busUrl: 'memory://' } }, { keyRing, telemetry });
  try {
    const bus = reports?.bus ?? ownedBus;
    const tamiyo = await createTamiyo(settings, {
      policy: deps.policy,
      ...(deps.heuristic === undefined ? {} : { heuristic: deps.heuristic }),
      ...(deps.seed === undefined ? {} : { seed: deps.seed }),
      host: host.descriptor,
      candidates: candidatesFor(growth.catalog, growth.library, host.descriptor),
      keyRing,
      trainingRunId,
      telemetry,
      ...(reports === undefined ? {} : { fieldReports: { walPath: reports.walPath, ...(bus === undefined ? {} : { bus }) } }),
    });
    const close = closeOnce((reason: string = 'run_failed') =>
      runCleanup('growing run', [() => tamiyo.close(reason), () => growth.close(), ownedBus !== undefined && (() => ownedBus.close())]),
    );
    return {
      collaborators: { controller: tamiyo.service, executor: growth.kasmina.executor, commandVerifier: growth.commandVerifier.verifier },
      tamiyo,
      growth,
      seedReports: () => growth.kasmina.executor.seedReports(),
      close,
      [Symbol.asyncDispose]: () => close(),
    };
  } catch (error) {
    await runCleanup('growing run', [() => growth.close(), ownedBus !== undefined && (() => ownedBus.close())]).catch(
      (cleanup: unknown) => {
        throw new AggregateError([error, cleanup], 'opening the growing run failed, and so did closing what was opened');
      },
    );
    throw error;
  }
}

/**
 * Every catalog blueprint whose family fits one of the host's sites, with its Urza graph
 * metadata and safety data sheet. A sheet or metadata that fails its check (Urza reported it
 * CRITICAL) makes the blueprint unavailable.
 */
export function candidatesFor(catalog: KarnCatalog, library: UrzaLibrary, host: HostDescriptor): BlueprintCandidate[] {
  return catalog
    .list()
    .filter((d) => host.sites.some((site) => catalog.familyOf(d.blueprintId).fits(site)))
    .flatMap((descriptor) => {
      let graph: GraphMetadata | undefined;
      let bsds: BSDS | undefined;
      try {
        graph = library.getGraphMetadata(descriptor.blueprintId);
        bsds = library.getBsds(descriptor.blueprintId);
      } catch (error) {
        if (isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) return [];
        throw error;
      }
      return [
        {
          descriptor,
          ...(graph === undefined ? {} : { graph }),
          ...(bsds === undefined ? {} : { bsds }),
          quarantined: descriptor.quarantineOnly,
        },
      ];
    });
}
