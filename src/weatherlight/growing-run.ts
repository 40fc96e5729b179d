/**
 * One growing run, composed: {@link openGrowth} (Urza, forge, sheets, command verifier,
 * Kasmina) plus Tamiyo (`createTamiyo`) choosing among the blueprints compiled for the
 * host's sites — what Tolaria's trainer needs as controller, executor and command verifier.
 * Control crosses the run's bus: the trainer's controller is a {@link ControlLink} that
 * publishes each state packet, Tamiyo's {@link ControlResponder} answers it and publishes its
 * command, and Kasmina's {@link CommandInbox} receives the command and acknowledges its fate.
 */
import { closeOnce, ErrorCode, isEsperError, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import type { KarnCatalog } from '../karn/index.js';
import type { SeedReport } from '../kasmina/index.js';
import { BusMessageType, type BSDS, type FieldReport, type HostDescriptor } from '../leyline/index.js';
import { CommandInbox } from '../kasmina/index.js';
import { openBusFromSettings, type Bus, type Subscription } from '../oona/index.js';
import { runNonceFile, type KeyRing } from '../security/index.js';
import {
  ControlResponder,
  createTamiyo,
  type BlueprintCandidate,
  type HeuristicPolicyOptions,
  type Tamiyo,
  type TamiyoPolicy,
  type TamiyoPolicySpec,
} from '../tamiyo/index.js';
import type { HostModel, TrainerDependencies } from '../tolaria/index.js';
import type { GraphMetadata, UrzaLibrary } from '../urza/index.js';
import { ControlLink, type ControlMode } from './control-link.js';
import { openGrowth, type Growth } from './growth.js';

/** What {@link openGrowingRun} is given; none of it is closed by the run. */
export type GrowingRunDeps = GrowingRunCommonDeps & (EmbeddedControllerDeps | RemoteControllerDeps);

/** Tamiyo in the run's process. */
export interface EmbeddedControllerDeps {
  /** @default 'embedded' */
  readonly controller?: 'embedded';
  /** Tamiyo's policy, by name or as an object (which the run then owns). */
  readonly policy: TamiyoPolicySpec | TamiyoPolicy;
  /** Options of the heuristic policy. */
  readonly heuristic?: HeuristicPolicyOptions;
  /** Keep Tamiyo's field reports in a record log at `walPath` (and publish them on the run's bus). @default none kept */
  readonly fieldReports?: { readonly walPath: string };
  /** How the trainer waits for Tamiyo ({@link ControlMode}). @default 'lockstep' */
  readonly control?: ControlMode;
}

/**
 * Tamiyo elsewhere on the bus (a {@link TamiyoServer}, `esper serve tamiyo`): the run
 * announces itself, never waits for a decision (`async`), and reads the field reports the
 * server publishes for it.
 */
export interface RemoteControllerDeps {
  readonly controller: 'remote';
}

/** What every growing run is given. */
export interface GrowingRunCommonDeps {
  readonly host: HostModel;
  readonly trainingRunId: string;
  readonly telemetry: TelemetrySink;
  /** Signs and verifies commands; signs and checks safety data sheets. */
  readonly keyRing: KeyRing;
  /** The run seed (the `gnn` policy's weights are drawn from it). @default 0 */
  readonly seed?: number;
  /**
   * The run's bus: state packets, commands, acknowledgements and field reports travel on it.
   * Not closed by the run. @default an in-process (`memory://`) bus the run opens and closes
   */
  readonly bus?: Bus;
  /** Called with one line per provisioning step (forge, certification). */
  readonly onProgress?: (line: string) => void;
}

/** A composed growing run; `T` is its Tamiyo when embedded, `undefined` when remote. */
export interface GrowingRun<T extends Tamiyo | undefined = Tamiyo | undefined> extends AsyncDisposable {
  /** What Tolaria's trainer takes: Tamiyo as controller, Kasmina as executor, the run's command verifier. */
  readonly collaborators: Required<Pick<TrainerDependencies, 'controller' | 'executor' | 'commandVerifier'>>;
  /** Tamiyo, when it runs in this process (`controller: 'embedded'`). */
  readonly tamiyo: T;
  readonly growth: Growth;
  /** The run's bus. */
  readonly bus: Bus;
  /** The trainer's side of the control loop (its controller). */
  readonly control: ControlLink;
  /** Where commands for the run arrive (Tamiyo's and operators'). */
  readonly inbox: CommandInbox;
  /** Every seed Kasmina germinated and what became of it (also after close). */
  seedReports(): readonly SeedReport[];
  /**
   * The run's field reports: Tamiyo's own when embedded; with a remote Tamiyo, those its
   * server published on the bus for this run and this process received (also after close).
   */
  fieldReports(): readonly FieldReport[];
  /**
   * Waits (bounded by `tolaria.tamiyoTimeoutMs`) for a remote Tamiyo's answer to the run's
   * newest epoch packet ({@link ControlLink.settle}), closes the command inbox (commands not
   * applied are acknowledged RUN_ENDED) and Tamiyo's responder, Tamiyo (open field-report
   * windows aborted with `reason`), then Kasmina, the
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
export async function openGrowingRun(
  settings: EsperSettings,
  deps: GrowingRunCommonDeps & EmbeddedControllerDeps,
): Promise<GrowingRun<Tamiyo>>;
export async function openGrowingRun(
  settings: EsperSettings,
  deps: GrowingRunCommonDeps & RemoteControllerDeps,
): Promise<GrowingRun<undefined>>;
export async function openGrowingRun(settings: EsperSettings, deps: GrowingRunDeps): Promise<GrowingRun>;
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
  const ownedBus =
    deps.bus === undefined ? openBusFromSettings({ oona: { ...settings.oona, busUrl: 'memory://' } }, { keyRing, telemetry }) : undefined;
  const bus = deps.bus ?? (ownedBus as Bus);
  const opened: (() => Promise<void>)[] = [() => growth.close(), ...(ownedBus === undefined ? [] : [() => ownedBus.close()])];
  try {
    const tamiyo =
      deps.controller === 'remote'
        ? undefined
        : await createTamiyo(settings, {
            policy: deps.policy,
            ...(deps.heuristic === undefined ? {} : { heuristic: deps.heuristic }),
            ...(deps.seed === undefined ? {} : { seed: deps.seed }),
            host: host.descriptor,
            candidates: candidatesFor(growth.catalog, growth.library, host.descriptor),
            keyRing,
            trainingRunId,
            telemetry,
            ...(deps.fieldReports === undefined ? {} : { fieldReports: { walPath: deps.fieldReports.walPath, bus } }),
            policyUpdates: { bus, nonceFile: runNonceFile(settings, 'tamiyo-policy', trainingRunId) },
          });
    if (tamiyo !== undefined) opened.unshift(() => tamiyo.close('run_failed'));
    const inbox = new CommandInbox({ bus, trainingRunId, telemetry });
    opened.unshift(() => inbox.close());
    await inbox.start();
    let responder: ControlResponder | undefined;
    const remoteReports: FieldReport[] = [];
    let reportSubscription: Subscription | undefined;
    if (tamiyo !== undefined) {
      const local = new ControlResponder({ bus, controller: tamiyo.service, trainingRunId, telemetry });
      responder = local;
      opened.unshift(() => local.close());
      await local.start();
    } else {
      const subscription = bus.subscribe({
        group: `trainer-${trainingRunId}-field-reports`,
        consumer: `trainer-${process.pid}`,
        types: [BusMessageType.FIELD_REPORT],
        handler: (delivery) => {
          if (delivery.trainingRunId === trainingRunId) remoteReports.push(delivery.message as FieldReport);
        },
      });
      reportSubscription = subscription;
      opened.unshift(() => subscription.close());
      await subscription.ready;
    }
    const control = new ControlLink({
      bus,
      inbox,
      mode: deps.controller === 'remote' ? 'async' : (deps.control ?? 'lockstep'),
      timeoutMs: settings.tolaria.tamiyoTimeoutMs,
      // The policy's kind is fixed for the run (a policy update changes a GNN's weights only).
      stepRequests: tamiyo === undefined || tamiyo.service.policy.stepDecisions !== false,
      ...(deps.controller === 'remote' ? { announce: { trainingRunId, host: host.descriptor, seed: deps.seed ?? 0 } } : {}),
    });
    await control.announce();
    const close = closeOnce((reason: string = 'run_failed') =>
      runCleanup('growing run', [
        // A remote Tamiyo's answers to the last packets first (bounded), so the commands it
        // decided while the run was ending are received. Then the inbox: its RUN_ENDED
        // acknowledgements reach Tamiyo before its responder stops (a remote Tamiyo's, before
        // the run's end is announced).
        () => control.settle(settings.tolaria.tamiyoTimeoutMs),
        () => inbox.close(),
        () => control.announceEnd(reason),
        responder !== undefined && (() => responder.close()),
        tamiyo !== undefined && (() => tamiyo.close(reason)),
        reportSubscription !== undefined && (() => reportSubscription.close()),
        () => growth.close(),
        ownedBus !== undefined && (() => ownedBus.close()),
      ]),
    );
    return {
      collaborators: { controller: control, executor: growth.kasmina.executor, commandVerifier: growth.commandVerifier.verifier },
      tamiyo,
      growth,
      bus,
      control,
      inbox,
      seedReports: () => growth.kasmina.executor.seedReports(),
      fieldReports: () => tamiyo?.fieldReports?.reports() ?? remoteReports,
      close,
      [Symbol.asyncDispose]: () => close(),
    };
  } catch (error) {
    await runCleanup('growing run', opened).catch((cleanup: unknown) => {
      throw new AggregateError([error, cleanup], 'opening the growing run failed, and so did closing what was opened');
    });
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
