/**
 * `esper run --distributed` and `esper up`: the run (or a fleet of `--trainers N` runs)
 * with every service in its own OS process over the Redis bus, under Weatherlight's
 * supervisor — `esper serve tamiyo` shared by all, one `esper serve trainer` per run.
 * Preflight first (Redis, a configured key, the var dir, Urza: one clear message each,
 * nothing started); the blueprints are compiled and certified once, before any service
 * starts; then each trainer's report, or the fleet's summary table.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeError, redactUrl, type EsperSettings } from '../core/index.js';
import { KeyRing } from '../security/index.js';
import {
  provisionExperiment,
  superviseFleet,
  supervisorFailure,
  thisEsperCommand,
  type EsperCommand,
  type FleetTrainer,
  type SupervisorResult,
} from '../weatherlight/index.js';
import { Progress, StderrEventSink } from './progress.js';
import { resolveRunConfig, RUN_COMMAND, type RUN_FLAGS, type RunConfig } from './run-config.js';
import { formatReport, type RunReport } from './run-report.js';
import { distributedSettings, newRunId, openServiceBus, prepareRunDir, type RunRunOptions } from './run-setup.js';
import { ExitCode, reportFailure, withInterrupts, type CliIo, type FlagValues, UsageError } from './scaffold.js';

/** Options of {@link runDistributed} beyond {@link RunRunOptions} (tests set them). */
export interface DistributedRunOptions extends RunRunOptions {
  /** How the services start `esper`. @default this process's own command */
  readonly esper?: EsperCommand;
}

/** One trainer's outcome. */
export interface FleetRunOutcome {
  readonly trainer: Omit<FleetTrainer, 'args'>;
  readonly seed: number;
  /** Its report, when it wrote one. */
  readonly report: RunReport | undefined;
}

/** Runs `esper run --distributed [--trainers N]`; returns the exit code. */
export async function runDistributed(
  values: FlagValues<typeof RUN_FLAGS>,
  io: CliIo,
  options: DistributedRunOptions = {},
): Promise<number> {
  const name = `${RUN_COMMAND.name} --distributed`;
  let settings: EsperSettings;
  let config: RunConfig;
  let fleetId: string;
  let fleetDir: string;
  try {
    config = resolveRunConfig(values);
    settings = await distributedSettings(io, name, options);
    if (values.learn) {
      // Simic learns from decision contexts, which only a sampling GNN Tamiyo reports, on the network every Tamiyo starts from.
      if (config.policy !== 'gnn') throw new UsageError(`--learn needs --policy gnn (got ${config.policy})`);
      if (!settings.tamiyo.gnnSampling) throw new UsageError('--learn needs tamiyo.gnnSampling (ESPER_TAMIYO_GNN_SAMPLING=true)');
      if (settings.tamiyo.gnnInitSeed === undefined) throw new UsageError('--learn needs tamiyo.gnnInitSeed (ESPER_TAMIYO_GNN_INIT_SEED)');
    }
    fleetId = newRunId(values.trainers === 1 ? 'run' : 'fleet');
    fleetDir = await prepareRunDir(values.out, settings, fleetId);
  } catch (error) {
    return reportFailure(io, RUN_COMMAND, error);
  }
  const keyRing = KeyRing.fromSettings(settings.security);
  const stderr = new StderrEventSink(io, new Progress(io, 1));
  const { telemetry, close: closeBus } = openServiceBus(settings, keyRing, io, name, stderr);

  try {
    const trainers = planTrainers(fleetId, fleetDir, values.trainers);
    const configFile = path.join(fleetDir, 'fleet-config.json');
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
    io.stderr.write(
      `${name}: ${fleetId} — ${trainers.length} trainer${trainers.length === 1 ? '' : 's'} and one Tamiyo (${config.policy} policy) over ${redactUrl(settings.oona.busUrl)}\n`,
    );
    await provisionExperiment(settings, config, { keyRing, telemetry, onProgress: (line) => io.stderr.write(`${name}: ${line}\n`) });
    const result = await withInterrupts(io, name, options.signal, (signal) =>
      superviseFleet(
        {
          settings,
          esper: options.esper ?? thisEsperCommand(),
          policy: config.policy,
          trainers: trainers.map((t, i) => ({ ...t, args: ['--config', configFile, '--seed', String(config.seed + i)] })),
          telemetry,
          output: { stdout: io.stderr, stderr: io.stderr },
          nissa: !values['no-ui'],
          simic: values.learn,
        },
        signal,
      ),
    );
    const outcomes = await Promise.all(
      trainers.map(async (trainer, i) => ({ trainer, seed: config.seed + i, report: await readReport(trainer) })),
    );
    const summary = formatFleet(fleetId, outcomes, result);
    await writeFile(path.join(fleetDir, 'fleet.md'), summary);
    const failure = supervisorFailure(result);
    if (failure !== undefined) throw failure;
    const only = outcomes.length === 1 ? outcomes[0] : undefined;
    if (values.json) io.stdout.write(`${JSON.stringify({ fleetId, fleetDir, reason: result.reason, runs: outcomes })}\n`);
    else io.stdout.write(only?.report !== undefined ? formatReport(only.report) : summary);
    if (result.reason === 'signal') return ExitCode.INTERRUPTED;
    return outcomes.every((o) => o.report !== undefined && !o.report.interrupted) ? ExitCode.OK : ExitCode.FAILURE;
  } catch (error) {
    return reportFailure(io, RUN_COMMAND, error);
  } finally {
    await closeBus().catch((error: unknown) => {
      io.stderr.write(`${name}: closing the bus failed: ${describeError(error)}\n`);
    });
  }
}

