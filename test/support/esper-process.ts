/**
 * A real `esper` process run from source (test/cli/fixtures/esper.ts under tsx), for tests of
 * signals, exit codes and the distributed services. Its children (`esper up` starts `esper
 * serve …`) run the same way: they inherit node's `--import tsx` and the fixture as entry.
 * Tests wait on output lines, never on sleeps.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

const FIXTURE = path.resolve(import.meta.dirname, '../cli/fixtures/esper.ts');
const REPO = path.resolve(import.meta.dirname, '../..');

/** A running `esper` process. */
export interface EsperProcess {
  readonly process: ChildProcessWithoutNullStreams;
  stderr(): string;
  stdout(): string;
  /** Resolves with the first match of `pattern` in stderr (now or later); rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `esper <args>` with a clean environment: PATH, HOME and `env` only, so no ESPER_*
 * variable of the test run leaks in.
 */
export function startEsper(args: readonly string[], env: Readonly<Record<string, string>>): EsperProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
    cwd: REPO,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? REPO, ...env },
  });
  let stderr = '';
  let stdout = '';
  const waiters: { pattern: RegExp; resolve: (match: RegExpExecArray) => void }[] = [];
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(stderr);
      if (match !== null) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  });
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    process: child,
    stderr: () => stderr,
    stdout: () => stdout,
    exit,
    waitFor: (pattern) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const match = pattern.exec(stderr);
        if (match !== null) return resolve(match);
        waiters.push({ pattern, resolve });
        void exit.then(({ code }) => reject(new Error(`esper exited (${code}) before ${pattern}; stderr:\n${stderr}`)));
      }),
  };
}

/** Whether a process with this pid is still alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
