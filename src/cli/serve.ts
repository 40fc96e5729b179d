/**
 * `esper serve <role>`: one service of a distributed system in this process, over the Redis
 * bus of the settings — `tamiyo` (the controller of every run on the bus, until stopped) or
 * `trainer` (Tolaria + Kasmina for one run, until it is done; started again with the same
 * `--run-id` and `--out`, it resumes from its last checkpoint), `simic` (learns the GNN policy
 * from every run's field reports and publishes gated updates) or `nissa`. `esper up` starts these
 * under Weatherlight's supervisor; on several machines, start them by hand against one Redis.
 */
import path from 'node:path';
import { redactUrl, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { openBusFromSettings } from '../oona/index.js';
import { createNissa } from '../nissa/index.js';
import { KeyRing } from '../security/index.js';
import type { TamiyoPolicySpec } from '../tamiyo/index.js';
import { initTensorBackend } from '../tensor/index.js';
import { isPathSafeRunId } from '../tolaria/index.js';
import { episodeEvaluator, EXPERIMENT_HEURISTIC, openSimicServer, openTamiyoServer } from '../weatherlight/index.js';
import { findTask } from '../study/index.js';
import { Progress, StderrEventSink } from './progress.js';
import { RUN_FLAGS } from './run-config.js';
import { executeRun, prepareRun } from './run.js';
import { distributedSettings, openServiceBus, type RunRunOptions, type ServiceBus } from './run-setup.js';
import {
  ExitCode,
  helpText,
  parseCommandLine,
  reportFailure,
  UsageError,
  type CliIo,
  type CommandSpec,
  type FlagSpec,
  type FlagValues,
} from './scaffold.js';

const SERVE_TAMIYO_COMMAND: CommandSpec<{ readonly policy: (typeof RUN_FLAGS)['policy'] }> = {
  name: 'esper serve tamiyo',
  summary: 'the controller of every run on the Redis bus, until SIGINT/SIGTERM',
  synopsis: '[--policy <name>]',
  flags: { policy: RUN_FLAGS.policy },
  notes: `Field reports of every run go to <storage.varDir>/tamiyo/field-reports/<run id>.wal and
onto the bus. Needs ESPER_OONA_BUS_URL=redis://… and ESPER_LEYLINE_SECRET (or _KEYS), the
same on every machine of the system.`,
};

const SERVE_SIMIC_COMMAND: CommandSpec<Record<string, never>> = {
  name: 'esper serve simic',
  summary: "learn Tamiyo's policy from every run's field reports on the Redis bus, until SIGINT/SIGTERM",
  synopsis: '',
  flags: {},
  notes: `Ingests field reports (group simic) into the replay buffer at simic.replayDir, runs a PPO
update once simic.reportsPerUpdate reports of the version being trained carry a decision
context (Tamiyo with --policy gnn and tamiyo.gnnSampling), and publishes an update that passes
its gates, the held-out ones after an evaluation on simic.evaluationTask (the candidate, the
current policy and the heuristic each play simic.evaluationSeeds held-out seeds, in child
processes). Needs tamiyo.gnnInitSeed (ESPER_TAMIYO_GNN_INIT_SEED) set to the same value for every
Tamiyo, ESPER_OONA_BUS_URL=redis://… and ESPER_LEYLINE_SECRET (or _KEYS). With an empty
simic.evaluationTask nothing is evaluated: every update is blocked (simic_policy_blocked).`,
};

const SERVE_NISSA_COMMAND: CommandSpec<Record<string, never>> = {
  name: 'esper serve nissa',
  summary: 'metrics, health and the live view of every run on the Redis bus, until SIGINT/SIGTERM',
  synopsis: '',
  flags: {},
  notes: `Serves /metrics (Prometheus), /healthz and /metrics/summary on nissa.httpHost:nissa.httpPort
(ESPER_NISSA_HTTP_HOST / _PORT; 127.0.0.1:9100, another free port when that one is taken).
Needs ESPER_OONA_BUS_URL=redis://… and ESPER_LEYLINE_SECRET (or _KEYS).`,
};

const { distributed: _distributed, trainers: _trainers, 'no-ui': _noUi, ...TRAINER_RUN_FLAGS } = RUN_FLAGS;

const SERVE_TRAINER_FLAGS = {
  'run-id': { kind: 'string', value: '<id>', help: 'the run id (default a new one); the same id and --out resume the run' },
  ...TRAINER_RUN_FLAGS,
} as const;

const SERVE_TRAINER_COMMAND: CommandSpec<typeof SERVE_TRAINER_FLAGS> = {
  name: 'esper serve trainer',
  summary: 'train one run (Tolaria + Kasmina) whose controller is a Tamiyo on the Redis bus',
  synopsis: '[options]',
  flags: SERVE_TRAINER_FLAGS,
  notes: `The run announces itself to Tamiyo, publishes each state packet without waiting, applies a
command when it arrives if it is still fresh, checkpoints at each epoch end in
<run dir>/checkpoints and writes record.json and report.md. Needs ESPER_OONA_BUS_URL=redis://…
and ESPER_LEYLINE_SECRET (or _KEYS).`,
};

const SERVE_HELP = `Usage: esper serve <tamiyo|trainer|simic|nissa> [options]

  tamiyo    ${SERVE_TAMIYO_COMMAND.summary}
  trainer   ${SERVE_TRAINER_COMMAND.summary}
  simic     ${SERVE_SIMIC_COMMAND.summary}
  nissa     ${SERVE_NISSA_COMMAND.summary}

esper serve <role> --help shows a role's options.
`;

/** Runs `esper serve` with the arguments after `serve`; returns the exit code. */
export async function runServe(argv: readonly string[], io: CliIo, options: RunRunOptions = {}): Promise<number> {
  const [role, ...rest] = argv;
  if (role === 'tamiyo') return serveTamiyo(rest, io, options);
  if (role === 'trainer') return serveTrainer(rest, io, options);
  if (role === 'nissa') return serveNissa(rest, io, options);
  if (role === 'simic') return serveSimic(rest, io, options);
  if (role === undefined || role === '-h' || role === '--help') {
    io.stdout.write(SERVE_HELP);
    return role === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  io.stderr.write(`esper serve: unknown role '${role}' (tamiyo, trainer, simic or nissa)\n`);
  return ExitCode.USAGE;
}

/** What a long-running role's body gets from {@link serveRole}. */
interface RoleContext<F extends Readonly<Record<string, FlagSpec>>> {
  readonly values: FlagValues<F>;
  readonly settings: EsperSettings;
  readonly keyRing: KeyRing;
  /** The bus, and the telemetry sink of the role (stderr, and the bus when it carries telemetry). */
  readonly bus: ServiceBus['bus'];
  readonly telemetry: TelemetrySink;
  /** Resolves at SIGINT/SIGTERM (or when the caller's signal aborts). */
  readonly stopped: Promise<void>;
}

/**
 * The frame every long-running role shares: flags and `--help`, the distributed settings, the
 * key ring and the bus (`openBus`), then `serve` until it returns; a failure anywhere is
 * reported with the role's name and exit code, and the bus is closed on the way out.
 */
async function serveRole<F extends Readonly<Record<string, FlagSpec>>>(
  spec: CommandSpec<F>,
  argv: readonly string[],
  io: CliIo,
  options: RunRunOptions,
  openBus: (settings: EsperSettings, keyRing: KeyRing, stderr: TelemetrySink) => ServiceBus,
  serve: (role: RoleContext<F>) => Promise<void>,
): Promise<number> {
  let values: FlagValues<F>;
  let settings: EsperSettings;
  try {
    const parsed = parseCommandLine(spec, argv);
    if (parsed.help) {
      io.stdout.write(helpText(spec));
      return ExitCode.OK;
    }
    values = parsed.values;
    settings = await distributedSettings(io, spec.name, options);
  } catch (error) {
    return reportFailure(io, spec, error);
  }
  const keyRing = KeyRing.fromSettings(settings.security);
  const { bus, telemetry, close: closeBus } = openBus(settings, keyRing, new StderrEventSink(io, new Progress(io, 1)));
  const stop = stopSignal(options.signal);
  try {
    await serve({ values, settings, keyRing, bus, telemetry, stopped: stop.stopped });
    return ExitCode.OK;
  } catch (error) {
    return reportFailure(io, spec, error);
  } finally {
    stop.dispose();
    await closeBus().catch((error: unknown) => {
      io.stderr.write(`${spec.name}: closing the bus failed: ${String(error)}\n`);
    });
  }
}

function serveTamiyo(argv: readonly string[], io: CliIo, options: RunRunOptions): Promise<number> {
  const spec = SERVE_TAMIYO_COMMAND;
  // As in `esper run`: Tamiyo's per-step risk warnings (loss spikes on single batches) would
  // drown the terminal; they are on the bus. Errors, and everyone else's warnings, show.
  const quietTamiyo = (stderr: TelemetrySink): TelemetrySink => ({
    emit(packet) {
      if (packet.sourceSubsystem === 'tamiyo' && packet.level < TelemetryLevel.ERROR) return;
      stderr.emit(packet);
    },
  });
  const openBus = (settings: EsperSettings, keyRing: KeyRing, stderr: TelemetrySink) =>
    openServiceBus(settings, keyRing, io, spec.name, quietTamiyo(stderr));
  return serveRole(spec, argv, io, options, openBus, async ({ values, settings, keyRing, bus, telemetry, stopped }) => {
    const policy = values.policy ?? 'heuristic';
    // The GNN policy runs on the tensor engine (the heuristic never touches it).
    if (policy === 'gnn') await initTensorBackend();
    const server = await openTamiyoServer(settings, {
      bus,
      keyRing,
      telemetry,
      policy: policy as TamiyoPolicySpec,
      heuristic: EXPERIMENT_HEURISTIC,
      fieldReportDir: path.join(settings.storage.varDir, 'tamiyo', 'field-reports'),
      onProgress: (line) => io.stderr.write(`${spec.name}: ${line}\n`),
    });
    try {
      await server.start();
      io.stderr.write(
        `${spec.name}: serving every run on ${redactUrl(settings.oona.busUrl)} with the ${policy} policy (pid ${process.pid})\n`,
      );
      await stopped;
      io.stderr.write(`${spec.name}: stopping (${server.stats().serving.length} runs still served are closed)\n`);
    } finally {
      await server.close();
    }
  });
}

async function serveTrainer(argv: readonly string[], io: CliIo, options: RunRunOptions): Promise<number> {
  const spec = SERVE_TRAINER_COMMAND;
  let prepared;
  let json: boolean;
  try {
    const { values, help } = parseCommandLine(spec, argv);
    if (help) {
      io.stdout.write(helpText(spec));
      return ExitCode.OK;
    }
    const runId = values['run-id'];
    if (runId !== undefined && !isPathSafeRunId(runId)) {
      throw new UsageError(`--run-id '${runId}' must be letters, digits, '.', '_', '-' (not starting with '.' or '-')`);
    }
    json = values.json;
    const settings = await distributedSettings(io, spec.name, options);
    io.stderr.write(`${spec.name}: pid ${process.pid}\n`);
    prepared = await prepareRun(
      values,
      io,
      { ...options, settings },
      {
        controller: 'remote',
        command: spec.name,
        ...(runId === undefined ? {} : { runId }),
      },
    );
  } catch (error) {
    return reportFailure(io, spec, error);
  }
  return executeRun(prepared, io, options, json, spec);
}

function serveSimic(argv: readonly string[], io: CliIo, options: RunRunOptions): Promise<number> {
  const spec = SERVE_SIMIC_COMMAND;
  const openBus = (settings: EsperSettings, keyRing: KeyRing, stderr: TelemetrySink) =>
    openServiceBus(settings, keyRing, io, spec.name, stderr);
  return serveRole(spec, argv, io, options, openBus, async ({ settings, keyRing, bus, telemetry, stopped }) => {
    await initTensorBackend();
    const taskName = settings.simic.evaluationTask;
    // Stopping kills an evaluation's runs; the update is then blocked, not published.
    const stopping = new AbortController();
    void stopped.then(() => stopping.abort());
    const simic = await openSimicServer(settings, {
      bus,
      keyRing,
      telemetry,
      ...(taskName === ''
        ? {}
        : {
            evaluate: episodeEvaluator({
              task: findTask(taskName),
              settings,
              directory: path.join(settings.storage.varDir, 'simic', 'evaluations'),
              seeds: settings.simic.evaluationSeeds,
              signal: stopping.signal,
            }),
          }),
      onUpdate: (update) => {
        const verdict = update.outcome.published ? 'published' : `blocked (${update.outcome.reasons.join('; ')})`;
        io.stderr.write(
          `${spec.name}: update of ${update.fromVersion} on ${update.reports} reports in ${Math.round(update.durationMs)} ms: ` +
            `reward ${update.stats.averageReward.toFixed(4)}, KL ${update.stats.approxKl.toFixed(4)} → ${update.candidateVersion} ${verdict}\n`,
        );
      },
    });
    try {
      io.stderr.write(
        `${spec.name}: learning ${simic.service.version} from the field reports on ${redactUrl(settings.oona.busUrl)}, an update every ${settings.simic.reportsPerUpdate} reports (pid ${process.pid})\n`,
      );
      await stopped;
      const stats = simic.stats();
      io.stderr.write(
        `${spec.name}: stopping at ${stats.version} (${stats.updates} updates, ${stats.published} published, ${stats.blocked} blocked)\n`,
      );
    } finally {
      await simic.close();
    }
  });
}

function serveNissa(argv: readonly string[], io: CliIo, options: RunRunOptions): Promise<number> {
  const spec = SERVE_NISSA_COMMAND;
  // Nissa's own telemetry stays off the bus it reads (it would count itself): a plain bus.
  const openBus = (settings: EsperSettings, keyRing: KeyRing, stderr: TelemetrySink): ServiceBus => {
    const bus = openBusFromSettings(settings, { keyRing, telemetry: stderr });
    return { bus, telemetry: stderr, close: () => bus.close() };
  };
  return serveRole(spec, argv, io, options, openBus, async ({ settings, bus, telemetry, stopped }) => {
    const nissa = await createNissa(settings, { bus, telemetry });
    try {
      io.stderr.write(
        `${spec.name}: metrics and live view at ${nissa.url}${nissa.movedPort ? ` (port ${settings.nissa.httpPort} was taken)` : ''} for every run on ${redactUrl(settings.oona.busUrl)} (pid ${process.pid})\n`,
      );
      await stopped;
    } finally {
      await nissa.close();
    }
  });
}

/** Resolves `stopped` at SIGINT/SIGTERM (or when `signal` aborts, in tests). */
function stopSignal(signal: AbortSignal | undefined): { readonly stopped: Promise<void>; dispose(): void } {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  if (signal !== undefined) {
    if (signal.aborted) stop();
    signal.addEventListener('abort', () => stop(), { once: true });
    return { stopped, dispose: () => undefined };
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return {
    stopped,
    dispose: () => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    },
  };
}
