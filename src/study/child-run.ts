/**
 * One run in its own child process: fork `run-child`, send `start`, relay `progress`, settle
 * on `result`, `failure` or the child's exit. Under tsx/vitest the entry is the `.ts` source
 * and the child is started with `--import tsx`; from `dist` it is plain node.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, EsperError, errorMessage, type EsperSettings } from '../core/index.js';
import type { ArmProgress, ArmResult, ArmRunnerModule } from './arm-runner.js';
import { ChildMessageSchema, StartMessageSchema } from './protocol.js';
import type { StudyArm, TaskDefinition } from './tasks.js';

/** Lines of the child's stderr kept for a crash's reason. */
const STDERR_TAIL_LINES = 20;

/** The child entry beside this module, with the node flags it needs. */
export function childEntry(): { readonly file: string; readonly execArgv: readonly string[] } {
  const here = fileURLToPath(import.meta.url);
  const extension = path.extname(here);
  return {
    file: path.join(path.dirname(here), `run-child${extension}`),
    execArgv: extension === '.ts' ? ['--import', 'tsx'] : [],
  };
}

/** What {@link runInChild} runs. */
export interface ChildRunRequest {
  readonly runner: ArmRunnerModule;
  readonly task: TaskDefinition;
  readonly arm: StudyArm;
  readonly seed: number;
  readonly settings: EsperSettings;
  readonly signal: AbortSignal;
  readonly onProgress?: (progress: ArmProgress) => void;
}

/**
 * Runs one arm of one seed in a child process.
 * @throws EsperError STUDY_RUN_FAILED (details.reason: `failed` — the runner threw, `crashed`
 *   — the child exited without a result, `protocol` — it sent a message that does not fit
 *   the protocol, `aborted` — the signal stopped it); details.code is the runner's error code
 */
export function runInChild(request: ChildRunRequest): Promise<ArmResult> {
  const entry = childEntry();
  const label = `${request.arm} seed ${request.seed}`;
  const start = StartMessageSchema.parse({
    type: 'start',
    runner: { module: request.runner.module, exportName: request.runner.exportName ?? 'createArmRunner' },
    task: request.task,
    arm: request.arm,
    seed: request.seed,
    settings: request.settings,
  });
  return new Promise<ArmResult>((resolve, reject) => {
    if (request.signal.aborted) {
      reject(failure(label, 'aborted', 'the study was stopped before the run started'));
      return;
    }
    const child = fork(entry.file, [], {
      execArgv: [...entry.execArgv],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const stderr: string[] = [];
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr.push(...chunk.split('\n').filter((line) => line.trim() !== ''));
      if (stderr.length > STDERR_TAIL_LINES) stderr.splice(0, stderr.length - STDERR_TAIL_LINES);
    });
    let settled: { readonly ok: true; readonly value: ArmResult } | { readonly ok: false; readonly error: EsperError } | undefined;
    const settleOnce = (outcome: NonNullable<typeof settled>): void => {
      settled ??= outcome;
    };
    const onAbort = (): void => {
      settleOnce({ ok: false, error: failure(label, 'aborted', 'the study was stopped') });
      child.kill('SIGKILL');
    };
    request.signal.addEventListener('abort', onAbort, { once: true });
    child.on('message', (raw: unknown) => {
      const parsed = ChildMessageSchema.safeParse(raw);
      if (!parsed.success) {
        settleOnce({ ok: false, error: failure(label, 'protocol', `unexpected message from the run's process: ${parsed.error.message}`) });
        child.kill('SIGKILL');
        return;
      }
      const message = parsed.data;
      if (message.type === 'progress') {
        request.onProgress?.({ step: message.step, totalSteps: message.totalSteps, loss: message.loss ?? Number.NaN });
      } else if (message.type === 'result') {
        settleOnce({ ok: true, value: message.result });
      } else {
        settleOnce({ ok: false, error: failure(label, 'failed', message.message, message.code) });
      }
    });
    child.on('error', (error) => {
      settleOnce({ ok: false, error: failure(label, 'crashed', `could not run the child process: ${errorMessage(error)}`) });
    });
    child.on('exit', (code, signal) => {
      request.signal.removeEventListener('abort', onAbort);
      const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
      const tail = stderr.length === 0 ? '' : `; stderr: ${stderr.join(' | ')}`;
      settleOnce({ ok: false, error: failure(label, 'crashed', `the run's process ended (${how}) without a result${tail}`) });
      if (settled?.ok === true) resolve(settled.value);
      else if (settled !== undefined) reject(settled.error);
    });
    child.send(start, (error) => {
      if (error !== null) settleOnce({ ok: false, error: failure(label, 'crashed', `could not start the run: ${errorMessage(error)}`) });
    });
  });
}

function failure(label: string, reason: 'failed' | 'crashed' | 'protocol' | 'aborted', message: string, code?: string): EsperError {
  return new EsperError(ErrorCode.STUDY_RUN_FAILED, `run ${label} ${reason}: ${message}`, {
    details: { reason, ...(code === undefined ? {} : { code }) },
  });
}
