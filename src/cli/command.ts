/**
 * `esper command`: builds one seed command, signs it with the configured key ring and
 * publishes it on Oona, for experiments without a controller. A run started with
 * `esper train --grow --listen` on the same bus and key receives it at its next step.
 */
import { parseArgs } from 'node:util';
import { formatSettingsIssue, isEsperError, loadSettings, SettingsError, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { buildOperatorCommand, OperatorAction } from '../kasmina/index.js';
import { AdaptationCommandSchema, BlendMode } from '../leyline/index.js';
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

/** Usage of `esper command`. */
export const COMMAND_HELP = `esper command — sign and send one seed command to a running training

Usage:
  esper command <${ACTIONS.join('|')}> --run <id> --seed <id> [options]

Options:
  --run <id>            training run id (printed by esper train)
  --seed <id>           seed id (germinate: a new id; others: an existing seed)
  --site <id>           host seed site (germinate), e.g. mlp/h1
  --blueprint <id>      blueprint (germinate), e.g. BP001
  --blend <mode>        convex | residual | channel | confidence (germinate)
  --alpha-vec <list>    comma-separated per-channel-group alphas (germinate; implies channel)
  --json                print the receipt as JSON
  -h, --help            show this help

The bus is settings oona.busUrl (ESPER_OONA_BUS_URL, a redis:// URL: the training runs in
another process), the key ring settings security (ESPER_LEYLINE_SECRET).
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
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    io.stderr.write(`esper command: ${(error as Error).message}\n\n${COMMAND_HELP}`);
    return 2;
  }
  if (values.help === true) {
    io.stdout.write(COMMAND_HELP);
    return 0;
  }
  const action = positionals[0];
  if (positionals.length !== 1 || action === undefined || !(ACTIONS as readonly string[]).includes(action)) {
    io.stderr.write(`esper command: expected one action (${ACTIONS.join(', ')})\n\n${COMMAND_HELP}`);
    return 2;
  }
  const blendMode = values.blend === undefined ? undefined : BLEND_MODES[values.blend];
  if (values.blend !== undefined && blendMode === undefined) {
    io.stderr.write(`esper command: --blend must be one of ${Object.keys(BLEND_MODES).join(', ')}\n`);
    return 2;
  }
  const alphaVec = values['alpha-vec']?.split(',').map((part) => Number(part.trim()));
  if (alphaVec !== undefined && alphaVec.some((a) => !Number.isFinite(a))) {
    io.stderr.write(`esper command: --alpha-vec must be comma-separated numbers\n`);
    return 2;
  }
  let settings: EsperSettings;
  try {
    settings = options.settings ?? loadSettings();
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    io.stderr.write(`esper command: invalid settings\n${error.issues.map((i) => `  ${formatSettingsIssue(i)}`).join('\n')}\n`);
    return 2;
  }
  if (settings.oona.busUrl.startsWith('memory:')) {
    io.stderr.write('esper command: the bus is memory:// (in-process); set ESPER_OONA_BUS_URL=redis://… shared with the training\n');
    return 2;
  }
  try {
    const command = buildOperatorCommand({
      action: action as OperatorAction,
      trainingRunId: values.run ?? '',
      seedId: values.seed ?? '',
      ...(values.site === undefined ? {} : { siteId: values.site }),
      ...(values.blueprint === undefined ? {} : { blueprintId: values.blueprint }),
      ...(blendMode === undefined ? {} : { blendMode }),
      ...(alphaVec === undefined ? {} : { alphaVec }),
    });
    const keyRing = KeyRing.fromSettings(settings.security);
    const signed = new HmacSigner(keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }).sign(
      AdaptationCommandSchema,
      command,
    );
    const discard: TelemetrySink = { emit: () => undefined };
    const bus = openBusFromSettings(settings, { keyRing, telemetry: discard });
    try {
      const receipt = await bus.publish(signed);
      const entry = receipt.status === 'published' ? receipt.entryId : 'shed';
      io.stdout.write(
        values.json === true
          ? `${JSON.stringify({ commandId: signed.commandId, action, run: signed.trainingRunId, seed: signed.targetSeedId, entryId: entry })}\n`
          : `sent ${action} ${signed.targetSeedId} to run ${signed.trainingRunId}: command ${signed.commandId} (entry ${entry})\n`,
      );
      return 0;
    } finally {
      await bus.close();
    }
  } catch (error) {
    const code = isEsperError(error) ? ` [${error.code}]` : '';
    io.stderr.write(`esper command: ${error instanceof Error ? error.message : String(error)}${code}\n`);
    return 1;
  }
}
