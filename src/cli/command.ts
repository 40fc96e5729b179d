/**
 * `esper command`: builds one seed command, signs it with the configured key ring, publishes
 * it on Oona and waits for the run's acknowledgement (a `CommandAck` replying to it), for
 * experiments without a controller. A run started with `esper train --grow --listen` on the
 * same bus and key applies it at its next step and acknowledges it.
 */
import { ErrorCode, isEsperError, loadSettings, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { buildOperatorCommand, OperatorAction } from '../kasmina/index.js';
import { AdaptationCommandSchema, BlendMode, BusMessageType, CommandAckStatus, type CommandAck } from '../leyline/index.js';
import { openBusFromSettings } from '../oona/index.js';
import { HmacSigner, KeyRing } from '../security/index.js';
import {
  ExitCode,
  helpText,
  parseCommandLine,
  reportFailure,
  UsageError,
  type CliIo,
  type CommandSpec,
  type FlagSpec,
} from './scaffold.js';

/** Streams the command prints to. */
export type CommandIo = CliIo;

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
  APPLIED: ExitCode.OK,
  /** The bus could not be reached, or another unexpected error. */
  ERROR: ExitCode.FAILURE,
  /** Bad arguments, settings or key ring. */
  USAGE: ExitCode.USAGE,
  /** The run acknowledged the command but did not apply it. */
  NOT_APPLIED: 3,
  /** No acknowledgement within the timeout. */
  NO_ACK: 4,
} as const;

/** The flags of `esper command`, declared once. */
export const COMMAND_FLAGS = {
  run: { kind: 'string', value: '<id>', help: 'training run id (printed by esper train)' },
  seed: { kind: 'string', value: '<id>', help: 'seed id (germinate: a new id; others: an existing seed)' },
  site: {
    kind: 'string',
    value: '<id>',
    help: "host seed site (germinate), e.g. hidden1 (the MLP's sites: hidden1, hidden2;\nthe CNN's: block1, block2, …)",
  },
  blueprint: { kind: 'string', value: '<id>', help: 'blueprint (germinate), e.g. BP001' },
  blend: { kind: 'string', value: '<mode>', help: 'blend mode (germinate)', choices: Object.keys(BLEND_MODES) },
  'alpha-vec': { kind: 'string', value: '<list>', help: 'comma-separated per-channel-group alphas (germinate; implies channel)' },
  timeout: {
    kind: 'number',
    value: '<seconds>',
    help: "how long to wait for the run's acknowledgement",
    greaterThan: 0,
    default: DEFAULT_ACK_TIMEOUT_SECONDS,
  },
  json: { kind: 'boolean', help: 'print the outcome as JSON' },
} as const satisfies Readonly<Record<string, FlagSpec>>;

/** The declaration of `esper command`. */
export const COMMAND_COMMAND: CommandSpec<typeof COMMAND_FLAGS> = {
  name: 'esper command',
  summary: 'sign and send one seed command to a running training, and wait for its acknowledgement',
  synopsis: `<${ACTIONS.join('|')}> --run <id> --seed <id> [options]`,
  flags: COMMAND_FLAGS,
  positionals: 1,
  notes: `The bus is settings oona.busUrl (ESPER_OONA_BUS_URL, a redis:// URL: the training runs in
another process), the key ring settings security (ESPER_LEYLINE_SECRET).

Exit codes: 0 applied; 1 error (e.g. the bus is unreachable); 2 bad arguments, settings or
key ring; 3 acknowledged but not applied (rejected, not applied, failed, timed out, or the
run ended); 4 no acknowledgement within --timeout (no trainer may be listening to that run).`,
};

/** Usage of `esper command`. */
export const COMMAND_HELP = helpText(COMMAND_COMMAND);

/** A command checked before anything is sent. */
interface PreparedCommand {
  readonly action: OperatorAction;
  readonly settings: EsperSettings;
  readonly keyRing: KeyRing;
  readonly command: ReturnType<typeof buildOperatorCommand>;
  readonly timeoutSeconds: number;
  readonly json: boolean;
}

/** Checks arguments, settings and key ring, and builds the unsigned command. @throws UsageError, SettingsError, key-ring errors */
function prepare(argv: readonly string[], options: { readonly settings?: EsperSettings }): PreparedCommand | 'help' {
  const { values, positionals, help } = parseCommandLine(COMMAND_COMMAND, argv);
  if (help) return 'help';
  const action = positionals[0];
  if (action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`expected one action (${ACTIONS.join(', ')})${action === undefined ? '' : `, got '${action}'`}`);
  }
  const blendMode = values.blend === undefined ? undefined : BLEND_MODES[values.blend];
  const alphaVec = values['alpha-vec']?.split(',').map((part) => decimal(part.trim()));
  if (alphaVec !== undefined && alphaVec.some((a) => a === undefined)) {
    throw new UsageError('--alpha-vec must be comma-separated numbers');
  }
  const settings = options.settings ?? loadSettings();
  if (settings.oona.busUrl.startsWith('memory:')) {
    throw new UsageError('the bus is memory:// (in-process); set ESPER_OONA_BUS_URL=redis://… shared with the training');
  }
  let command;
  try {
    command = buildOperatorCommand({
      action: action as OperatorAction,
      trainingRunId: values.run ?? '',
      seedId: values.seed ?? '',
      ...(values.site === undefined ? {} : { siteId: values.site }),
      ...(values.blueprint === undefined ? {} : { blueprintId: values.blueprint }),
      ...(blendMode === undefined ? {} : { blendMode }),
      ...(alphaVec === undefined ? {} : { alphaVec: alphaVec as number[] }),
    });
  } catch (error) {
    if (!isEsperError(error, ErrorCode.INVALID_ARGUMENT)) throw error;
    throw new UsageError(error.message, { cause: error });
  }
  const keyRing = KeyRing.fromSettings(settings.security);
  return { action: action as OperatorAction, settings, keyRing, command, timeoutSeconds: values.timeout, json: values.json };
}

/** Runs `esper command` with the arguments after `command`; returns the exit code. */
export async function runCommand(
  argv: readonly string[],
  io: CommandIo,
  options: { readonly settings?: EsperSettings } = {},
): Promise<number> {
  let prepared: PreparedCommand | 'help';
  try {
    prepared = prepare(argv, options);
  } catch (error) {
    return reportFailure(io, COMMAND_COMMAND, error);
  }
  if (prepared === 'help') {
    io.stdout.write(COMMAND_HELP);
    return CommandExit.APPLIED;
  }
  try {
    return await send(prepared, io);
  } catch (error) {
    return reportFailure(io, COMMAND_COMMAND, error);
  }
}

async function send(prepared: PreparedCommand, io: CliIo): Promise<number> {
  const { action, settings, keyRing, timeoutSeconds } = prepared;
  const signed = new HmacSigner(keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }).sign(
    AdaptationCommandSchema,
    prepared.command,
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
  if (prepared.json) {
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
}

/** A plain decimal number (`0.5`, `10`, `-1`); undefined for anything else (`''`, `0x3`, `1e1`). */
function decimal(text: string): number | undefined {
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : undefined;
}
