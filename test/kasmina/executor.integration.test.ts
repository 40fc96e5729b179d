/**
 * Kasmina with real training: MNIST, the MLP host, Tolaria's trainer, a blueprint compiled
 * by Tezzeret and served by Urza, commands signed with the foundation's signer.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, MemoryTelemetrySink } from '../../src/core/index.js';
import { buildOperatorCommand, OperatorAction, SeedEvent } from '../../src/kasmina/index.js';
import {
  SeedLifecycleStage,
  TelemetryLevel,
  type AdaptationCommand,
  type SystemStatePacket,
  type TelemetryPacket,
} from '../../src/leyline/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import {
  CheckpointStore,
  loadDataset,
  mlpHost,
  Trainer,
  type Checkpoint,
  type Controller,
  type Dataset,
  type EpochReport,
  type HostModel,
  type TrainerOptions,
} from '../../src/tolaria/index.js';
import { kasminaHarness, type KasminaHarness } from './fixtures/harness.js';

const RUN = 'run-kasmina';
let dataset: Dataset;
let hostCount = 0;

beforeAll(async () => {
  await initTensorBackend();
  dataset = await loadDataset('mnist', { layout: 'flat', seed: 3 });
});

/** Returns the command scheduled for the packet's step (signed when handed out). */
class Script implements Controller {
  readonly #byStep = new Map<number, () => AdaptationCommand>();
  at(step: number, command: () => AdaptationCommand): this {
    this.#byStep.set(step, command);
    return this;
  }
  evaluateStep(state: SystemStatePacket): Promise<AdaptationCommand | undefined> {
    return Promise.resolve(this.#byStep.get(Number(state.globalStep))?.());
  }
}

interface RunResult {
  readonly epochs: EpochReport[];
  readonly host: HostModel;
  readonly harness: KasminaHarness | undefined;
  readonly trainerTelemetry: MemoryTelemetrySink;
  readonly stepsRun: number;
}

const open: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** What every trainer here shares — MNIST, batch 64, seed 3, Adam 0.002, 10 s deadlines — on its own worker (closed after the file). */
function trainerBase(
  workerName: string,
): Pick<
  TrainerOptions,
  'trainingRunId' | 'worker' | 'controllerDeadlineMs' | 'executorDeadlineMs' | 'dataset' | 'batchSize' | 'seed' | 'optimizer'
> {
  const worker = new AsyncWorker({ name: workerName });
  open.push(() => worker.close().then(() => undefined));
  return {
    trainingRunId: RUN,
    worker,
    controllerDeadlineMs: 10_000,
    executorDeadlineMs: 10_000,
    dataset,
    batchSize: 64,
    seed: 3,
    optimizer: { kind: 'adam', learningRate: 0.002 },
  };
}

async function run(options: {
  readonly epochs: number;
  readonly withKasmina: boolean;
  readonly script?: (h: KasminaHarness) => Script;
  readonly settings?: Parameters<typeof kasminaHarness>[0]['settings'];
  readonly onStep?: (step: number, h: KasminaHarness | undefined, host: HostModel) => void;
}): Promise<RunResult> {
  hostCount += 1;
  const host = mlpHost({ inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: 5, hostId: `mlp${hostCount}` });
  const harness = options.withKasmina
    ? await kasminaHarness({ host, trainingRunId: RUN, ...(options.settings === undefined ? {} : { settings: options.settings }) })
    : undefined;
  if (harness !== undefined) open.push(() => harness.close());
  const trainerTelemetry = new MemoryTelemetrySink();
  const epochs: EpochReport[] = [];
  let stepsRun = 0;
  const trainer = new Trainer({
    ...trainerBase('kasmina-test'),
    host,
    epochs: options.epochs,
    telemetry: trainerTelemetry,
    ...(harness === undefined ? {} : { executor: harness.kasmina }),
    ...(harness === undefined || options.script === undefined ? {} : { controller: options.script(harness) }),
    onEpoch: (r) => epochs.push(r),
    onStep: (r) => {
      stepsRun = r.globalStep;
      options.onStep?.(r.globalStep, harness, host);
    },
  });
  await trainer.run();
  trainer.dispose();
  open.push(async () => host.dispose());
  return { epochs, host, harness, trainerTelemetry, stepsRun };
}

const germinate = (h: KasminaHarness, seedId = 'seed-1', siteId = 'hidden1'): AdaptationCommand =>
  h.sign(buildOperatorCommand({ action: OperatorAction.GERMINATE, trainingRunId: RUN, seedId, siteId, blueprintId: 'BP001' }));

const seedPackets = (packets: readonly TelemetryPacket[], seedId: string): TelemetryPacket[] =>
  packets.filter((p) => p.packetId.startsWith(`kasmina-seed-${seedId}-`));
const eventsOf = (packets: readonly TelemetryPacket[], description: string) =>
  packets.flatMap((p) => p.events.filter((e) => e.description === description));

describe('Kasmina on MNIST', () => {
  it('walks a signed germination through every stage to FOSSILIZED, ramping alpha on schedule, one packet per seed per step', async () => {
    const alphas: { step: number; stage: SeedLifecycleStage | undefined; alpha: number }[] = [];
    const result = await run({
      epochs: 2,
      withKasmina: true,
      script: (h) => new Script().at(1, () => germinate(h)),
      onStep: (step, h) => {
        const state = h?.kasmina.exportSeedStates().find((s) => s.seedId === 'seed-1');
        alphas.push({ step, stage: state?.stage, alpha: state?.metrics?.alpha ?? 0 });
      },
    });
    const h = result.harness as KasminaHarness;
    const failures = h.telemetry.packets.flatMap((p) =>
      p.events
        .filter((e) => ['gate_failure', 'stage_transition', 'seed_culled', 'contribution_measured'].includes(e.description))
        .map((e) => `${e.description} ${JSON.stringify(e.attributes)}`),
    );
    if (h.kasmina.historyOf('seed-1') === undefined) console.log(failures.join('\n'));
    const history = h.kasmina.historyOf('seed-1')?.map((t) => t.to);
    expect(history).toEqual([
      SeedLifecycleStage.SEED_STAGE_GERMINATED,
      SeedLifecycleStage.SEED_STAGE_TRAINING,
      SeedLifecycleStage.SEED_STAGE_BLENDING,
      SeedLifecycleStage.SEED_STAGE_SHADOWING,
      SeedLifecycleStage.SEED_STAGE_PROBATIONARY,
      SeedLifecycleStage.SEED_STAGE_FOSSILIZED,
    ]);
    // Alpha ramps monotonically through BLENDING and is 1 from SHADOWING on.
    const blending = alphas.filter((a) => a.stage === SeedLifecycleStage.SEED_STAGE_BLENDING).map((a) => a.alpha);
    expect(blending.length).toBeGreaterThanOrEqual(15);
    for (let i = 1; i < blending.length; i += 1) expect(blending[i] as number).toBeGreaterThan(blending[i - 1] as number);
    expect(blending[0] as number).toBeLessThan(0.1);
    expect(blending.at(-1) as number).toBeGreaterThan(0.9);
    expect(alphas.filter((a) => a.stage === SeedLifecycleStage.SEED_STAGE_FOSSILIZED).every((a) => a.alpha === 1)).toBe(true);
    // The contribution that fossilized it was measured and exported.
    const contribution = h.kasmina.exportSeedStates().find((s) => s.seedId === 'seed-1')?.metrics?.counterfactualContribution;
    expect(contribution).toBeGreaterThanOrEqual(0.01);
    // Exactly one packet per seed per step from germination on, plus one global packet per step.
    const packets = seedPackets(h.telemetry.packets, 'seed-1');
    const steps = packets.map((p) => Number(p.packetId.split('-').at(-1)));
    expect(new Set(steps).size).toBe(steps.length);
    expect(steps).toEqual(Array.from({ length: result.stepsRun }, (_, i) => i + 1));
    expect(h.telemetry.packets.filter((p) => p.packetId.startsWith('kasmina-global-'))).toHaveLength(result.stepsRun);
    expect(eventsOf(h.telemetry.packets, SeedEvent.GATE_FAILURE)).toEqual([]);
    console.log(`[kasmina] fossilized with contribution ${(contribution ?? 0).toFixed(4)}`);
  }, 120_000);

  it('keeps the host exactly on its no-seed trajectory while the seed trains in isolation', async () => {
    // TRAINING lasts the whole epoch: the seed learns, the host must not notice.
    const settings = { trainingSteps: 10_000 };
    const bare = await run({ epochs: 1, withKasmina: false });
    const grown = await run({ epochs: 1, withKasmina: true, settings, script: (h) => new Script().at(1, () => germinate(h)) });
    const h = grown.harness as KasminaHarness;
    expect(h.kasmina.stageOf('seed-1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(grown.epochs[0]?.validationAccuracy).toBe(bare.epochs[0]?.validationAccuracy);
    expect(grown.epochs[0]?.validationLoss).toBe(bare.epochs[0]?.validationLoss);
    // The host's weights are bit-identical, and the seed did learn.
    const weights = (host: HostModel) => host.variables.map((v) => Array.from(v.dataSync()));
    expect(weights(grown.host)).toEqual(weights(bare.host));
    const norms = seedPackets(h.telemetry.packets, 'seed-1').flatMap((p) =>
      p.metrics.filter((m) => m.name === 'kasmina.seed.gradient_norm').map((m) => m.value),
    );
    expect(Math.max(...norms)).toBeGreaterThan(0);
    expect(h.kasmina.stats().isolationChecks).toBeGreaterThan(10);
    expect(h.kasmina.stats().isolationViolations).toBe(0);
    console.log(
      `[kasmina] validation accuracy bare ${bare.epochs[0]?.validationAccuracy} / with training seed ${grown.epochs[0]?.validationAccuracy}`,
    );
  }, 120_000);

  it('after a cull the outputs equal the host without the seed, bit for bit, and the seed tensors are freed', async () => {
    let tensorsBefore = -1;
    let tensorsAfter = -1;
    const probe = tf.tidy(() => tf.randomUniform([16, ...dataset.inputShape], 0, 1, 'float32', 7));
    open.push(async () => probe.dispose());
    const cull = (h: KasminaHarness) => h.sign(buildOperatorCommand({ action: OperatorAction.CULL, trainingRunId: RUN, seedId: 'seed-1' }));
    const result = await run({
      epochs: 1,
      withKasmina: true,
      settings: { trainingSteps: 10, blendingSteps: 10 },
      script: (h) => new Script().at(3, () => germinate(h)).at(20, () => cull(h)),
      onStep: (step) => {
        if (step === 2) tensorsBefore = tf.memory().numTensors;
        if (step === 22) tensorsAfter = tf.memory().numTensors;
      },
    });
    const h = result.harness as KasminaHarness;
    const history = h.kasmina.historyOf('seed-1');
    // Reset after the embargo, then retired: the seed is gone.
    expect(history).toBeUndefined();
    expect(eventsOf(h.telemetry.packets, SeedEvent.SEED_CULLED)).toHaveLength(1);
    expect(eventsOf(h.telemetry.packets, SeedEvent.SEED_RESET)).toHaveLength(1);
    expect(result.host.hooks.size).toBe(0);
    expect(tensorsAfter).toBe(tensorsBefore);
    // Same weights in a host that never had a seed → identical logits.
    const twin = mlpHost({ inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: 99, hostId: 'twin' });
    open.push(async () => twin.dispose());
    twin.variables.forEach((v, i) => v.assign(result.host.variables[i] as tf.Variable));
    const logits = (host: HostModel) => tf.tidy(() => Array.from(host.forward(probe, { training: false }).dataSync()));
    expect(logits(result.host)).toEqual(logits(twin));
  }, 120_000);
});

describe('Kasmina commands on MNIST', () => {
  it('a rejected command changes nothing and reports CRITICAL command_rejected', async () => {
    const result = await run({
      epochs: 1,
      withKasmina: true,
      script: (h) =>
        new Script().at(1, () => {
          const signed = germinate(h);
          return { ...signed, targetSeedId: 'seed-forged' };
        }),
    });
    const h = result.harness as KasminaHarness;
    expect(h.kasmina.exportSeedStates()).toEqual([]);
    const rejected = eventsOf(h.telemetry.packets, 'command_rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(rejected[0]?.attributes['reason']).toBe('invalid_signature');
  }, 120_000);
});

describe('Kasmina checkpoints', () => {
  it('a run resumed from a checkpoint taken mid-blend continues exactly like the uninterrupted run', async () => {
    const settings = { trainingSteps: 120, blendingSteps: 40 };
    const dir = await mkdtemp(path.join(tmpdir(), 'kasmina-ckpt-'));
    open.push(() => rm(dir, { recursive: true, force: true }));
    const weights = (host: HostModel) => host.trainableVariables().map((v) => Array.from(v.dataSync()));

    const straight = await run({ epochs: 2, withKasmina: true, settings, script: (h) => new Script().at(1, () => germinate(h)) });
    const straightWeights = weights(straight.host);
    const straightState = (straight.harness as KasminaHarness).kasmina.exportSeedStates();

    // Part 1: one epoch, checkpointed at its end (the seed is BLENDING, alpha mid-ramp).
    const store = await CheckpointStore.open(dir);
    open.push(() => store.close());
    const first = await runOn({ epochs: 1, settings, store, script: (h) => new Script().at(1, () => germinate(h)) });
    expect(first.harness.kasmina.stageOf('seed-1')).toBe(SeedLifecycleStage.SEED_STAGE_BLENDING);
    await first.harness.kasmina.close();
    first.dispose();
    // Part 2: a new process's worth of objects, restored from the checkpoint.
    const latest = await store.latest();
    expect(latest?.checkpoint.header.executor).toBeDefined();
    const second = await runOn({ epochs: 2, settings, store, restore: latest?.checkpoint });
    expect(second.harness.kasmina.exportSeedStates()).toEqual(straightState);
    expect(weights(second.host)).toEqual(straightWeights);
    expect(second.epochs.at(-1)?.validationAccuracy).toBe(straight.epochs.at(-1)?.validationAccuracy);
    second.dispose();
  }, 180_000);
});

/** A Kasmina run on a host with a fixed id (checkpoints name their host), optionally checkpointed and resumed. */
async function runOn(options: {
  readonly epochs: number;
  readonly settings: Parameters<typeof kasminaHarness>[0]['settings'];
  readonly store: CheckpointStore;
  readonly script?: (h: KasminaHarness) => Script;
  readonly restore?: Checkpoint | undefined;
}): Promise<{ harness: KasminaHarness; host: HostModel; epochs: EpochReport[]; dispose(): void }> {
  const host = mlpHost({ inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: 5, hostId: 'resumable' });
  const harness = await kasminaHarness({
    host,
    trainingRunId: RUN,
    ...(options.settings === undefined ? {} : { settings: options.settings }),
  });
  open.push(() => harness.close());
  const epochs: EpochReport[] = [];
  const trainer = new Trainer({
    ...trainerBase('kasmina-ckpt'),
    host,
    epochs: options.epochs,
    telemetry: new MemoryTelemetrySink(),
    executor: harness.kasmina,
    ...(options.script === undefined ? {} : { controller: options.script(harness) }),
    checkpoints: { store: options.store, everySteps: 0 },
    onEpoch: (r) => epochs.push(r),
  });
  if (options.restore !== undefined) await trainer.restore(options.restore);
  await trainer.run();
  return {
    harness,
    host,
    epochs,
    dispose() {
      trainer.dispose();
      host.dispose();
    },
  };
}
