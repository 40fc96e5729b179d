/**
 * The `esper` command: `run`, `train`, `study`, `command`, `--help` and `--version`; subcommands load
 * their modules on demand.
 */
import { readFileSync } from 'node:fs';
import { ExitCode, type CliIo } from './scaffold.js';

export type { CliIo };

const HELP = `esper — morphogenetic training: neural networks that grow while they train

Usage:
  esper [--help | --version]
  esper run [options]       train a host that grows, against a static baseline (esper run --help)
  esper up [options]        esper run --distributed: Tamiyo and trainers as supervised processes
                            over Redis; --trainers N runs a fleet sharing one Tamiyo
  esper serve <role>        one service over Redis: tamiyo or trainer (esper serve --help)
  esper train [options]     train a host model on a dataset (esper train --help)
  esper study --task <name> small vs grown vs large host over seeds, with statistics (esper study --help)
  esper learn --task <name> learn Tamiyo's policy (Simic) and evaluate it on held-out seeds (esper learn --help)
  esper command <action>    sign and send a seed command to a running training (esper command --help)
  esper events [options]    query Nissa's event store: telemetry events, field reports (esper events --help)

Options:
  -h, --help      show this help
  -V, --version   print the version

Exit codes (every command): 0 done; 1 runtime failure; 2 bad flags, config, settings or
key ring (nothing started); 130 stopped by SIGINT or SIGTERM. esper command adds 3 and 4.
`;

const USAGE = 'Usage: esper <run|up|serve|train|study|learn|command> [options] (esper --help)';

/** Package version, read from package.json next to the compiled tree. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.stdout.write(HELP);
    return ExitCode.OK;
  }
  if (first === 'train') {
    // Loaded on demand: it pulls in TensorFlow.js, which `--help` and `--version` do not need.
    const { runTrain } = await import('./train.js');
    return runTrain(rest, io);
  }
  if (first === 'run') {
    const { runRun } = await import('./run.js');
    return runRun(rest, io);
  }
  if (first === 'up') {
    const { runRun } = await import('./run.js');
    return runRun(rest.includes('--help') || rest.includes('-h') ? rest : ['--distributed', ...rest], io);
  }
  if (first === 'serve') {
    const { runServe } = await import('./serve.js');
    return runServe(rest, io);
  }
  if (first === 'study') {
    const { runStudyCommand } = await import('./study.js');
    return runStudyCommand(rest, io);
  }
  if (first === 'learn') {
    const { runLearnCommand } = await import('./learn.js');
    return runLearnCommand(rest, io);
  }
  if (first === 'command') {
    const { runCommand } = await import('./command.js');
    return runCommand(rest, io);
  }
  if (first === 'events') {
    const { runEvents } = await import('./events.js');
    return runEvents(rest, io);
  }
  if (first === '-V' || first === '--version') {
    if (rest.length > 0) {
      io.stderr.write(`esper: --version takes no arguments\n${USAGE}\n`);
      return ExitCode.USAGE;
    }
    io.stdout.write(`${version()}\n`);
    return ExitCode.OK;
  }
  io.stderr.write(`esper: unknown command or option '${first}'\n${USAGE}\n`);
  return ExitCode.USAGE;
}
