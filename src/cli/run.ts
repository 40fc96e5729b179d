/**
 * `esper run`: one process, the whole control loop — Tolaria trains the host while Tamiyo
 * decides and Kasmina executes, over an in-process bus with Urza under `storage.varDir` —
 * then a static baseline with the same step budget, a run record, a short report, report.html
 * and TensorBoard event files.
 *
 * The default host is deliberately small (MLP 32-32 on MNIST) so that growth has headroom
 * to show; `--config` takes a JSON file with any of {@link RunConfig}'s fields. Flags,
 * config, settings, key ring and run directory are all checked before any work starts.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeError, loadSettings, redactUrl, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { createNissa, writeRunReports, type Nissa } from '../nissa/index.js';
import type { KeyRing } from '../security/index.js';
import { runGrowthExperiment, runKeyRing, type ExperimentArm } from '../weatherlight/index.js';
import { Progress, StderrEmergencySink, StderrEventSink } from './progress.js';
import { resolveRunConfig, RUN_COMMAND, RUN_HELP, type RUN_FLAGS, type RunConfig } from './run-config.js';
import { reportPageData } from './run-report-page.js';
import { buildRecord, formatReport, recordJson, type RunReport } from './run-report.js';
import { newRunId, openServiceBus, prepareRunDir, type RunRunOptions } from './run-setup.js';
import {
  ExitCode,
  logSettings,
  parseCommandLine,
  reportFailure,
  withInterrupts,
  type CliIo,
  type CommandSpec,
  type FlagSpec,
  type FlagValues,
} from './scaffold.js';

export { DEFAULT_RUN_CONFIG, RUN_HELP, RunConfigSchema, type RunConfig } from './run-config.js';
export { formatReport, type RunReport, type SeedStory } from './run-report.js';
export type { RunRunOptions } from './run-setup.js';

/** A run whose flags, config, settings, key ring and directory have all been checked. */
export interface PreparedRun {
  readonly runId: string;
  readonly config: RunConfig;
  readonly settings: EsperSettings;
  readonly keyRing: KeyRing;
  readonly runDir: string;
  /**
   * Where Tamiyo runs: in this process (`embedded`), or as a Tamiyo server elsewhere on the
   * Redis bus (`remote`: `esper serve trainer`, a trainer of `esper run --distributed` or
   * `esper up`), which also checkpoints the grown run in `<runDir>/checkpoints` and resumes
   * from the last one when started again on the same directory.
   * @default 'embedded'
   */
  readonly controller?: 'embedded' | 'remote';
  /**
   * Embedded: run Nissa (metrics and the live view) on the run's in-process bus, its URL
   * printed at start (`--no-ui` turns it off). @default false
   */
  readonly ui?: boolean;
}

/** Runs `esper run` with the arguments after `run`; returns the exit code. */
export async function runRun(argv: readonly string[], io: CliIo, options: RunRunOptions = {}): Promise<number> {
  let prepared: PreparedRun;
  let json: boolean;
  try {
    const { values, help } = parseCommandLine(RUN_COMMAND, argv);
    if (help) {
      io.stdout.write(RUN_HELP);
      return ExitCode.OK;
    }
    if (values.distributed || values.trainers > 1 || values.learn) {
      const { runDistributed } = await import('./up.js');
      return await runDistributed(values, io, options);
    }
    json = values.json;
    prepared = await prepareRun(values, io, options, { controller: 'embedded', command: RUN_COMMAND.name });
  } catch (error) {
    return reportFailure(io, RUN_COMMAND, error);
  }
  return executeRun(prepared, io, options, json, RUN_COMMAND);
}

/** The flags a run is prepared from (those of `esper run` and `esper serve trainer`). */
export type RunValues = Pick<FlagValues<typeof RUN_FLAGS>, 'config' | 'dataset' | 'seed' | 'epochs' | 'policy' | 'no-baseline' | 'out'> &
  Partial<Pick<FlagValues<typeof RUN_FLAGS>, 'no-ui'>>;

/**
 * Checks flags, config, settings, key ring and run directory, before any work starts.
 * Latency budgets are reported, not enforced: two arms are compared, as in a study, so the
 * comparison is a function of the seed and not of how busy the machine is.
 * @throws UsageError, SettingsError, EsperError (key ring)
 */
export async function prepareRun(
  values: RunValues,
  io: CliIo,
  options: RunRunOptions,
  how: { readonly controller: 'embedded' | 'remote'; readonly command: string; readonly runId?: string },
): Promise<PreparedRun> {
  const config = resolveRunConfig(values);
  const loaded = options.settings ?? loadSettings();
  const settings: EsperSettings = { ...loaded, core: { ...loaded.core, latencyBudgets: 'observe' } };
  logSettings(io, how.command, settings);
  const keyRing = await runKeyRing(settings, (file) =>
    io.stderr.write(`${how.command}: no signing key configured; created ${file} (mode 0600) for this and later runs\n`),
  );
  const runId = how.runId ?? newRunId();
  const runDir = await prepareRunDir(values.out, settings, runId);
  return {
    runId,
    config,
    settings,
    keyRing,
    runDir,
    controller: how.controller,
    ui: how.controller === 'embedded' && values['no-ui'] !== true,
  };
}

