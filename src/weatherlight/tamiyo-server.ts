/**
 * Tamiyo as a service of its own (`esper serve tamiyo`): one controller process for every
 * training run on the bus — one run, or a fleet.
 *
 * A run announces itself (`RunAnnouncement`, RUNNING: its id, host and seed) when it opens
 * and again before each epoch's packet; the first announcement of a run the server does not
 * serve opens a Tamiyo for it (candidates read from this server's Urza, compiled and
 * certified first when the host's sites have none) and a {@link ControlResponder} that
 * answers the run's state packets. Its field reports go to `<fieldReportDir>/<run id>.wal`
 * and onto the bus. An ENDED announcement closes the run's Tamiyo with the run's reason; a
 * run that ended failed or interrupted is taken up anew when it announces itself again (its
 * trainer was restarted and resumed), one that completed is not.
 *
 * A restarted server takes each run up again at its next announcement; the run's packets
 * published meanwhile wait in the run's consumer group (it outlives the process on Redis)
 * and are answered then — their commands reach Kasmina stale and are rejected with that
 * reason. What Tamiyo had learned of the run in memory (the heuristic's plateau history) is
 * not recovered.
 */
import path from 'node:path';
import {
  buildTelemetryPacket,
  closeOnce,
  describeError,
  ErrorCode,
  EsperError,
  runCleanup,
  type EsperSettings,
  type TelemetrySink,
} from '../core/index.js';
import { KarnCatalog } from '../karn/index.js';
import { BusMessageType, RunPhase, TelemetryLevel, type RunAnnouncement } from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { runNonceFile, type KeyRing } from '../security/index.js';
import { ControlResponder, createTamiyo, type HeuristicPolicyOptions, type Tamiyo, type TamiyoPolicySpec } from '../tamiyo/index.js';
import { openUrzaLibrary, type UrzaLibrary } from '../urza/index.js';
import { candidatesFor } from './growing-run.js';
import { provisionBlueprints } from './growth.js';

/** The end reason of a run that completed (it is never resumed). */
const RUN_COMPLETED = 'run_completed';

/** Completed runs remembered against a late RUNNING announcement (the oldest forgotten first). */
const ENDED_RUNS_REMEMBERED = 4_096;

/** Consumer group of the servers reading run announcements (one server takes each run). */
export const TAMIYO_RUNS_GROUP = 'tamiyo-runs';

/** Events the server emits (source `weatherlight`). */
export const TamiyoServerEvent = {
  /** A run was taken up (INFO; attributes: run id, candidates, policy). */
  RUN_OPENED: 'tamiyo_run_opened',
  /** A run's Tamiyo was closed (INFO; attributes: run id, reason). */
  RUN_CLOSED: 'tamiyo_run_closed',
  /** A run could not be taken up (ERROR; attributes: run id, error). */
  RUN_REFUSED: 'tamiyo_run_refused',
} as const;

/** What {@link openTamiyoServer} is given; none of it is closed by the server. */
export interface TamiyoServerDeps {
  readonly bus: Bus;
  /** Signs commands; checks sheets. */
  readonly keyRing: KeyRing;
  readonly telemetry: TelemetrySink;
  readonly policy: TamiyoPolicySpec;
  readonly heuristic?: HeuristicPolicyOptions;
  /** Directory of the runs' field-report logs (created if missing). */
  readonly fieldReportDir: string;
  /** Consumer name (one per process). @default `tamiyo-<pid>` */
  readonly consumer?: string;
  /** Called with one line per run opened or closed and per provisioning step. */
  readonly onProgress?: (line: string) => void;
}

/** Counters of a {@link TamiyoServer}. */
export interface TamiyoServerStats {
  readonly runsOpened: number;
  readonly runsClosed: number;
  readonly runsRefused: number;
  /** Runs being served now. */
  readonly serving: readonly string[];
}

interface ServedRun {
  readonly tamiyo: Tamiyo;
  readonly responder: ControlResponder;
}

/** A Tamiyo serving every announced run; see the module comment. */
export interface TamiyoServer extends AsyncDisposable {
  /** Subscribes to announcements; resolves once announcements from now on are seen. */
  start(): Promise<void>;
  /** The Tamiyo serving `runId`, if any. */
  run(runId: string): Tamiyo | undefined;
  stats(): TamiyoServerStats;
  /** Stops reading, closes every run's Tamiyo (reason `controller_stopped`), then Urza. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens Urza and returns a server ready to {@link TamiyoServer.start}.
 * @throws EsperError from Urza
 */
export async function openTamiyoServer(settings: EsperSettings, deps: TamiyoServerDeps): Promise<TamiyoServer> {
  const library = await openUrzaLibrary(settings, { keyRing: deps.keyRing, telemetry: deps.telemetry });
  return new Server(settings, deps, library);
}

class Server implements TamiyoServer {
  readonly #settings: EsperSettings;
  readonly #deps: TamiyoServerDeps;
  readonly #library: UrzaLibrary;
  readonly #catalog = new KarnCatalog();
  readonly #runs = new Map<string, ServedRun>();
  /** Runs that completed; a late RUNNING announcement does not reopen them. */
  readonly #ended = new Set<string>();
  #subscription: Subscription | undefined;
  #opened = 0;
  #closed = 0;
  #refused = 0;
  #closing = false;

  constructor(settings: EsperSettings, deps: TamiyoServerDeps, library: UrzaLibrary) {
    this.#settings = settings;
    this.#deps = deps;
    this.#library = library;
  }

