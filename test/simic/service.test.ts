/**
 * SimicService over an in-memory bus: reports of the version being trained that carry a
 * decision context become one-decision episodes with the documented reward; reports of
 * another version, without a context or ABORTED are counted and left out; once enough wait,
 * one PPO update runs and its candidate is published (with an evaluator) or blocked
 * (without one: nothing reaches the bus); a published policy is kept across a restart; a
 * Tamiyo swaps to Simic's update and refuses tampered, unsigned and replayed copies of it.
 */
import { clone, create } from '@bufbuild/protobuf';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { mlpHost } from '../../src/tolaria/index.js';
import {
  BusMessageType,
  FieldReportDeltaSchema,
  FieldReportOutcome,
  FieldReportSchema,
  PolicyUpdateSchema,
  SystemStatePacketSchema,
  TrainingMetricsSchema,
  type FieldReport,
  type PolicyUpdate,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { HmacSigner } from '../../src/security/index.js';
import {
  PolicyPublisher,
  ReplayBuffer,
  rewardOfReport,
  SimicEvent,
  SimicLearnerMetric,
  SimicService,
  transitionOfReport,
  type SimicUpdate,
} from '../../src/simic/index.js';
import {
  createTamiyo,
  decisionContextOf,
  GRAPH_RELATIONS,
  initialPolicyNetwork,
  initialPolicyVersion,
  PolicyAction,
  choiceMaskOf,
  sampleChoice,
  type PolicyChoice,
} from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { countsForSize, randomGraph } from '../tamiyo/fixtures/graphs.js';
import { TEST_TIMINGS, testKeyRing } from '../oona/fixtures/bus-options.js';

const INIT = initialPolicyVersion(7);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

beforeAll(async () => {
  await initTensorBackend();
});

async function until(condition: () => boolean, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A report of `version` deciding a sampled choice on a random graph of the live relations. */
function report(
  i: number,
  options: { version?: string; context?: boolean; outcome?: FieldReportOutcome; contribution?: number } = {},
): FieldReport {
  const rng = seededRng(100 + i);
  const graph = randomGraph(rng, countsForSize(30), { relations: GRAPH_RELATIONS });
  const { gnn } = initialPolicyNetwork(7);
  let choice: PolicyChoice;
  let logProb: number;
  let value: number;
  try {
    const output = gnn.forward(graph);
    ({ choice, logProb } = sampleChoice(output, choiceMaskOf(graph), rng));
    value = output.value;
  } finally {
    gnn.dispose();
  }
  return create(FieldReportSchema, {
    version: 1,
    reportId: `fr-${i}`,
    commandId: `c-${i}`,
    trainingRunId: 'run-a',
    outcome: options.outcome ?? FieldReportOutcome.SUCCESS,
    tamiyoPolicyVersion: options.version ?? INIT,
    delta: create(FieldReportDeltaSchema, options.contribution === undefined ? {} : { counterfactualContribution: options.contribution }),
    ...(options.context === false ? {} : { decisionContext: decisionContextOf({ graph, choice, logProb, value }) }),
  });
}

async function system(options: { evaluate?: boolean; keepPolicy?: boolean } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'esper-simic-service-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new MemoryStreamStore();
  const keyRing = testKeyRing();
  const bus = new StreamBus({ ...TEST_TIMINGS, store, keyRing, telemetry: new MemoryTelemetrySink() });
  cleanups.push(async () => {
    await bus.close();
    await store.close();
  });
  const buffer = await ReplayBuffer.open(path.join(dir, 'replay'));
  cleanups.push(() => buffer.close());
  const telemetry = new MemoryTelemetrySink();
  const updates: SimicUpdate[] = [];
  const policyUpdates: PolicyUpdate[] = [];
  const watcher = bus.subscribe({
    group: 'watch',
    consumer: 'w',
    types: [BusMessageType.POLICY_UPDATE],
    handler: (d) => {
      policyUpdates.push(d.message as PolicyUpdate);
    },
  });
  await watcher.ready;
  cleanups.push(() => watcher.close());
  const make = () => {
    const initial = initialPolicyNetwork(7);
    return new SimicService({
      bus,
      buffer,
      consumer: 'simic-test',
      gnn: initial.gnn,
      version: initial.version,
      publisher: new PolicyPublisher({ bus, signer: new HmacSigner(keyRing), telemetry, policyId: 'simic-ppo', trainingRunId: 'simic' }),
      ...(options.evaluate === true ? { evaluate: async () => ({ candidate: 0.6, current: 0.5, heuristic: 0.5, seeds: 3 }) } : {}),
      ...(options.keepPolicy === true ? { policyFile: path.join(dir, 'simic', 'policy.bin') } : {}),
      reportsPerUpdate: 4,
      ppo: { minibatch: 4, epochs: 2 },
      rng: seededRng(5),
      telemetry,
      onUpdate: (u) => updates.push(u),
    });
  };
  return { bus, buffer, telemetry, updates, policyUpdates, make, dir };
}

describe('transitionOfReport', () => {
  it('rewards a germinate with its contribution less the seed cost, a cull with the opposite, and falls back on the outcome', () => {
    const germinate = report(1, { contribution: 0.05 });
    const action = germinate.decisionContext?.action as number;
    const t = transitionOfReport(germinate);
    expect(t.usable).toBe(true);
    if (!t.usable) return;
    expect(t.trajectory).toHaveLength(1);
    const expected =
      action === PolicyAction.GERMINATE ? Math.fround(0.05) - 0.01 : action === PolicyAction.CULL ? -Math.fround(0.05) + 0.01 : 0.02;
    expect(t.reward).toBeCloseTo(expected, 9);
    const unmeasured = create(FieldReportSchema, { outcome: FieldReportOutcome.REGRESSION, delta: create(FieldReportDeltaSchema, {}) });
    expect(rewardOfReport(unmeasured, PolicyAction.GERMINATE)).toBeCloseTo(-0.03, 9);
    expect(rewardOfReport(unmeasured, PolicyAction.CULL)).toBeCloseTo(-0.01, 9);
    const measured = create(FieldReportSchema, {
      outcome: FieldReportOutcome.NEUTRAL,
      delta: create(FieldReportDeltaSchema, { counterfactualContribution: 0.1 }),
    });
    expect(rewardOfReport(measured, PolicyAction.GERMINATE)).toBeCloseTo(Math.fround(0.1) - 0.01, 7);
    expect(rewardOfReport(measured, PolicyAction.CULL)).toBeCloseTo(-Math.fround(0.1) + 0.01, 7);
    expect(transitionOfReport(report(2, { context: false }))).toEqual({ usable: false, reason: 'no_decision_context' });
    expect(transitionOfReport(report(3, { outcome: FieldReportOutcome.ABORTED }))).toEqual({ usable: false, reason: 'aborted' });
  });
});

describe('SimicService', () => {
  it('trains on the reports of the version it trains, publishes a passing candidate and trains the new version from then on', async () => {
    const s = await system({ evaluate: true });
    const service = s.make();
    cleanups.push(() => service.close());
    await service.start();
    const tensors = tf.memory().numTensors;
    await s.bus.publish(report(10, { version: 'someone-else' }));
    await s.bus.publish(report(11, { context: false }));
    await s.bus.publish(report(12, { outcome: FieldReportOutcome.ABORTED }));
    for (const i of [20, 21, 22]) await s.bus.publish(report(i, { contribution: 0.02 }));
    await until(() => service.stats().considered === 6);
    expect(service.stats()).toMatchObject({ pending: 3, otherVersion: 1, unusable: { no_decision_context: 1, aborted: 1 }, updates: 0 });
    await s.bus.publish(report(23, { contribution: -0.01 }));
    await until(() => s.updates.length === 1);
    await service.idle();
    const update = s.updates[0] as SimicUpdate;
    expect(update).toMatchObject({ fromVersion: INIT, candidateVersion: 'simic-v1', reports: 4 });
    expect(update.outcome.published).toBe(true);
    expect(service.version).toBe('simic-v1');
    expect(service.stats()).toMatchObject({ updates: 1, published: 1, blocked: 0, pending: 0 });
    await until(() => s.policyUpdates.length === 1);
    expect(s.policyUpdates[0]?.tamiyoPolicyVersion).toBe('simic-v1');
    // Telemetry: the publisher's simic.* metrics and event, and the learner's diagnostics.
    expect(s.telemetry.events(SimicEvent.POLICY_PUBLISHED)[0]?.attributes).toMatchObject({ version: 'simic-v1' });
    const names = s.telemetry.packets.flatMap((p) => p.metrics.map((m) => m.name));
    expect(names).toEqual(
      expect.arrayContaining(['simic.training.reward', 'simic.policy.loss', 'simic.validation.pass', ...Object.values(SimicLearnerMetric)]),
    );
    // The old version's reports are no longer trained on.
    await s.bus.publish(report(30));
    await until(() => service.stats().considered === 8);
    expect(service.stats()).toMatchObject({ otherVersion: 2, pending: 0 });
    // The update freed every tensor it made (the current network was replaced, not added).
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('without an evaluator every update is blocked: nothing is published and a WARNING names the held-out gates', async () => {
    const s = await system();
    const service = s.make();
    cleanups.push(() => service.close());
    await service.start();
    for (const i of [40, 41, 42, 43]) await s.bus.publish(report(i, { contribution: 0.03 }));
    await until(() => s.updates.length === 1);
    await service.idle();
    const outcome = s.updates[0]?.outcome;
    expect(outcome?.published).toBe(false);
    if (outcome === undefined || outcome.published) return;
    expect(outcome.reasons).toEqual(['held_out_vs_current: not evaluated', 'held_out_vs_heuristic: not evaluated']);
    expect(service.version).toBe(INIT);
    expect(service.stats()).toMatchObject({ updates: 1, published: 0, blocked: 1 });
    expect(s.telemetry.events(SimicEvent.POLICY_BLOCKED)).toHaveLength(1);
    // A probe subscription sees no policy update on the bus.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(s.policyUpdates).toHaveLength(0);
  });

  it('keeps its published policy across a restart (policy file) and trains on from its version', async () => {
    const s = await system({ evaluate: true, keepPolicy: true });
    const first = s.make();
    await first.start();
    for (const i of [50, 51, 52, 53]) await s.bus.publish(report(i, { contribution: 0.03 }));
    await until(() => s.updates.length === 1);
    await first.idle();
    expect(first.version).toBe('simic-v1');
    await first.close();
    const second = s.make();
    cleanups.push(() => second.close());
    await second.start();
    expect(second.version).toBe('simic-v1');
    // The buffer's reports of the old version are considered at start, and left out.
    expect(second.stats()).toMatchObject({ otherVersion: 4, pending: 0 });
  });

  it("Tamiyo swaps to Simic's published update; tampered, unsigned and replayed copies of it are rejected with their reason and the swapped policy keeps deciding", async () => {
    const s = await system({ evaluate: true });
    const service = s.make();
    cleanups.push(() => service.close());
    await service.start();
    const tamiyoTelemetry = new MemoryTelemetrySink();
    const settings = loadSettings({ env: {}, overrides: { tamiyo: { stepTimeoutMs: 60_000, gnnInitSeed: 7, gnnSampling: true } } });
    const tamiyo = await createTamiyo(settings, {
      policy: 'gnn',
      host: mlpHost({ inputShape: [2], hidden: [4], numClasses: 2, seed: 1, hostId: 'simic-svc' }).descriptor,
      candidates: [],
      keyRing: testKeyRing(),
      trainingRunId: 'run-a',
      telemetry: tamiyoTelemetry,
      policyUpdates: { bus: s.bus, nonceFile: path.join(s.dir, 'nonces.wal') },
    });
    cleanups.push(() => tamiyo.close('run_completed'));
    let step = 0;
    const decide = async (): Promise<string> => {
      step += 1;
      const packet = create(SystemStatePacketSchema, {
        version: 1,
        packetId: `p${step}`,
        globalStep: BigInt(step),
        trainingRunId: 'run-a',
        metrics: create(TrainingMetricsSchema, {}),
      });
      await tamiyo.service.evaluateStep(packet, { signal: new AbortController().signal });
      return tamiyo.service.policy.version;
    };
    expect(await decide()).toBe(INIT);
    for (const i of [60, 61, 62, 63]) await s.bus.publish(report(i, { contribution: 0.03 }));
    await until(() => s.policyUpdates.length === 1);
    const deadline = Date.now() + 10_000;
    while ((await decide()) !== 'simic-v1' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(tamiyo.service.policy.version).toBe('simic-v1');

    const original = s.policyUpdates[0] as PolicyUpdate;
    const tampered = clone(PolicyUpdateSchema, original);
    tampered.payload = Uint8Array.from(tampered.payload);
    tampered.payload[100] = (tampered.payload[100] ?? 0) ^ 0x01;
    const unsigned = clone(PolicyUpdateSchema, original);
    unsigned.security = undefined;
    const replayed = clone(PolicyUpdateSchema, original);
    for (const update of [tampered, unsigned, replayed]) await s.bus.publish(update);
    await until(() => tamiyoTelemetry.events('policy_update_rejected').length === 3);
    expect(tamiyoTelemetry.events('policy_update_rejected').map((e) => e.attributes['reason'])).toEqual([
      'invalid_signature',
      'missing_security',
      'nonce_replayed',
    ]);
    expect(await decide()).toBe('simic-v1');
  });
});