/** Runs a prepared run under SIGINT/SIGTERM handling and prints its report; returns the exit code. */
export async function executeRun(
  prepared: PreparedRun,
  io: CliIo,
  options: RunRunOptions,
  json: boolean,
  spec: CommandSpec<Readonly<Record<string, FlagSpec>>>,
): Promise<number> {
  try {
    const report = await withInterrupts(io, spec.name, options.signal, (signal) => runExperiment(prepared, io, signal));
    io.stdout.write(json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.interrupted ? ExitCode.INTERRUPTED : ExitCode.OK;
  } catch (error) {
    return reportFailure(io, spec, error);
  }
}

/**
 * The experiment (Weatherlight's `runGrowthExperiment`: the grown run, then the baseline)
 * with progress on stderr; writes the record and report and returns the report.
 */
export async function runExperiment(prepared: PreparedRun, io: CliIo, signal: AbortSignal): Promise<RunReport> {
  const { runId, config, settings, keyRing, runDir } = prepared;
  const progress: Record<ExperimentArm, Progress> = { grown: new Progress(io, config.epochs), baseline: new Progress(io, config.epochs) };
  const stderr = new StderrEventSink(io, progress.grown);
  const stderrOnly: TelemetrySink = {
    emit(packet) {
      // Tamiyo's per-step risk warnings (loss spikes on single batches) would drown the
      // terminal; they are in the telemetry. Its errors and everyone else's warnings show.
      if (packet.sourceSubsystem === 'tamiyo' && packet.level < TelemetryLevel.ERROR) return;
      stderr.emit(packet);
    },
  };
  // A remote trainer's bus is Redis, its telemetry goes there too, for the fleet to see; an
  // embedded run with its live view puts its telemetry on its in-process bus, for Nissa.
  const remote = prepared.controller === 'remote';
  const service =
    remote || prepared.ui === true
      ? openServiceBus(
          remote ? settings : { ...settings, oona: { ...settings.oona, busUrl: 'memory://' } },
          keyRing,
          io,
          'esper run',
          stderrOnly,
        )
      : undefined;
  let nissa: Nissa | undefined;
  let failed = true;
  try {
    if (!remote && service !== undefined) {
      nissa = await createNissa(settings, { bus: service.bus, telemetry: stderrOnly });
      io.stderr.write(`esper run: live view and metrics at ${nissa.url}/ (--no-ui turns them off)\n`);
    }
    const result = await runGrowthExperiment(settings, {
      runId,
      config,
      keyRing,
      runDir,
      controller:
        remote && service !== undefined
          ? { kind: 'remote', bus: service.bus }
          : { kind: 'embedded', ...(service === undefined ? {} : { bus: service.bus }) },
      telemetry: service?.telemetry ?? stderrOnly,
      emergencySink: new StderrEmergencySink(io, progress.grown),
      signal,
      onLine: (line) => io.stderr.write(`esper run: ${line}\n`),
      onStep: (r, arm) => progress[arm].step(r),
      onEpoch: (r, arm) => progress[arm].epoch(r),
      onArmEnd: (arm) => progress[arm].finish(),
    });
    const report: RunReport = {
      runId,
      config,
      interrupted: result.interrupted,
      grown: result.grown,
      ...(result.baseline === undefined ? {} : { baseline: result.baseline }),
      seeds: result.seeds,
      commands: {
        issued: result.commands.issued,
        accepted: result.commands.accepted,
        rejected: result.commands.rejected,
        runEnded: result.commands.runEnded,
        ...(result.commands.outcomes === undefined ? {} : { outcomes: result.commands.outcomes }),
      },
      controlPlane: result.controlPlane,
      fieldReports: result.fieldReports.length,
      runDir,
      ...(remote ? { distributed: { busUrl: redactUrl(settings.oona.busUrl), resumedFromStep: result.resumedFromStep } } : {}),
    };
    const record = buildRecord({
      report,
      stepsPerEpoch: result.stepsPerEpoch,
      decisions: result.decisions,
      policy: result.policy,
      fieldReports: result.fieldReports,
      grownEpochs: result.grownEpochs,
      ...(result.tamiyo === undefined ? {} : { tamiyo: result.tamiyo }),
      commandVerifier: {
        accepted: result.commands.accepted,
        rejected: result.commands.rejected,
        rejectionsByReason: result.commands.rejectionsByReason,
      },
      summary: result.summary,
    });
    await writeFile(path.join(runDir, 'record.json'), recordJson(record));
    await writeFile(path.join(runDir, 'report.md'), formatReport(report));
    // report.html and TensorBoard event files (tensorboard/grown, tensorboard/baseline).
    await writeRunReports(runDir, reportPageData(report, result));
    failed = false;
    return report;
  } finally {
    const opened = nissa;
    await runCleanup('esper run', [opened !== undefined && (() => opened.close()), service !== undefined && (() => service.close())]).catch(
      (error: unknown) => {
        if (!failed) throw error;
        io.stderr.write(`esper run: closing the bus after the failure also failed: ${describeError(error)}\n`);
      },
    );
  }
}
