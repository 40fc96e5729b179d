/**
 * Simic's output reaching Tamiyo over the bus: a candidate that passes its gates is
 * published as a signed update, verified by Tamiyo's listener and live at its next decision
 * (the decisions then name the new version); a candidate that fails a gate is not published
 * and a WARNING names every failed gate; a tampered, stale, oversized or unsigned copy of
 * Simic's output is rejected by Tamiyo with its reason while the old policy keeps deciding.
 */
import { clone, create } from '@bufbuild/protobuf';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock, loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { PolicyUpdateSchema, SystemStatePacketSchema, TrainingMetricsSchema, type PolicyUpdate } from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { PolicyPublisher, SimicEvent, SimicGate, type SimicTrainingStats } from '../../src/simic/index.js';
import { createTamiyo, TamiyoGnn, type GnnPolicy, type Tamiyo } from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import { mlpHost } from '../../src/tolaria/index.js';

const RING = new KeyRing([{ keyId: 'k1', secret: Buffer.from('simic-publisher-test-secret-0123456789', 'utf8') }]);
const RUN = 'run-simic-pub';
const GOOD: SimicTrainingStats = { averageReward: 0.4, policyLoss: 0.8, valueLoss: 3, paramLoss: 0.1, policyEntropy: 1.2, episodes: 16 };
const BETTER = { candidate: 0.6, current: 0.5, heuristic: 0.55, seeds: 5 };

