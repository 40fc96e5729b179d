/**
 * One run of one supervised service: an OS child process or an in-process async function,
 * behind one handle (`exited`, `stop`, `kill`) so the supervisor treats both alike.
 */
import { spawn } from 'node:child_process';
import { describeError, errorMessage } from '../core/index.js';

/** A service run as its own OS process (a future `esper serve <role>`). */
export interface ProcessServiceSpec {
  readonly kind: 'process';
  /** Names the service in metrics (`weatherlight.worker.<name>.*`), events and output prefixes. */
  readonly name: string;
  /**
   * The executable.
   * @default process.execPath (node)
   */
  readonly command?: string;
  /** Its arguments (for node: the script, then its own arguments). */
  readonly args: readonly string[];
  /** Variables set over the supervisor's own environment (which the child inherits). */
  readonly env?: Readonly<Record<string, string>>;
  /** @default the supervisor's working directory */
  readonly cwd?: string;
  /**
   * A server that serves the others until the supervisor stops (Tamiyo): the supervisor's
   * work is `completed` once every other service completed, without waiting for it.
   * @default false
   */
  readonly untilStopped?: boolean;
}

/**
 * A service run in the supervisor's process. `run` must resolve when `signal` aborts (the
 * supervisor is shutting down) or when its work is done, and reject when it fails.
 */
export interface WorkerServiceSpec {
  readonly kind: 'worker';
  /** Names the service in metrics (`weatherlight.worker.<name>.*`) and events. */
  readonly name: string;
  readonly run: (signal: AbortSignal) => Promise<void>;
  /** As {@link ProcessServiceSpec.untilStopped}. @default false */
  readonly untilStopped?: boolean;
}

/** What the supervisor runs and restarts. */
export type ServiceSpec = ProcessServiceSpec | WorkerServiceSpec;

/** Where children's output goes, one prefixed line at a time (`[name] line`). */
export interface ServiceOutput {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

/** How one run of a service ended. */
export interface ServiceExit {
  /** Whether it ended on its own with success (exit code 0; the worker resolved). */
  readonly ok: boolean;
  /** One line on what went wrong, for a failure: `exited with code 1: <last stderr line>`. */
  readonly error?: string;
  /** The child's exit code, `null` when a signal ended it; absent for a worker. */
  readonly exitCode?: number | null;
  /** The signal that ended the child, if one did. */
  readonly signal?: string | null;
}

/** One running instance of a service. */
export interface ServiceInstance {
  /** Resolves once the run is over; never rejects. */
  readonly exited: Promise<ServiceExit>;
  /** The child's process id; absent for a worker or a child that could not start. */
  readonly pid: number | undefined;
  /** Asks the run to end: SIGTERM to a child, abort to a worker's signal. */
  stop(): void;
  /** Ends a child at once (SIGKILL). Returns `false` for a worker, which cannot be killed. */
  kill(): boolean;
}

/** Lines of a child's stderr kept for its failure message. */
const STDERR_TAIL_LINES = 20;

/**
 * How long to wait for a child's pipes to close after it exited before settling without
 * them (a grandchild may hold them open).
 */
const PIPE_CLOSE_GRACE_MS = 1_000;

/** Starts one run of `spec`. Never throws: a run that cannot start is a run that failed. */
export function startServiceInstance(spec: ServiceSpec, output: ServiceOutput): ServiceInstance {
  try {
    return spec.kind === 'process' ? startChild(spec, output) : startWorker(spec);
  } catch (error) {
    // spawn() throws synchronously on arguments it refuses (a NUL byte, a bad cwd type).
    return {
      exited: Promise.resolve({ ok: false, error: `could not start: ${describeError(error)}` }),
      pid: undefined,
      stop: () => {},
      kill: () => false,
    };
  }
}

function startWorker(spec: WorkerServiceSpec): ServiceInstance {
  const controller = new AbortController();
  const exited = (async (): Promise<ServiceExit> => {
    try {
      await spec.run(controller.signal);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  })();
  return {
    exited,
    pid: undefined,
    stop: () => controller.abort(),
    kill: () => false,
  };
}

function startChild(spec: ProcessServiceSpec, output: ServiceOutput): ServiceInstance {
  const child = spawn(spec.command ?? process.execPath, [...spec.args], {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const prefix = `[${spec.name}] `;
  const forward = (stream: NodeJS.ReadableStream | null, to: ServiceOutput['stdout'], keep: boolean): void => {
    if (stream === null) return;
    let partial = '';
    const emit = (line: string): void => {
      to.write(`${prefix}${line}\n`);
      if (keep && line.trim() !== '') {
        tail.push(line);
        if (tail.length > STDERR_TAIL_LINES) tail.shift();
      }
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) emit(line);
    });
    stream.on('end', () => {
      if (partial !== '') emit(partial);
      partial = '';
    });
  };
  forward(child.stdout, output.stdout, false);
  forward(child.stderr, output.stderr, true);

  const exited = new Promise<ServiceExit>((resolve) => {
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const settle = (exit: ServiceExit): void => {
      if (settled) return;
      settled = true;
      if (grace !== undefined) clearTimeout(grace);
      resolve(exit);
    };
    const ended = (code: number | null, signal: NodeJS.Signals | null): ServiceExit => {
      if (code === 0) return { ok: true, exitCode: 0, signal: null };
      const how = signal === null ? `exited with code ${code}` : `killed by signal ${signal}`;
      const last = tail.at(-1);
      return { ok: false, error: last === undefined ? how : `${how}: ${last}`, exitCode: code, signal };
    };
    child.once('error', (error) => {
      // A child that never started (ENOENT, EACCES) emits no 'exit'.
      if (child.pid === undefined) settle({ ok: false, error: `could not start ${spec.command ?? 'node'}: ${errorMessage(error)}` });
    });
    child.once('exit', (code, signal) => {
      grace = setTimeout(() => settle(ended(code, signal)), PIPE_CLOSE_GRACE_MS);
      grace.unref();
    });
    // 'close' comes after the pipes are drained, so the stderr tail is complete.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => settle(ended(code, signal)));
  });

  return {
    exited,
    pid: child.pid,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return true;
    },
  };
}
