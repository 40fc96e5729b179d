/**
 * The one CLI scaffold every `esper` command uses: flags declared once (name, kind, default,
 * help), parsed strictly with `node:util` `parseArgs`, numbers through core
 * `parseNumericFlag`, usage generated from the declaration, one mapping from failures to
 * exit codes, the effective settings logged once (redacted), and SIGINT/SIGTERM handling.
 */
import { parseArgs } from 'node:util';
import {
  errorMessage,
  ErrorCode,
  EsperError,
  formatSettingsIssue,
  isEsperError,
  parseNumericFlag,
  redactSettings,
  SettingsError,
  type EsperSettings,
} from '../core/index.js';

/** Streams a command prints to (injected by tests). */
export interface CliIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

/** Exit codes shared by every `esper` command (`esper command` adds 3 and 4). */
export const ExitCode = {
  OK: 0,
  /** A runtime failure (training failed, the bus is unreachable, …). */
  FAILURE: 1,
  /** Bad flags, config file, settings or key ring: nothing was started. */
  USAGE: 2,
  /** Stopped by SIGINT or SIGTERM (128 + 2, as shells report Ctrl-C). */
  INTERRUPTED: 130,
} as const;

/** A bad command line or config; shown with the command's usage line, exit 2. */
export class UsageError extends EsperError {
  constructor(message: string, options: { readonly cause?: unknown } = {}) {
    super(ErrorCode.FLAG_INVALID, message, options);
  }
}

interface FlagBase {
  /** Help text (one line; `\n` continues it on the next). */
  readonly help: string;
  /** Default shown in the help when it is not applied at parse time (it comes from a config layer). */
  readonly defaultText?: string;
}

/** A flag that takes a string, optionally one of `choices`. */
export interface StringFlag extends FlagBase {
  readonly kind: 'string';
  /** Placeholder in the usage (`<file>`). */
  readonly value: string;
  readonly default?: string;
  readonly choices?: readonly string[];
}

/** A flag that takes a decimal number (`integer`: a safe integer), range-checked. */
export interface NumericFlag extends FlagBase {
  readonly kind: 'integer' | 'number';
  readonly value: string;
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
  readonly greaterThan?: number;
}

/** A switch. */
export interface BooleanFlag extends FlagBase {
  readonly kind: 'boolean';
}

/** One declared flag. */
export type FlagSpec = StringFlag | NumericFlag | BooleanFlag;

/** What a command accepts. */
export interface CommandSpec<F extends Readonly<Record<string, FlagSpec>>> {
  /** `esper run`. */
  readonly name: string;
  /** One line after the name in the usage. */
  readonly summary: string;
  /** What follows the name on the usage line (`[options]`). */
  readonly synopsis: string;
  readonly flags: F;
  /** Positional arguments: how many are allowed. @default 0 */
  readonly positionals?: number;
  /** Text after the options. */
  readonly notes?: string;
}

type ValueOf<S extends FlagSpec> = S extends BooleanFlag
  ? boolean
  : S extends NumericFlag
    ? S extends { readonly default: number }
      ? number
      : number | undefined
    : S extends { readonly default: string }
      ? string
      : string | undefined;

/** The parsed values of a command's flags, keyed by flag name. */
export type FlagValues<F extends Readonly<Record<string, FlagSpec>>> = { readonly [K in keyof F]: ValueOf<F[K]> };

/** A parsed command line. */
export interface ParsedCommandLine<F extends Readonly<Record<string, FlagSpec>>> {
  readonly values: FlagValues<F>;
  readonly positionals: readonly string[];
  /** `-h`/`--help` was given: print {@link helpText} and exit 0. */
  readonly help: boolean;
}

/** The usage line of a command: `Usage: esper run [options] (esper run --help)`. */
export function usageLine(spec: CommandSpec<Readonly<Record<string, FlagSpec>>>): string {
  return `Usage: ${spec.name} ${spec.synopsis} (${spec.name} --help for the options)`;
}

/** The `--help` text, generated from the declaration. */
export function helpText(spec: CommandSpec<Readonly<Record<string, FlagSpec>>>): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const left = flag.kind === 'boolean' ? `--${name}` : `--${name} ${flag.value}`;
    const choices = flag.kind === 'string' && flag.choices !== undefined ? `: ${flag.choices.join(' | ')}` : '';
    const shown = flag.kind === 'boolean' ? undefined : (flag.default ?? flag.defaultText);
    const fallback = shown === undefined ? '' : ` (default ${shown})`;
    return { left, lines: `${flag.help}${choices}${fallback}`.split('\n') };
  });
  rows.push({ left: '-h, --help', lines: ['show this help'] });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  const options = rows.flatMap((r) => r.lines.map((line, i) => `  ${(i === 0 ? r.left : '').padEnd(width)}${line}`));
  return [
    `${spec.name} — ${spec.summary}`,
    '',
    'Usage:',
    `  ${spec.name} ${spec.synopsis}`,
    '',
    'Options:',
    ...options,
    '',
    ...(spec.notes === undefined ? [] : [spec.notes.trimEnd(), '']),
  ].join('\n');
}

/** A value starting with `-` that is a number (`-1`, `-.5`), not a flag. */
const NEGATIVE_NUMBER = /^-(?:\d|\.\d)/;