async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('Simic → Tamiyo policy updates over the bus', () => {
  let bus: StreamBus;
  let tamiyo: Tamiyo;
  let root: string;
  let tamiyoTelemetry: MemoryTelemetrySink;
  const simicTelemetry = new MemoryTelemetrySink();
  let publisher: PolicyPublisher;
  let step = 0;

  const decide = async (): Promise<string> => {
    step += 1;
    await tamiyo.service.evaluateStep(
      create(SystemStatePacketSchema, {
        version: 1,
        packetId: `p${step}`,
        globalStep: BigInt(step),
        trainingRunId: RUN,
        metrics: create(TrainingMetricsSchema, {}),
      }),
      { signal: new AbortController().signal },
    );
    // A staged update goes live at a decision; the policy deciding now is what it reports.
    return tamiyo.service.policy.version;
  };

  beforeAll(async () => {
    await initTensorBackend();
    root = await mkdtemp(path.join(tmpdir(), 'esper-simic-publisher-'));
    bus = new StreamBus({
      store: new MemoryStreamStore(),
      ownsStore: true,
      keyRing: RING,
      telemetry: new MemoryTelemetrySink(),
      blockMs: 20,
    });
    tamiyoTelemetry = new MemoryTelemetrySink();
    const settings = loadSettings({ env: {}, overrides: { tamiyo: { stepTimeoutMs: 60_000 } } });
    tamiyo = await createTamiyo(settings, {
      policy: 'gnn',
      host: mlpHost({ inputShape: [2], hidden: [4], numClasses: 2, seed: 1, hostId: 'simic-pub' }).descriptor,
      candidates: [],
      keyRing: RING,
      trainingRunId: RUN,
      telemetry: tamiyoTelemetry,
      // The live path: Tamiyo's own listener takes Simic's updates from the bus.
      policyUpdates: { bus, nonceFile: path.join(root, 'nonces-tamiyo-policy.wal') },
    });
    publisher = new PolicyPublisher({
      bus,
      signer: new HmacSigner(RING),
      telemetry: simicTelemetry,
      policyId: 'simic-ppo',
      trainingRunId: 'simic-learn',
    });
  });

  afterAll(async () => {
    await tamiyo.close('run_completed');
    await bus.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a candidate that passes its gates is published, verified and live at the next decision', async () => {
    const before = await decide();
    const candidate = new TamiyoGnn((tamiyo.service.policy as GnnPolicy).gnn.config, seededRng(42));
    const outcome = await publisher.publish(candidate, { version: 'simic-v2', stats: GOOD, evaluation: BETTER });
    candidate.dispose();
    expect(outcome.published).toBe(true);
    // Verified and staged when it arrives; live from the next decision on.
    const deadline = Date.now() + 10_000;
    while ((await decide()) !== 'simic-v2' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(tamiyo.service.policy.version).toBe('simic-v2');
    expect(before).not.toBe('simic-v2');
    const published = simicTelemetry.events(SimicEvent.POLICY_PUBLISHED);
    expect(published[0]?.attributes).toMatchObject({ version: 'simic-v2', policy_id: 'simic-ppo' });
  });

  it('a candidate that fails a gate is not published, and a WARNING names every failed gate', async () => {
    const rejectedBefore = tamiyoTelemetry.events('policy_update_rejected').length;
    const candidate = new TamiyoGnn((tamiyo.service.policy as GnnPolicy).gnn.config, seededRng(43));
    const outcome = await publisher.publish(candidate, {
      version: 'simic-v3',
      stats: { ...GOOD, policyLoss: 7.5, policyEntropy: -0.1 },
      evaluation: { ...BETTER, candidate: 0.45 },
    });
    candidate.dispose();
    expect(outcome.published).toBe(false);
    if (outcome.published) return;
    expect(outcome.reasons).toEqual([
      'policy_loss 7.5000 above max 5.0000',
      'policy_entropy -0.1000 below min 0.0000',
      'held_out_vs_current 0.4500 below min 0.5000',
      'held_out_vs_heuristic 0.4500 below min 0.5500',
    ]);
    expect(outcome.validation.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual([
      SimicGate.POLICY_LOSS,
      SimicGate.POLICY_ENTROPY,
      SimicGate.NOT_WORSE_THAN_CURRENT,
      SimicGate.NOT_WORSE_THAN_HEURISTIC,
    ]);
    const blocked = simicTelemetry.events(SimicEvent.POLICY_BLOCKED)[0];
    expect(blocked?.attributes['reasons']).toContain('policy_loss 7.5000 above max 5.0000');
    // Nothing reached Tamiyo: no verdict on any update, and the live policy is unchanged.
    expect(tamiyoTelemetry.events('policy_update_rejected')).toHaveLength(rejectedBefore);
    expect(await decide()).toBe('simic-v2');
  });

  it("a tampered, stale, oversized or unsigned copy of Simic's output is rejected with its reason; the live policy keeps deciding", async () => {
    const gnnConfig = (tamiyo.service.policy as GnnPolicy).gnn.config;
    const candidateOf = async (version: string, clock?: FakeClock): Promise<PolicyUpdate> => {
      const publisherOf = new PolicyPublisher({
        bus: new StreamBus({ store: new MemoryStreamStore(), ownsStore: true, keyRing: RING, telemetry: new MemoryTelemetrySink() }),
        signer: new HmacSigner(RING, clock === undefined ? {} : { clock }),
        telemetry: new MemoryTelemetrySink(),
        policyId: 'simic-ppo',
        trainingRunId: 'simic-learn',
        ...(clock === undefined ? {} : { clock }),
      });
      const gnn = new TamiyoGnn(gnnConfig, seededRng(7));
      try {
        const outcome = await publisherOf.publish(gnn, { version, stats: GOOD, evaluation: BETTER });
        if (!outcome.published) throw new Error('expected a published update');
        return outcome.update;
      } finally {
        gnn.dispose();
      }
    };
    const tampered = clone(PolicyUpdateSchema, await candidateOf('simic-v4'));
    tampered.payload = Uint8Array.from(tampered.payload);
    tampered.payload[tampered.payload.length - 1] = (tampered.payload.at(-1) ?? 0) ^ 0x01;
    const oldClock = new FakeClock({ wallMs: Date.now() - 10 * 60_000 });
    const stale = await candidateOf('simic-v5', oldClock);
    const oversized = clone(PolicyUpdateSchema, await candidateOf('simic-v6'));
    // Over Tamiyo's 3.5 MiB cap, under the bus's 4 MiB message bound (which refuses bigger ones at publish).
    oversized.payload = new Uint8Array(3.8 * 1024 * 1024);
    const unsigned = clone(PolicyUpdateSchema, await candidateOf('simic-v7'));
    unsigned.security = undefined;

    const rejectedBefore = tamiyoTelemetry.events('policy_update_rejected').length;
    for (const update of [tampered, stale, oversized, unsigned]) await bus.publish(update);
    await until(() => tamiyoTelemetry.events('policy_update_rejected').length === rejectedBefore + 4);
    const reasons = tamiyoTelemetry.events('policy_update_rejected').map((e) => e.attributes['reason']);
    expect(reasons.slice(-4)).toEqual(['invalid_signature', 'stale_update', 'payload_too_large', 'missing_security']);
    expect(await decide()).toBe('simic-v2');
  });
});