/** One trainer: the run itself (`--trainers 1`), else `<fleet>-t<i>` in `<fleet dir>/t<i>`. */
function planTrainers(fleetId: string, fleetDir: string, count: number): Omit<FleetTrainer, 'args'>[] {
  if (count === 1) return [{ runId: fleetId, runDir: fleetDir }];
  return Array.from({ length: count }, (_, i) => ({ runId: `${fleetId}-t${i + 1}`, runDir: path.join(fleetDir, `t${i + 1}`) }));
}

async function readReport(trainer: Omit<FleetTrainer, 'args'>): Promise<RunReport | undefined> {
  try {
    const record = JSON.parse(await readFile(path.join(trainer.runDir, 'record.json'), 'utf8')) as { report?: RunReport };
    return record.report;
  } catch {
    return undefined;
  }
}

/** The fleet's summary table (Markdown). */
export function formatFleet(fleetId: string, outcomes: readonly FleetRunOutcome[], result: SupervisorResult): string {
  const pct = (x: number | undefined): string => (x === undefined ? '—' : `${(x * 100).toFixed(2)} %`);
  const lines = [
    `# esper fleet ${fleetId}`,
    '',
    `Ended: ${result.reason}; supervisor mode ${result.mode}.`,
    '',
    '| run | seed | grown | static | seeds (fossilized) | commands issued / accepted / rejected | field reports | restarts | resumed at step |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [i, o] of outcomes.entries()) {
    const service = result.services.find((s) => s.name === `trainer-${i + 1}`);
    const r = o.report;
    if (r === undefined) {
      lines.push(`| ${o.trainer.runId} | ${o.seed} | no report | | | | | ${service?.restarts ?? 0} | |`);
      continue;
    }
    const fossilized = r.seeds.filter((s) => s.fate === 'FOSSILIZED').length;
    lines.push(
      `| ${r.runId} | ${o.seed} | ${pct(r.grown.finalAccuracy)}${r.interrupted ? ' (interrupted)' : ''} | ${pct(r.baseline?.finalAccuracy)} | ${r.seeds.length} (${fossilized}) | ${r.commands.issued} / ${r.commands.accepted} / ${r.commands.rejected} | ${r.fieldReports} | ${service?.restarts ?? 0} | ${r.distributed?.resumedFromStep ?? '—'} |`,
    );
  }
  const tamiyo = result.services.find((s) => s.name === 'tamiyo');
  lines.push('', `Tamiyo restarts: ${tamiyo?.restarts ?? 0}. Each run's record and report are in its directory.`, '');
  return lines.join('\n');
}
