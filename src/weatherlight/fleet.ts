/**
 * A distributed run on one machine (`esper run --distributed`, `esper up`): Weatherlight's
 * supervisor runs Tamiyo (`esper serve tamiyo`, serving until stopped) and one trainer
 * process per run (`esper serve trainer`, done when its run is), all over the Redis bus of
 * the settings. A crashed service is restarted with backoff within its budget; a restarted
 * trainer gets the same run id and directory, so it resumes from its last checkpoint.
 */
import type { EsperSettings, TelemetrySink } from '../core/index.js';
import type { HostDescriptor } from '../leyline/index.js';
import type { KeyRing } from '../security/index.js';
import { KarnCatalog } from '../karn/index.js';
import { openUrzaLibrary } from '../urza/index.js';
import { provisionBlueprints } from './growth.js';
import type { ProcessServiceSpec, ServiceOutput, ServiceSpec } from './service-instance.js';
import { Supervisor, type SupervisorResult } from './supervisor.js';

/** How to start the `esper` command in a child process. */
export interface EsperCommand {
  /** @default process.execPath (node) */
  readonly command?: string;
  /** Arguments before the subcommand: node's flags and the entry script. */
  readonly args: readonly string[];
}

/** The `esper` command this process was started as (node, its flags, the entry script). */
export function thisEsperCommand(): EsperCommand {
  const script = process.argv[1];
  return { command: process.execPath, args: [...process.execArgv, ...(script === undefined ? [] : [script])] };
}

/** One trainer of a fleet. */
export interface FleetTrainer {
  readonly runId: string;
  readonly runDir: string;
  /** Flags of `esper serve trainer` besides `--run-id` and `--out` (config, seed, ...). */
  readonly args: readonly string[];
}

/** What {@link superviseFleet} runs. */
export interface FleetOptions {
  readonly settings: EsperSettings;
  readonly esper: EsperCommand;
  /** Tamiyo's policy (`esper serve tamiyo --policy`). */
  readonly policy: string;
  readonly trainers: readonly FleetTrainer[];
  /** Receives the supervisor's packets (mode, restarts, backoff, budget). */
  readonly telemetry: TelemetrySink;
  /** Where the children's output lines go, prefixed `[name]`. */
  readonly output: ServiceOutput;
  /** Variables set for every child over this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Also run Nissa (`esper serve nissa`: metrics and the live view of every run). @default false */
  readonly nissa?: boolean;
  /**
   * Also run Simic (`esper serve simic`: learns from every run's field reports; needs the
   * `gnn` policy with `tamiyo.gnnSampling` and `tamiyo.gnnInitSeed`). @default false
   */
  readonly simic?: boolean;
}

/** The services of a fleet: `tamiyo`, `nissa` and `simic` (when asked), then `trainer-1` … `trainer-N`. */
export function fleetServices(options: FleetOptions): ServiceSpec[] {
  const base = (name: string, args: readonly string[]): ProcessServiceSpec => ({
    kind: 'process',
    name,
    ...(options.esper.command === undefined ? {} : { command: options.esper.command }),
    args: [...options.esper.args, ...args],
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  return [
    { ...base('tamiyo', ['serve', 'tamiyo', '--policy', options.policy]), untilStopped: true },
    ...(options.nissa === true ? [{ ...base('nissa', ['serve', 'nissa']), untilStopped: true }] : []),
    ...(options.simic === true ? [{ ...base('simic', ['serve', 'simic']), untilStopped: true }] : []),
    ...options.trainers.map((t, i) => base(`trainer-${i + 1}`, ['serve', 'trainer', '--run-id', t.runId, '--out', t.runDir, ...t.args])),
  ];
}

/**
 * Runs the fleet under a supervisor configured from `settings.weatherlight` until every
 * trainer completed, a service exhausted its restart budget, or `signal` aborts; then
 * stops Tamiyo (draining) and resolves with every service's final state.
 */
export async function superviseFleet(options: FleetOptions, signal: AbortSignal): Promise<SupervisorResult> {
  const w = options.settings.weatherlight;
  const supervisor = new Supervisor({
    services: fleetServices(options),
    telemetry: options.telemetry,
    backoff: { baseMs: w.backoffBaseMs, maxMs: Math.max(w.backoffMaxMs, w.backoffBaseMs) },
    restartBudget: { maxRestarts: w.restartBudget, windowMs: w.restartWindowMs },
    healthyAfterMs: w.healthyAfterMs,
    telemetryIntervalMs: w.telemetryIntervalMs,
    drainDeadlineMs: w.drainDeadlineMs,
    output: options.output,
  });
  return supervisor.run(signal);
}

/**
 * Compiles and certifies, once, what every trainer and Tamiyo of a fleet will read from the
 * shared Urza — before they start, so no two processes forge into one library at once.
 */
export async function provisionHost(
  settings: EsperSettings,
  deps: {
    readonly host: HostDescriptor;
    readonly keyRing: KeyRing;
    readonly telemetry: TelemetrySink;
    readonly onProgress?: (line: string) => void;
  },
): Promise<void> {
  const library = await openUrzaLibrary(settings, { keyRing: deps.keyRing, telemetry: deps.telemetry });
  try {
    await provisionBlueprints(settings, {
      catalog: new KarnCatalog(),
      library,
      sites: deps.host.sites,
      telemetry: deps.telemetry,
      keyRing: deps.keyRing,
      certify: true,
      ...(deps.onProgress === undefined ? {} : { onProgress: deps.onProgress }),
    });
  } finally {
    await library.close();
  }
}
