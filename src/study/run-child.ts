/**
 * Entry of a run's child process (one run per process: TF.js computes on one thread per
 * process). Waits for the parent's `start` message, builds the named runner, runs, sends
 * `progress` messages and one `result` or `failure`, and exits. SIGTERM aborts the run at
 * its next step boundary.
 */
import { pathToFileURL } from 'node:url';
import { describeError, errorMessage, isEsperError, type EsperSettings } from '../core/index.js';
import type { ArmRunner } from './arm-runner.js';
import { ChildMessageSchema, StartMessageSchema, type ChildMessage, type StartMessage } from './protocol.js';
import type { TaskDefinition } from './tasks.js';

function send(message: ChildMessage): Promise<void> {
  const checked = ChildMessageSchema.parse(message);
  return new Promise((resolve, reject) => {
    process.send?.(checked, undefined, {}, (error) => (error === null ? resolve() : reject(error)));
  });
}

async function loadRunner(start: StartMessage): Promise<ArmRunner> {
  const specifier = start.runner.module.startsWith('file:') ? start.runner.module : pathToFileURL(start.runner.module).href;
  const exported = ((await import(specifier)) as Record<string, unknown>)[start.runner.exportName];
  if (typeof exported !== 'function') {
    throw new Error(`runner module ${start.runner.module} has no function export '${start.runner.exportName}'`);
  }
  const runner = (await (exported as () => unknown)()) as Partial<ArmRunner> | undefined;
  if (typeof runner?.run !== 'function') {
    throw new Error(`${start.runner.exportName}() of ${start.runner.module} did not return an ArmRunner`);
  }
  return runner as ArmRunner;
}

async function runOnce(raw: unknown): Promise<void> {
  const abort = new AbortController();
  process.once('SIGTERM', () => abort.abort(new Error('run stopped by the study (SIGTERM)')));
  let outcome: ChildMessage;
  try {
    const start = StartMessageSchema.parse(raw);
    const runner = await loadRunner(start);
    const result = await runner.run(
      { task: start.task as TaskDefinition, arm: start.arm, seed: start.seed, settings: start.settings as unknown as EsperSettings },
      {
        signal: abort.signal,
        onProgress: (p) => {
          send({ type: 'progress', step: p.step, totalSteps: p.totalSteps, loss: Number.isFinite(p.loss) ? p.loss : null }).catch(() => {
            // The parent went away; the run's result cannot be delivered either, and the exit says so.
          });
        },
      },
    );
    // Through JSON first, as IPC sends it: an undefined accuracy drops out, a NaN loss fails the check.
    outcome = ChildMessageSchema.parse({ type: 'result', result: JSON.parse(JSON.stringify(result)) as unknown });
  } catch (error) {
    outcome = { type: 'failure', message: describeError(error), ...(isEsperError(error) ? { code: error.code } : {}) };
  }
  try {
    await send(outcome);
  } catch (error) {
    process.stderr.write(`study child: could not report to the parent: ${errorMessage(error)}\n`);
    process.exitCode = 1;
  }
  // The run's tensors, timers and worker are closed; nothing left is worth waiting for.
  process.exit();
}

if (process.send !== undefined) {
  process.once('message', (message) => {
    runOnce(message).catch((error: unknown) => {
      process.stderr.write(`study child: ${describeError(error)}\n`);
      process.exit(1);
    });
  });
}