/**
 * `--epochs -1` → `--epochs=-1` for flags that take a value, so a negative number is parsed
 * as the value and range-checked, rather than refused by `parseArgs` as ambiguous.
 */
function joinNegativeValues(argv: readonly string[], flags: Readonly<Record<string, FlagSpec>>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const token = argv[i] as string;
    const next = argv[i + 1];
    if (token === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const flag = token.startsWith('--') ? flags[token.slice(2)] : undefined;
    if (flag !== undefined && flag.kind !== 'boolean' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${token}=${next}`);
      i += 1;
    } else {
      out.push(token);
    }
  }
  return out;
}

/**
 * Parses `argv` against the declaration: unknown flags, missing values, bad numbers (core
 * `parseNumericFlag`: decimal only, in range), choices and the positional count.
 * @throws UsageError naming the flag
 */
export function parseCommandLine<F extends Readonly<Record<string, FlagSpec>>>(
  spec: CommandSpec<F>,
  argv: readonly string[],
): ParsedCommandLine<F> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, flag] of Object.entries(spec.flags)) options[name] = { type: flag.kind === 'boolean' ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv, spec.flags), strict: true, allowPositionals: true, options });
  } catch (error) {
    throw new UsageError(errorMessage(error), { cause: error });
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  const help = raw['help'] === true;
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    const text = raw[name];
    if (flag.kind === 'boolean') {
      values[name] = text === true;
      continue;
    }
    if (text === undefined) {
      values[name] = flag.default;
      continue;
    }
    values[name] = flag.kind === 'string' ? checkChoice(name, text as string, flag) : numeric(name, text as string, flag);
  }
  const allowed = spec.positionals ?? 0;
  if (!help && parsed.positionals.length > allowed) {
    throw new UsageError(`unexpected argument '${parsed.positionals[allowed] ?? ''}'`);
  }
  return { values: values as FlagValues<F>, positionals: parsed.positionals, help };
}

function checkChoice(name: string, text: string, flag: StringFlag): string {
  if (flag.choices !== undefined && !flag.choices.includes(text)) {
    throw new UsageError(`--${name} must be one of ${flag.choices.join(', ')}, got '${text}'`);
  }
  return text;
}

function numeric(name: string, text: string, flag: NumericFlag): number {
  try {
    return parseNumericFlag(name, text, {
      integer: flag.kind === 'integer',
      ...(flag.min === undefined ? {} : { min: flag.min }),
      ...(flag.max === undefined ? {} : { max: flag.max }),
      ...(flag.greaterThan === undefined ? {} : { greaterThan: flag.greaterThan }),
    });
  } catch (error) {
    throw new UsageError(errorMessage(error), { cause: error });
  }
}

/** Codes that mean "bad input, nothing started": exit 2. */
const USAGE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.FLAG_INVALID,
  ErrorCode.SETTINGS_INVALID,
  ErrorCode.KEY_RING_INVALID,
  ErrorCode.KEY_FILE_INVALID,
]);

/** The exit code of a failure: 2 for bad flags, config, settings or key ring; 1 otherwise. */
export function exitCodeOf(error: unknown): number {
  return isEsperError(error) && USAGE_CODES.has(error.code) ? ExitCode.USAGE : ExitCode.FAILURE;
}

/**
 * Prints a failure the way every command does and returns its exit code: a usage error
 * with the usage line, settings problems one per line, anything else as one line
 * (`message [code]`).
 */
export function reportFailure(io: CliIo, spec: CommandSpec<Readonly<Record<string, FlagSpec>>>, error: unknown): number {
  if (error instanceof SettingsError) {
    io.stderr.write(`${spec.name}: invalid settings\n${error.issues.map((i) => `  ${formatSettingsIssue(i)}`).join('\n')}\n`);
  } else if (isEsperError(error, ErrorCode.FLAG_INVALID)) {
    io.stderr.write(`${spec.name}: ${error.message}\n${usageLine(spec)}\n`);
  } else {
    io.stderr.write(`${spec.name}: ${errorMessage(error)}${isEsperError(error) ? ` [${error.code}]` : ''}\n`);
  }
  return exitCodeOf(error);
}

/** Logs the effective settings once at start, secrets redacted, as one JSON line on stderr. */
export function logSettings(io: CliIo, name: string, settings: EsperSettings): void {
  io.stderr.write(`${name}: settings ${JSON.stringify(redactSettings(settings))}\n`);
}

/**
 * Runs `work` with an abort signal that SIGINT and SIGTERM trip alike (stop at the next safe
 * point, write what exists); a second signal exits at once with 130. With `signal` given
 * (tests), no process handler is installed.
 */
export async function withInterrupts<T>(
  io: CliIo,
  name: string,
  signal: AbortSignal | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (signal !== undefined) return work(signal);
  const own = new AbortController();
  const onSignal = (received: NodeJS.Signals): void => {
    if (own.signal.aborted) {
      io.stderr.write(`${name}: ${received} again: exiting now\n`);
      process.exit(ExitCode.INTERRUPTED);
    }
    io.stderr.write(`${name}: ${received}: stopping at the next safe point (send it again to exit now)\n`);
    own.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await work(own.signal);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
