/**
 * When the trainer calls its collaborators (`control-loop.ts`): the epoch-level controller
 * call, the executor's `advance` on its deadline after every step, and the validation
 * report with the contribution passes the trainer serves. Calls go one way.
 */
import { describe, expect, it } from 'vitest';
import { SeedOperation, type SystemStatePacket } from '../../src/leyline/index.js';
import { tf } from '../../src/tensor/index.js';
import type { Controller, Executor, ExecutorContext } from '../../src/tolaria/controller.js';
import type { HostModel } from '../../src/tolaria/host-model.js';
import { TolariaEvent } from '../../src/tolaria/names.js';
import { GraftingExecutor, residualHook, ScriptedController, seedCommand } from './fixtures/fakes.js';
import { eventsIn, trainerKit } from './fixtures/trainer-kit.js';

const RUN = 'run-test';
const kit = trainerKit({ trainingRunId: RUN, hostPrefix: 'loop', withWorker: true });
const script = (entries: [number, ReturnType<typeof seedCommand>][]): ScriptedController => new ScriptedController(new Map(entries));

/** Validation accuracy of `host` over the whole split, in one pass. */
function accuracyOf(host: HostModel): number {
  const split = kit.dataset().validation;
  const batch = split.batch(Int32Array.from({ length: split.size }, (_, i) => i));
  try {
    return tf.tidy(() => {
      const logits = host.forward(batch.inputs, { training: false });
      return (tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels), 'float32')).dataSync()[0] as number) / split.size;
    });
  } finally {
    tf.dispose([batch.inputs, batch.labels]);
  }
}

describe('ControlLoop: epochs', () => {
  it('calls evaluateEpoch with the validated epoch packet and applies its command', async () => {
    const executor = new GraftingExecutor('hidden2', 16);
    kit.defer(() => executor.dispose());
    const seen: SystemStatePacket[] = [];
    const controller: Controller = {
      evaluateStep: async () => undefined,
      evaluateEpoch: async (state) => {
        seen.push(state);
        return seen.length === 1 ? seedCommand('run-test', 'cmd-epoch', 'seed-e', SeedOperation.SEED_OP_GERMINATE) : undefined;
      },
    };
    const { trainer, telemetry } = kit.trainer({ controller, executor });
    await trainer.run();
    expect(seen.map((p) => p.packetId)).toEqual(['run-test-epoch-0', 'run-test-epoch-1']);
    expect(seen[0]!.validationAccuracy).toBeGreaterThan(0);
    expect(executor.applied.map((c) => c.commandId)).toEqual(['cmd-epoch']);
    expect(eventsIn(telemetry.packets, TolariaEvent.OPTIMIZER_REBUILT)[0]?.event.attributes).toMatchObject({ step: '8', added: '1' });
  });
});

describe('ControlLoop: the executor protocol goes one way', () => {
  it('serves contribution probes: one pass per probe with that site bypassed, reported once per validation', async () => {
    const executor = new GraftingExecutor('hidden2', 16);
    kit.defer(() => executor.dispose());
    const host = kit.host();
    const { trainer } = kit.trainer({
      host,
      epochs: 2,
      executor,
      controller: script([[2, seedCommand(RUN, 'germ', 'seed-1', SeedOperation.SEED_OP_GERMINATE)]]),
    });
    await trainer.run();
    expect(executor.validations).toHaveLength(2);
    const last = executor.validations[1]!;
    expect(last.withoutSeed.map((p) => [p.seedId, p.siteId])).toEqual([['seed-1', 'hidden2']]);
    // The last report was measured on the final weights: with the hook, and as if it were detached.
    expect(last.baseline.accuracy).toBe(accuracyOf(host));
    const hook = host.detach('hidden2')!;
    try {
      expect(last.withoutSeed[0]!.validation.accuracy).toBe(accuracyOf(host));
      expect(last.withoutSeed[0]!.validation.accuracy).not.toBe(last.baseline.accuracy);
    } finally {
      host.attach('hidden2', hook);
    }
  });

  it('puts advance on the executor deadline: a slow advance is a kasmina_timeout and conservative mode, never a stalled run', async () => {
    let advances = 0;
    const slow: Executor = {
      apply: () => Promise.resolve(),
      exportSeedStates: () => [],
      advance: (_context: ExecutorContext, options) =>
        new Promise((resolve) => {
          advances += 1;
          options.signal.addEventListener('abort', () => resolve(), { once: true });
        }),
      contributionProbes: () => [],
      recordValidation: () => Promise.resolve(),
    };
    const controller: Controller = { evaluateStep: (_state: SystemStatePacket) => Promise.resolve(undefined) };
    const { trainer, telemetry, steps } = kit.trainer({ executor: slow, controller, executorDeadlineMs: 20, epochs: 1 });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    expect(steps).toHaveLength(8);
    expect(advances).toBe(8);
    expect(summary.executorTimeouts).toBe(8);
    expect(telemetry.events(TolariaEvent.KASMINA_TIMEOUT)[0]?.attributes['call']).toBe('tolaria.kasmina.advance-1');
    expect(telemetry.events(TolariaEvent.CONSERVATIVE_MODE_ENTERED)).toHaveLength(1);
  });
});

describe('ControlLoop: steps', () => {
  it('hands advance the step just taken: its global step, loss and each hook’s gradient norm', async () => {
    const seen: { step: number; loss: number | undefined; norms: [string, number][] }[] = [];
    const executor: Executor = {
      apply: () => Promise.resolve(),
      exportSeedStates: () => [],
      advance: (context) => {
        seen.push({
          step: context.globalStep,
          loss: context.lastStep?.trainingLoss,
          norms: [...(context.lastStep?.hookGradientNorms ?? [])],
        });
        return Promise.resolve();
      },
      contributionProbes: () => [],
      recordValidation: () => Promise.resolve(),
    };
    const host = kit.host();
    const hook = residualHook('advance', 16);
    host.attach('hidden1', hook);
    kit.defer(() => {
      host.detach('hidden1');
      hook.dispose();
    });
    const { trainer, steps } = kit.trainer({ host, executor, epochs: 1 });
    await trainer.run();
    expect(seen.map((s) => s.step)).toEqual(steps.map((s) => s.globalStep));
    expect(seen.map((s) => s.loss)).toEqual(steps.map((s) => s.loss));
    expect(seen.every((s) => s.norms.length === 1 && s.norms[0]![0] === 'hidden1' && s.norms[0]![1] > 0)).toBe(true);
  });
});
