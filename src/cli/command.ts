/**
 * `esper command`: builds one seed command, signs it with the configured key ring, publishes
 * it on Oona and waits for the run's acknowledgement (a `CommandAck` replying to it), for
 * experiments without a controller. A run started with `esper train --grow --listen` on the
 * same bus and key applies it at its next step and acknowledges it.
 */
import { parseArgs } from 'node:util';
import {
  ErrorCode,
  formatSettingsIssue,
  isEsperError,
  loadSettings,
  SettingsError,
  type EsperSettings,
  type TelemetrySink,
} from '../core/index.js';
import { buildOperatorCommand, OperatorAction } from '../kasmina/index.js';
import { AdaptationCommandSchema, BlendMode, BusMessageType, CommandAckStatus, type CommandAck } from '../leyline/index.js';
import { openBusFromSettings } from '../oona/index.js';
import { HmacSigner, KeyRing } from '../security/index.js';

/** Streams the command prints to. */
export interface CommandIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

const ACTIONS = Object.values(OperatorAction);
const BLEND_MODES: Readonly<Record<string, BlendMode>> = {
  convex: BlendMode.CONVEX,
  residual: BlendMode.RESIDUAL,
  channel: BlendMode.CHANNEL,
  confidence: BlendMode.CONFIDENCE,
};

/** How long `esper command` waits for the acknowledgement by default, in seconds. */
export const DEFAULT_ACK_TIMEOUT_SECONDS = 10;

/** Exit codes of `esper command`. */
export const CommandExit = {
  APPLIED: 0,
  /** The bus could not be reached, or another unexpected error. */
  ERROR: 1,
  /** Bad arguments or settings. */
  USAGE: 2,
  /** The run acknowledged the command but did not apply it. */
  NOT_APPLIED: 3,
  /** No acknowledgement within the timeout. */
  NO_ACK: 4,
} as const;

/** Usage of `esper command`. */
export const COMMAND_HELP = `esper command — sign and send one seed command to a running training, and wait for its acknowledgement

Usage:
  esper command <${ACTIONS.join('|')}> --run <id> --seed <id> [options]

Options:
  --run <id>            training run id (printed by esper train)
  --seed <id>           seed id (germinate: a new id; others: an existing seed)
  --site <id>           host seed site (germinate), e.g. hidden1 (the MLP's sites: hidden1, hidden2)
  --blueprint <id>      blueprint (germinate), e.g. BP001
  --blend <mode>        convex | residual | channel | confidence (germinate)
  --alpha-vec <list>    comma-separated per-channel-group alphas (germinate; implies channel)
  --timeout <seconds>   how long to wait for the run's acknowledgement (default ${DEFAULT_ACK_TIMEOUT_SECONDS})
  --json                print the outcome as JSON
  -h, --help            show this help

The bus is settings oona.busUrl (ESPER_OONA_BUS_URL, a redis:// URL: the training runs in
another process), the key ring settings security (ESPER_LEYLINE_SECRET).

Exit codes: 0 applied; 1 error (e.g. the bus is unreachable); 2 bad arguments or settings;
3 acknowledged but not applied (rejected, not applied, failed, timed out, or the run ended);
4 no acknowledgement within --timeout (no trainer may be listening to that run).
`;

