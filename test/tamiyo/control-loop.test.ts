/**
 * The closed control loop: Tolaria trains, Tamiyo decides (policy → risk engine → signed
 * command), Kasmina verifies and executes. Real trainer, real Kasmina with Urza-served
 * kernels, real signing; the policies are scripted where the test needs a decision.
 */
import { create } from '@bufbuild/protobuf';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, DependencyGuard, ErrorCode, FakeClock, MemoryTelemetrySink } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import {
  CommandType,
  HazardBand,
  MessagePriority,
  PolicyUpdateSchema,
  RiskReason,
  SeedOperation,
  TrainingMetricsSchema,
  SystemStatePacketSchema,
  type AdaptationCommand,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { HmacSigner, NonceLedger } from '../../src/security/index.js';
import {
  architectureOf,
  buildPolicyUpdate,
  CommandBuilder,
  DecisionKind,
  EmbeddingRegistries,
  FeatureNormaliser,
  GnnPolicy,
  gnnConfigFor,
  GRAPH_RELATIONS,
  GraphBuilder,
  PolicyUpdateListener,
  PolicyUpdateVerifier,
  RiskEngine,
  TamiyoGnn,
  TamiyoService,
  type BlueprintCandidate,
  type PolicyContext,
  type PolicyProposal,
  type TamiyoPolicy,
  toId,
} from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import { loadDataset, mlpHost, Trainer, type Dataset, type HostModel } from '../../src/tolaria/index.js';
import { kasminaHarness, RING, type KasminaHarness } from '../kasmina/fixtures/harness.js';
import { hmacBsdsVerifier, signedSheet } from './fixtures/bsds.js';

const RUN = 'run-loop';
const catalog = new KarnCatalog();
const cleanups: (() => Promise<unknown> | unknown)[] = [];
let dataset: Dataset;
let hostCount = 0;

beforeAll(async () => {
  await initTensorBackend();
  dataset = await loadDataset('spirals', { seed: 2 });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A policy whose proposal is a function of the call. */
class ScriptedPolicy implements TamiyoPolicy {
  readonly name = 'scripted';
  readonly version = 'scripted-1';
  calls = 0;
  constructor(
    private readonly script: (context: PolicyContext, call: number) => PolicyProposal['decision'],
    private readonly delayMs: (call: number) => number = () => 0,
  ) {}
  propose(context: PolicyContext): PolicyProposal {
    this.calls += 1;
    const until = performance.now() + this.delayMs(this.calls);
    while (performance.now() < until) {
      // a slow inference
    }
    return { decision: this.script(context, this.calls), policyVersion: this.version, actionId: 0 };
  }
}

interface Loop {
  readonly host: HostModel;
  readonly h: KasminaHarness;
  readonly tamiyo: TamiyoService;
  readonly tamiyoTelemetry: MemoryTelemetrySink;
  readonly applied: AdaptationCommand[];
}

async function loop(policy: TamiyoPolicy, candidates: readonly BlueprintCandidate[] = [], stepBudgetMs = 1_000): Promise<Loop> {
  hostCount += 1;
  const host = mlpHost({
    inputShape: dataset.inputShape,
    hidden: [16, 16],
    numClasses: dataset.numClasses,
    seed: 1,
    hostId: `loop${hostCount}`,
  });
  cleanups.push(() => host.dispose());
  const h = await kasminaHarness({ host, trainingRunId: RUN, blueprints: ['BP001'] });
  cleanups.push(() => h.close());
  const tamiyoTelemetry = new MemoryTelemetrySink();
  const tamiyo = new TamiyoService({
    policy,
    host: host.descriptor,
    candidates,
    bsdsVerifier: hmacBsdsVerifier(RING),
    risk: new RiskEngine(),
    commands: new CommandBuilder({
      trainingRunId: RUN,
      signer: h.signer,
      guard: new DependencyGuard({ subsystem: 'tamiyo', sink: tamiyoTelemetry, trainingRunId: RUN }),
    }),
    telemetry: tamiyoTelemetry,
    trainingRunId: RUN,
    stepBudgetMs,
  });
  const applied: AdaptationCommand[] = [];
  const kasmina = h.kasmina;
  const executor = {
    apply: async (command: AdaptationCommand, ...rest: Parameters<typeof kasmina.apply> extends [unknown, ...infer R] ? R : never) => {
      applied.push(command);
      await kasmina.apply(command, ...rest);
    },
    exportSeedStates: () => kasmina.exportSeedStates(),
    advance: kasmina.advance.bind(kasmina),
    contributionProbes: kasmina.contributionProbes.bind(kasmina),
    recordValidation: kasmina.recordValidation.bind(kasmina),
  };
  const worker = new AsyncWorker({ name: 'loop' });
  cleanups.push(() => worker.close());
  const trainer = new Trainer({
    trainingRunId: RUN,
    host,
    dataset,
    epochs: 2,
    batchSize: 32,
    seed: 1,
    worker,
    controllerDeadlineMs: 10_000,
    executorDeadlineMs: 10_000,
    hookBudgetMs: 10_000,
    epochBudgetMs: 100_000,
    controller: tamiyo,
    executor,
    telemetry: new MemoryTelemetrySink(),
  });
  cleanups.push(() => trainer.dispose());
  await trainer.run();
  await tamiyo.close();
  return { host, h, tamiyo, tamiyoTelemetry, applied };
}

const candidate = (blueprintId: string, bsdsBand?: HazardBand): BlueprintCandidate => ({
  descriptor: catalog.get(blueprintId),
  ...(bsdsBand === undefined ? {} : { bsds: signedSheet(RING, { blueprintId, riskScore: 0.9, hazardBand: bsdsBand }) }),
  quarantined: catalog.get(blueprintId).quarantineOnly,
});

const id = (value: string) => toId(value, 'id');

describe('Tamiyo ↔ Tolaria ↔ Kasmina', () => {
  it('makes one controller call per step plus one per epoch, and a slow inference (150 ms against 50) becomes a PAUSE (TIMEOUT_INFERENCE, HIGH) without stalling training', async () => {
    const policy = new ScriptedPolicy(
      () => ({ kind: DecisionKind.WAIT }),
      (call) => (call === 7 ? 150 : 0),
    );
    const { tamiyo, tamiyoTelemetry, applied } = await loop(policy, [], 50);
    const stepsPerEpoch = Math.ceil(dataset.train.size / 32);
    expect(policy.calls).toBe(2 * stepsPerEpoch + 2);
    expect(tamiyo.stats().timeouts).toBe(1);
    const pauses = applied.filter((c) => c.commandType === CommandType.COMMAND_PAUSE);
    expect(pauses).toHaveLength(1);
    expect(pauses[0]?.metadata?.risk?.reason).toBe(RiskReason.TIMEOUT_INFERENCE);
    const timeoutPackets = tamiyoTelemetry.packets.filter((p) => p.events.some((e) => e.description === 'timeout_inference'));
    expect(timeoutPackets).toHaveLength(1);
    expect(timeoutPackets[0]?.priority).toBe(MessagePriority.HIGH);
  }, 60_000);

  it('never germinates a quarantined or CRITICAL-hazard blueprint, and germinates a safe one through the same path', async () => {
    const sites = ['hidden1', 'hidden2'];
    const policy = new ScriptedPolicy((context, call) => {
      if (!context.epochBoundary) return { kind: DecisionKind.WAIT };
      return { kind: DecisionKind.GERMINATE, blueprintId: id('BP043'), siteId: id(sites[call % 2] as string), seedId: id(`s${call}`) };
    });
    // BP043 is HIGH_RISK (quarantine only); BP001 carries a CRITICAL hazard sheet here.
    const blocked = await loop(policy, [candidate('BP043'), candidate('BP001', HazardBand.CRITICAL)]);
    const germinations = blocked.applied.filter(
      (c) => c.payload.case === 'seedOperation' && c.payload.value.operation === SeedOperation.SEED_OP_GERMINATE,
    );
    expect(germinations).toEqual([]);
    expect(blocked.h.kasmina.exportSeedStates()).toEqual([]);
    expect(blocked.tamiyoTelemetry.events('bp_quarantine').length).toBeGreaterThan(0);

    const critical = new ScriptedPolicy((context) =>
      context.epochBoundary
        ? { kind: DecisionKind.GERMINATE, blueprintId: id('BP001'), siteId: id('hidden1'), seedId: id('c1') }
        : { kind: DecisionKind.WAIT },
    );
    const hazard = await loop(critical, [candidate('BP001', HazardBand.CRITICAL)]);
    expect(hazard.h.kasmina.exportSeedStates()).toEqual([]);
    expect(hazard.tamiyoTelemetry.events('bsds_hazard_critical').length).toBeGreaterThan(0);

    const safe = new ScriptedPolicy((context) =>
      context.epochBoundary
        ? { kind: DecisionKind.GERMINATE, blueprintId: id('BP001'), siteId: id('hidden1'), seedId: id('ok1') }
        : { kind: DecisionKind.WAIT },
    );
    const grown = await loop(safe, [candidate('BP001')]);
    expect(grown.h.kasmina.exportSeedStates().map((s) => s.seedId)).toEqual(['ok1']);
    const germinate = grown.applied.find((c) => c.payload.case === 'seedOperation');
    expect(germinate?.security?.signature.length).toBe(32);
    expect(grown.h.verifier.snapshot().acceptedTotal).toBe(grown.applied.length);
  }, 120_000);
});

describe('Tamiyo risk and policy updates', () => {
  const packet = (step: number, lossDelta: number): SystemStatePacket =>
    create(SystemStatePacketSchema, {
      version: 1,
      packetId: `p${step}`,
      globalStep: BigInt(step),
      trainingRunId: RUN,
      metrics: create(TrainingMetricsSchema, { lossDelta }),
    });

  function service(policy: TamiyoPolicy, telemetry: MemoryTelemetrySink): TamiyoService {
    const signer = new HmacSigner(RING);
    return new TamiyoService({
      policy,
      host: mlpHost({ inputShape: [2], hidden: [4], numClasses: 2, seed: 1, hostId: `svc${(hostCount += 1)}` }).descriptor,
      candidates: [candidate('BP001')],
      bsdsVerifier: hmacBsdsVerifier(RING),
      risk: new RiskEngine({ exitAfterCleanSteps: 3 }),
      commands: new CommandBuilder({
        trainingRunId: RUN,
        signer,
        guard: new DependencyGuard({ subsystem: 'tamiyo', sink: telemetry, trainingRunId: RUN }),
      }),
      telemetry,
      trainingRunId: RUN,
      stepBudgetMs: 1_000,
    });
  }

  it('a loss spike enters conservative mode, which blocks growth and exits only after three clean steps', async () => {
    const telemetry = new MemoryTelemetrySink();
    const germinate = new ScriptedPolicy(() => ({
      kind: DecisionKind.GERMINATE,
      blueprintId: id('BP001'),
      siteId: id('hidden1'),
      seedId: id('x'),
    }));
    const tamiyo = service(germinate, telemetry);
    const signal = new AbortController().signal;
    const kinds: (CommandType | undefined)[] = [];
    for (const [step, delta] of [
      [1, 0],
      [2, 0.5],
      [3, 0],
      [4, 0],
      [5, 0],
      [6, 0],
    ] as const) {
      kinds.push((await tamiyo.evaluateStep(packet(step, delta), { signal }))?.commandType);
    }
    expect(kinds).toEqual([
      CommandType.COMMAND_SEED,
      CommandType.COMMAND_PAUSE,
      CommandType.COMMAND_PAUSE,
      CommandType.COMMAND_PAUSE,
      CommandType.COMMAND_PAUSE,
      CommandType.COMMAND_SEED,
    ]);
    expect(telemetry.events('conservative_entered')).toHaveLength(1);
    expect(telemetry.events('conservative_exited')).toHaveLength(1);
    const exitedAt = telemetry.packets.findIndex((p) => p.events.some((e) => e.description === 'conservative_exited'));
    expect(telemetry.packets[exitedAt]?.packetId).toBe('tamiyo-p5');
  });

  it('rejects a policy update with a bad checksum or signature (telemetry, policy unchanged) and runs a valid one from the next step', async () => {
    const builder = new GraphBuilder({ normaliser: new FeatureNormaliser(), registries: EmbeddingRegistries.inMemory() });
    const sizes = { hidden: 16, gatHidden: 8, heads: 2 };
    const config = gnnConfigFor(GRAPH_RELATIONS, sizes);
    const live = new GnnPolicy({ gnn: new TamiyoGnn(config, seededRng(1)), builder, version: 'v1' });
    const telemetry = new MemoryTelemetrySink();
    const tamiyo = service(live, telemetry);
    cleanups.push(() => tamiyo.close());
    const clock = new FakeClock({ wallMs: Date.now() });
    const signer = new HmacSigner(RING, { clock });
    const verifier = new PolicyUpdateVerifier({
      signer,
      ledger: new NonceLedger({ clock }),
      telemetry,
      clock,
      expectedArchitecture: architectureOf(config),
    });
    const candidateGnn = new TamiyoGnn(config, seededRng(2));
    const update = buildPolicyUpdate(candidateGnn, { policyId: 'p', trainingRunId: RUN, version: 'v2', signer });
    candidateGnn.dispose();

    // Signed with the right key, but the checksum does not match the payload.
    const badChecksum = signer.sign(
      PolicyUpdateSchema,
      create(PolicyUpdateSchema, { ...update, checksum: new Uint8Array(32), security: undefined }),
      { nonce: 'bad-checksum' },
    );
    const forged = buildPolicyUpdate(new TamiyoGnn(config, seededRng(3)), {
      policyId: 'p',
      trainingRunId: RUN,
      version: 'v3',
      signer: new HmacSigner(RING, { clock }),
    });
    const tampered = { ...forged, tamiyoPolicyVersion: 'v9' };
    for (const [bad, reason] of [
      [badChecksum, 'checksum_mismatch'],
      [tampered, 'invalid_signature'],
    ] as const) {
      const result = verifier.verify(bad, tamiyo.policy.version);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toBe(reason);
    }
    expect(telemetry.events('policy_update_rejected').map((e) => e.attributes['reason'])).toEqual([
      'checksum_mismatch',
      'invalid_signature',
    ]);
    expect(tamiyo.policy.version).toBe('v1');

    const accepted = verifier.verify(update, tamiyo.policy.version);
    expect(accepted.ok).toBe(true);
    if (!accepted.ok) return;
    const old = live.gnn;
    live.stage(accepted.loaded);
    expect(tamiyo.policy.version).toBe('v1');
    await tamiyo.evaluateStep(packet(1, 0), { signal: new AbortController().signal });
    expect(tamiyo.policy.version).toBe('v2');
    expect(old.disposed).toBe(true);
  });

  it('takes policy updates from Oona: a forged one is rejected, a valid one is live at the next decision', async () => {
    const builder = new GraphBuilder({ normaliser: new FeatureNormaliser(), registries: EmbeddingRegistries.inMemory() });
    const config = gnnConfigFor(GRAPH_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 });
    const live = new GnnPolicy({ gnn: new TamiyoGnn(config, seededRng(1)), builder, version: 'v1' });
    const telemetry = new MemoryTelemetrySink();
    const tamiyo = service(live, telemetry);
    cleanups.push(() => tamiyo.close());
    const signer = new HmacSigner(RING);
    const verifier = new PolicyUpdateVerifier({
      signer,
      ledger: new NonceLedger(),
      telemetry,
      expectedArchitecture: architectureOf(config),
    });
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const listener = new PolicyUpdateListener({ bus, service: tamiyo, verifier, group: 'tamiyo-run-loop' });
    await listener.start();
    cleanups.push(() => listener.close());

    const fresh = new TamiyoGnn(config, seededRng(5));
    const update = buildPolicyUpdate(fresh, { policyId: 'simic-1', trainingRunId: RUN, version: 'v2', signer });
    fresh.dispose();
    const forged = { ...update, tamiyoPolicyVersion: 'v3' };
    await bus.publish(forged);
    await bus.publish(update);
    const deadline = Date.now() + 10_000;
    while (listener.stats().received < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(listener.stats()).toEqual({ received: 2, staged: 1, rejected: 1 });
    expect(telemetry.events('policy_update_rejected')[0]?.attributes['reason']).toBe('invalid_signature');
    expect(tamiyo.policy.version).toBe('v1');
    const old = live.gnn;
    await tamiyo.evaluateStep(packet(1, 0), { signal: new AbortController().signal });
    expect(tamiyo.policy.version).toBe('v2');
    expect(old.disposed).toBe(true);
    expect(listener.state).toBe('running');
    await listener.close();
    expect(listener.state).toBe('closed');
    await expect(listener.start()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
  });
});