  async start(): Promise<void> {
    if (this.#subscription !== undefined) throw new EsperError(ErrorCode.INVALID_STATE, 'the Tamiyo server is started already');
    this.#subscription = this.#deps.bus.subscribe({
      group: TAMIYO_RUNS_GROUP,
      consumer: this.#deps.consumer ?? `tamiyo-${process.pid}`,
      types: [BusMessageType.RUN_ANNOUNCEMENT],
      handler: (delivery) => this.#onAnnouncement(delivery),
    });
    await this.#subscription.ready;
  }

  run(runId: string): Tamiyo | undefined {
    return this.#runs.get(runId)?.tamiyo;
  }

  stats(): TamiyoServerStats {
    return { runsOpened: this.#opened, runsClosed: this.#closed, runsRefused: this.#refused, serving: [...this.#runs.keys()] };
  }

  readonly close = closeOnce(async () => {
    this.#closing = true;
    const subscription = this.#subscription;
    await runCleanup('tamiyo server', [
      subscription !== undefined && (() => subscription.close()),
      ...[...this.#runs.keys()].map((runId) => () => this.#closeRun(runId, 'controller_stopped')),
      () => this.#library.close(),
    ]);
  });

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #onAnnouncement(delivery: Delivery): Promise<void> {
    const announcement = delivery.message as RunAnnouncement;
    const runId = announcement.trainingRunId;
    if (this.#closing || runId === '') return;
    if (announcement.phase === RunPhase.ENDED) {
      // A completed run is over for good; a failed or interrupted one may be started again
      // (a supervisor restarts its trainer, which resumes) and is then taken up anew.
      if (announcement.reason === RUN_COMPLETED) {
        this.#ended.add(runId);
        if (this.#ended.size > ENDED_RUNS_REMEMBERED) this.#ended.delete(this.#ended.values().next().value as string);
      }
      if (this.#runs.has(runId)) await this.#closeRun(runId, announcement.reason || 'run_ended');
      return;
    }
    if (announcement.phase !== RunPhase.RUNNING || this.#runs.has(runId) || this.#ended.has(runId)) return;
    try {
      await this.#openRun(announcement);
    } catch (error) {
      // Acknowledged, not retried: the next announcement of the run tries again.
      this.#refused += 1;
      this.#event(TamiyoServerEvent.RUN_REFUSED, TelemetryLevel.ERROR, runId, { error: describeError(error) });
      this.#deps.onProgress?.(`run ${runId} refused: ${describeError(error)}`);
    }
  }

  async #openRun(announcement: RunAnnouncement): Promise<void> {
    const { bus, keyRing, telemetry } = this.#deps;
    const runId = announcement.trainingRunId;
    const host = announcement.host;
    if (host === undefined || host.sites.length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `run ${runId} announced no host with seed sites`);
    }
    let candidates = candidatesFor(this.#catalog, this.#library, host);
    if (candidates.length === 0) {
      // Another machine's run: this server's Urza has nothing for the host yet.
      await provisionBlueprints(this.#settings, {
        catalog: this.#catalog,
        library: this.#library,
        sites: host.sites,
        telemetry,
        keyRing,
        certify: true,
        ...(this.#deps.onProgress === undefined ? {} : { onProgress: this.#deps.onProgress }),
      });
      candidates = candidatesFor(this.#catalog, this.#library, host);
    }
    const tamiyo = await createTamiyo(this.#settings, {
      policy: this.#deps.policy,
      ...(this.#deps.heuristic === undefined ? {} : { heuristic: this.#deps.heuristic }),
      seed: Number(announcement.seed),
      host,
      candidates,
      keyRing,
      trainingRunId: runId,
      telemetry,
      fieldReports: { walPath: path.join(this.#deps.fieldReportDir, `${runId}.wal`), bus },
      policyUpdates: { bus, nonceFile: runNonceFile(this.#settings, 'tamiyo-policy', runId) },
    });
    const responder = new ControlResponder({ bus, controller: tamiyo.service, trainingRunId: runId, telemetry });
    try {
      await responder.start();
    } catch (error) {
      await runCleanup('tamiyo run', [() => responder.close(), () => tamiyo.close('run_failed')]).catch(() => undefined);
      throw error;
    }
    this.#runs.set(runId, { tamiyo, responder });
    this.#opened += 1;
    this.#event(TamiyoServerEvent.RUN_OPENED, TelemetryLevel.INFO, runId, {
      candidates: candidates.length,
      policy: this.#deps.policy,
      global_step: Number(announcement.globalStep),
    });
    this.#deps.onProgress?.(
      `run ${runId}: serving with the ${this.#deps.policy} policy over ${candidates.length} blueprints (announced at step ${announcement.globalStep})`,
    );
  }

  async #closeRun(runId: string, reason: string): Promise<void> {
    const served = this.#runs.get(runId);
    if (served === undefined) return;
    this.#runs.delete(runId);
    await runCleanup(`tamiyo run ${runId}`, [() => served.responder.close(), () => served.tamiyo.close(reason)]);
    this.#closed += 1;
    this.#event(TamiyoServerEvent.RUN_CLOSED, TelemetryLevel.INFO, runId, { reason });
    this.#deps.onProgress?.(`run ${runId}: closed (${reason})`);
  }

  #event(description: string, level: TelemetryLevel, runId: string, attributes: Record<string, string | number>): void {
    this.#deps.telemetry.emit(
      buildTelemetryPacket({
        source: 'weatherlight',
        trainingRunId: runId,
        events: [{ description, level, attributes: { training_run_id: runId, ...attributes } }],
      }),
    );
  }
}
