/**
 * The control loop over the run's bus: the trainer publishes each state packet, Tamiyo's
 * responder answers it and publishes its command, Kasmina's inbox receives it. Embedded
 * (lockstep), a run makes the same decisions as with Tamiyo called directly, a subscriber
 * on the command stream sees every command Tamiyo issued, and Tamiyo learns every command's
 * fate — from the trainer directly, or from Kasmina's acknowledgements over the bus — with
 * the same counts either way.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { BusMessageType, type AdaptationCommand } from '../../src/leyline/index.js';
import { KeyRing } from '../../src/security/index.js';
import { formatCommandOutcomes, type TamiyoCommandOutcomes } from '../../src/tamiyo/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { createHost, createTrainer, loadDataset, type Dataset } from '../../src/tolaria/index.js';
import { openGrowingRun } from '../../src/weatherlight/index.js';

const keyRing = new KeyRing([{ keyId: 'k1', secret: Buffer.from('control-link-test-secret-0123456789', 'utf8') }]);

interface Grown {
  readonly decisions: readonly string[];
  readonly seeds: readonly string[];
  readonly commandsIssued: readonly string[];
  readonly commandsSeen: readonly string[];
  readonly accuracy: number;
  /** Tamiyo's count of its commands' fates, read once the run is closed. */
  readonly outcomes: TamiyoCommandOutcomes;
  /** Each decision's command fate (status and reason; the step only acknowledgements carry). */
  readonly fates: readonly string[];
}

describe('control over the bus (embedded, lockstep)', () => {
  let root: string;
  let settings: EsperSettings;
  let dataset: Dataset;

  beforeAll(async () => {
    await initTensorBackend();
    root = await mkdtemp(path.join(tmpdir(), 'esper-control-link-'));
    settings = loadSettings({
      env: {},
      overrides: {
        storage: { varDir: path.join(root, 'var') },
        core: { latencyBudgets: 'observe' },
        kasmina: { trainingSteps: 5, blendingSteps: 5, shadowingSteps: 5, probationSteps: 5, embargoSteps: 5 },
      },
    });
    dataset = await loadDataset('spirals', { seed: 0, trainSize: 256, validationSize: 128 });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** One growing run of 3 epochs; `direct` wires Tamiyo's service as the controller, as before the bus. */
  async function grow(wiring: 'bus' | 'direct'): Promise<Grown> {
    const host = createHost('mlp', { inputShape: [2], numClasses: 2, seed: 0, hidden: [4] });
    const run = await openGrowingRun(settings, {
      host,
      trainingRunId: `control-${wiring}`,
      telemetry: new MemoryTelemetrySink(),
      keyRing,
      policy: 'heuristic',
      heuristic: { capacityGapMax: 10 },
    });
    const seen: string[] = [];
    const observer = run.bus.subscribe({
      group: 'observer',
      consumer: 'test',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: (d) => {
        seen.push((d.message as AdaptationCommand).commandId);
      },
    });
    await observer.ready;
    const worker = new AsyncWorker({ name: 'control-link-test', ...settings.core.asyncWorker });
    const trainer = createTrainer(settings, {
      trainingRunId: `control-${wiring}`,
      host,
      dataset,
      epochs: 3,
      batchSize: 32,
      seed: 1,
      optimizer: { kind: 'adam', learningRate: 0.01 },
      worker,
      telemetry: new MemoryTelemetrySink(),
      ...run.collaborators,
      ...(wiring === 'direct' ? { controller: run.tamiyo.service } : {}),
    });
    let grown: Omit<Grown, 'outcomes' | 'fates'>;
    try {
      const summary = await trainer.run();
      expect(summary.state).toBe('completed');
      // Commands travel asynchronously to other groups: wait until the observer has every one.
      const issued = run.tamiyo.service.decisions.flatMap((d) => (d.commandId === undefined ? [] : [d.commandId]));
      const deadline = Date.now() + 5_000;
      while (wiring === 'bus' && seen.length < issued.length && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      grown = {
        decisions: run.tamiyo.service.decisions.map((d) => `${d.globalStep}:${d.decision}`),
        seeds: run.seedReports().map((s) => `${s.seedId}@${s.germinatedStep}:${s.fate}`),
        commandsIssued: issued,
        commandsSeen: [...seen],
        accuracy: summary.lastEpoch?.validationAccuracy ?? Number.NaN,
      };
    } finally {
      await observer.close();
      trainer.dispose();
      // Closing the run waits for the last acknowledgements to reach Tamiyo.
      await run.close('test_done');
      await worker.close();
      host.dispose();
    }
    const stats = run.tamiyo.service.stats();
    const outcomes = stats.commandOutcomes;
    expect(
      outcomes.applied +
        outcomes.rejected +
        outcomes.notApplied +
        outcomes.timedOut +
        outcomes.failed +
        outcomes.runEnded +
        outcomes.pending,
    ).toBe(stats.commands);
    expect(formatCommandOutcomes(stats.commands, outcomes)).toMatch(/^issued \d+, applied \d+, rejected \d+.*, pending \d+$/);
    const fates = run.tamiyo.service.decisions.map((d) => (d.fate === undefined ? '-' : `${d.fate.status}:${d.fate.reason}`));
    return { ...grown, outcomes, fates };
  }

  it('makes the same decisions as a direct call, every command Tamiyo issued crosses the command stream, and Tamiyo counts the same fates', async () => {
    const direct = await grow('direct');
    const bus = await grow('bus');
    expect(direct.commandsIssued.length).toBeGreaterThan(0);
    expect(bus.decisions).toEqual(direct.decisions);
    expect(bus.seeds).toEqual(direct.seeds);
    expect(bus.accuracy).toBe(direct.accuracy);
    expect(bus.commandsSeen).toEqual(bus.commandsIssued);
    expect(direct.commandsSeen).toEqual([]);
    expect(bus.outcomes).toEqual(direct.outcomes);
    expect(bus.fates).toEqual(direct.fates);
    expect(direct.outcomes).toMatchObject({ pending: 0, ignored: 0 });
    expect(direct.outcomes.applied).toBeGreaterThan(0);
  });
});