/** Runs `esper command` with the arguments after `command`; returns the exit code. */
export async function runCommand(
  argv: readonly string[],
  io: CommandIo,
  options: { readonly settings?: EsperSettings } = {},
): Promise<number> {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        run: { type: 'string' },
        seed: { type: 'string' },
        site: { type: 'string' },
        blueprint: { type: 'string' },
        blend: { type: 'string' },
        'alpha-vec': { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    io.stderr.write(`esper command: ${(error as Error).message}\n\n${COMMAND_HELP}`);
    return CommandExit.USAGE;
  }
  if (values.help === true) {
    io.stdout.write(COMMAND_HELP);
    return CommandExit.APPLIED;
  }
  const action = positionals[0];
  if (positionals.length !== 1 || action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    io.stderr.write(`esper command: expected one action (${ACTIONS.join(', ')})\n\n${COMMAND_HELP}`);
    return CommandExit.USAGE;
  }
  const blendMode = values.blend === undefined ? undefined : BLEND_MODES[values.blend];
  if (values.blend !== undefined && blendMode === undefined) {
    io.stderr.write(`esper command: --blend must be one of ${Object.keys(BLEND_MODES).join(', ')}\n`);
    return CommandExit.USAGE;
  }
  const alphaVec = values['alpha-vec']?.split(',').map((part) => decimal(part.trim()));
  if (alphaVec !== undefined && alphaVec.some((a) => a === undefined)) {
    io.stderr.write(`esper command: --alpha-vec must be comma-separated numbers\n`);
    return CommandExit.USAGE;
  }
  const timeoutSeconds = values.timeout === undefined ? DEFAULT_ACK_TIMEOUT_SECONDS : decimal(values.timeout);
  if (timeoutSeconds === undefined || !(timeoutSeconds > 0)) {
    io.stderr.write(`esper command: --timeout must be a number of seconds > 0, got '${values.timeout ?? ''}'\n`);
    return CommandExit.USAGE;
  }
  let settings: EsperSettings;
  try {
    settings = options.settings ?? loadSettings();
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    io.stderr.write(`esper command: invalid settings\n${error.issues.map((i) => `  ${formatSettingsIssue(i)}`).join('\n')}\n`);
    return CommandExit.USAGE;
  }
  if (settings.oona.busUrl.startsWith('memory:')) {
    io.stderr.write('esper command: the bus is memory:// (in-process); set ESPER_OONA_BUS_URL=redis://… shared with the training\n');
    return CommandExit.USAGE;
  }
  try {
    const command = buildOperatorCommand({
      action: action as OperatorAction,
      trainingRunId: values.run ?? '',
      seedId: values.seed ?? '',
      ...(values.site === undefined ? {} : { siteId: values.site }),
      ...(values.blueprint === undefined ? {} : { blueprintId: values.blueprint }),
      ...(blendMode === undefined ? {} : { blendMode }),
      ...(alphaVec === undefined ? {} : { alphaVec: alphaVec as number[] }),
    });
    const keyRing = KeyRing.fromSettings(settings.security);
    const signed = new HmacSigner(keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }).sign(
      AdaptationCommandSchema,
      command,
    );
    const discard: TelemetrySink = { emit: () => undefined };
    const bus = openBusFromSettings(settings, { keyRing, telemetry: discard });
    let ack: CommandAck;
    try {
      const reply = await bus.request(signed, { replyType: BusMessageType.COMMAND_ACK, timeoutMs: timeoutSeconds * 1000 });
      ack = reply.message as CommandAck;
    } catch (error) {
      if (!isEsperError(error, ErrorCode.OONA_REQUEST_TIMEOUT)) throw error;
      io.stderr.write(
        `esper command: sent ${action} ${signed.targetSeedId} to run ${signed.trainingRunId} (command ${signed.commandId}), but no acknowledgement came within ${timeoutSeconds} s: no trainer may be listening to that run (esper train --grow --listen on the same bus)\n`,
      );
      return CommandExit.NO_ACK;
    } finally {
      await bus.close();
    }
    if (ack.commandId !== signed.commandId) {
      throw new Error(`the acknowledgement names command ${ack.commandId}, not ${signed.commandId}`);
    }
    const status = (CommandAckStatus[ack.status] as string | undefined) ?? `UNKNOWN_${ack.status}`;
    const applied = ack.status === CommandAckStatus.APPLIED;
    if (values.json === true) {
      io.stdout.write(
        `${JSON.stringify({ commandId: signed.commandId, action, run: signed.trainingRunId, seed: signed.targetSeedId, status, reason: ack.reason, globalStep: Number(ack.globalStep) })}\n`,
      );
    } else if (applied) {
      io.stdout.write(
        `applied ${action} ${signed.targetSeedId} at step ${ack.globalStep} of run ${signed.trainingRunId} (command ${signed.commandId})\n`,
      );
    }
    if (applied) return CommandExit.APPLIED;
    io.stderr.write(
      `esper command: run ${signed.trainingRunId} did not apply ${action} ${signed.targetSeedId} (command ${signed.commandId}): ${status}${ack.reason === '' ? '' : ` — ${ack.reason}`}\n`,
    );
    return CommandExit.NOT_APPLIED;
  } catch (error) {
    const code = isEsperError(error) ? ` [${error.code}]` : '';
    io.stderr.write(`esper command: ${error instanceof Error ? error.message : String(error)}${code}\n`);
    return CommandExit.ERROR;
  }
}

/** A plain decimal number (`0.5`, `10`, `-1`); undefined for anything else (`''`, `0x3`, `1e1`). */
function decimal(text: string): number | undefined {
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : undefined;
}
