/**
 * TamiyoService: candidates enter through safety-data-sheet verification (fake verifiers and
 * real HMAC signatures), epoch observations carry Tamiyo's own CRITICAL events and Kasmina's
 * latest contribution measurements into the field reports, and `close()` ends the service.
 */
import { clone, create } from '@bufbuild/protobuf';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DependencyGuard, ErrorCode, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import {
  BSDSSchema,
  FieldReportOutcome,
  HandlingClass,
  HazardBand,
  HostDescriptorSchema,
  SeedLifecycleStage,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  SeedMetricsSchema,
  SeedStateSchema,
  SystemStatePacketSchema,
  TelemetryLevel,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import type { BlueprintCandidate, BsdsVerifier } from '../../src/tamiyo/candidates.js';
import { CommandBuilder } from '../../src/tamiyo/command-builder.js';
import { DecisionKind, toId, type ProposedDecision } from '../../src/tamiyo/decision.js';
import { FieldReportStore } from '../../src/tamiyo/field-report-store.js';
import { FieldReportBuilder } from '../../src/tamiyo/field-reports.js';
import { TamiyoEvent } from '../../src/tamiyo/names.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from '../../src/tamiyo/policy.js';
import { RiskEngine } from '../../src/tamiyo/risk-engine.js';
import { TamiyoService, type TamiyoServiceOptions } from '../../src/tamiyo/service.js';
import { hmacBsdsVerifier, signedSheet } from './fixtures/bsds.js';
import { errorOf as thrown } from './fixtures/errors.js';

const RUN = 'run-service';
const RING = new KeyRing([{ keyId: 'urabrask-k1', secret: Buffer.from('tamiyo-service-test-secret-0123456789', 'utf8') }]);
const catalog = new KarnCatalog();
const host = {
  descriptor: create(HostDescriptorSchema, {
    hostId: 'svc',
    family: 'mlp',
    sites: [create(SeedSiteDescriptorSchema, { siteId: 'hidden1', block: 'dense1', kind: SeedSiteKind.DENSE, shape: [4], depth: 1 })],
  }),
};
const SIGNAL = new AbortController().signal;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A policy that proposes what `script` says and remembers the candidates it was shown. */
class ScriptedPolicy implements TamiyoPolicy {
  readonly name = 'scripted';
  readonly version = 'scripted-1';
  seen: readonly string[] = [];
  disposed = 0;
  constructor(private readonly script: (context: PolicyContext) => ProposedDecision = () => ({ kind: DecisionKind.WAIT })) {}
  propose(context: PolicyContext): PolicyProposal {
    this.seen = context.candidates.map((c) => c.descriptor.blueprintId);
    return { decision: this.script(context), policyVersion: this.version, actionId: 0 };
  }
  dispose(): void {
    this.disposed += 1;
  }
}

function service(policy: TamiyoPolicy, overrides: Partial<TamiyoServiceOptions> = {}) {
  const telemetry = new MemoryTelemetrySink();
  const tamiyo = new TamiyoService({
    policy,
    host: host.descriptor,
    candidates: [],
    risk: new RiskEngine(),
    commands: new CommandBuilder({
      trainingRunId: RUN,
      signer: new HmacSigner(RING),
      guard: new DependencyGuard({ subsystem: 'tamiyo', sink: telemetry, trainingRunId: RUN }),
    }),
    telemetry,
    trainingRunId: RUN,
    stepBudgetMs: 1_000,
    ...overrides,
  });
  return { tamiyo, telemetry };
}

async function withReports(policy: TamiyoPolicy, overrides: Partial<TamiyoServiceOptions> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'tamiyo-service-'));
  const store = await FieldReportStore.open(path.join(dir, 'reports.wal'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  const telemetry = new MemoryTelemetrySink();
  const builder = new FieldReportBuilder({ trainingRunId: RUN, policyVersion: () => policy.version, telemetry });
  const made = service(policy, { fieldReports: { builder, store }, ...overrides });
  return { ...made, store };
}

function candidate(blueprintId: string, sheet?: { hazard?: HazardBand; handling?: HandlingClass }): BlueprintCandidate {
  const descriptor = catalog.get(blueprintId);
  if (sheet === undefined) return { descriptor };
  const bsds = signedSheet(RING, {
    blueprintId,
    riskScore: 0.2,
    hazardBand: sheet.hazard ?? HazardBand.LOW,
    handlingClass: sheet.handling ?? HandlingClass.STANDARD,
  });
  return { descriptor, bsds };
}

interface SeedInit {
  readonly seedId: string;
  readonly stage: SeedLifecycleStage;
  readonly contribution?: number;
}

function packet(step: number, epoch: number, seeds: readonly SeedInit[] = [], loss = 1): SystemStatePacket {
  return create(SystemStatePacketSchema, {
    packetId: `p${step}`,
    globalStep: BigInt(step),
    currentEpoch: epoch,
    trainingRunId: RUN,
    validationLoss: loss,
    validationAccuracy: 0.5,
    seedStates: seeds.map((s) =>
      create(SeedStateSchema, {
        seedId: s.seedId,
        siteId: 'hidden1',
        blueprintId: 'BP001',
        stage: s.stage,
        metrics: create(SeedMetricsSchema, s.contribution === undefined ? {} : { counterfactualContribution: s.contribution }),
      }),
    ),
  });
}

describe('TamiyoService safety data sheets', () => {
  it('leaves out a blueprint whose sheet fails verification, with CRITICAL integrity telemetry naming it and the reason', async () => {
    const refuseBp002: BsdsVerifier = {
      verify: (bsds) => (bsds.blueprintId === 'BP002' ? { ok: false, reason: 'bad_signature' } : { ok: true }),
    };
    const policy = new ScriptedPolicy();
    const { tamiyo, telemetry } = service(policy, {
      candidates: [candidate('BP001', {}), candidate('BP002', {}), candidate('BP003')],
      bsdsVerifier: refuseBp002,
    });
    expect(tamiyo.rejectedCandidates).toEqual([{ blueprintId: 'BP002', reason: 'bad_signature' }]);
    const [event] = telemetry.events(TamiyoEvent.INTEGRITY_FAILURE);
    expect(event).toMatchObject({
      level: TelemetryLevel.CRITICAL,
      attributes: { blueprint_id: 'BP002', reason: 'bad_signature', subject: 'bsds' },
    });
    await tamiyo.evaluateEpoch(packet(10, 0), { signal: SIGNAL });
    expect(policy.seen).toEqual(['BP001', 'BP003']);
  });

  it('refuses a candidate that carries a sheet when no verifier is given', () => {
    const error = thrown(() => service(new ScriptedPolicy(), { candidates: [candidate('BP001', {})] }));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as { details?: Record<string, unknown> }).details?.['field']).toBe('bsdsVerifier');
    // Without sheets, no verifier is needed.
    expect(() => service(new ScriptedPolicy(), { candidates: [candidate('BP001')] })).not.toThrow();
  });

  it('refuses a host site with a blank id', () => {
    const blank = { ...host.descriptor, sites: [create(SeedSiteDescriptorSchema, { siteId: ' ', kind: SeedSiteKind.DENSE, shape: [4] })] };
    const error = thrown(() => service(new ScriptedPolicy(), { host: blank }));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });

  it('with real HMAC signatures: a sheet edited after signing (or signed with an unknown key) is never germinated', async () => {
    // Signed as CRITICAL / QUARANTINE, then edited to LOW / STANDARD with the old signature kept.
    const signed = candidate('BP002', { hazard: HazardBand.CRITICAL, handling: HandlingClass.QUARANTINE });
    const edited = clone(BSDSSchema, signed.bsds!);
    edited.hazardBand = HazardBand.LOW;
    edited.handlingClass = HandlingClass.STANDARD;
    const downgraded: BlueprintCandidate = { ...signed, bsds: edited };
    const stranger = new KeyRing([{ keyId: 'other', secret: Buffer.from('some-other-urabrask-secret-0123456789', 'utf8') }]);
    const foreign: BlueprintCandidate = {
      descriptor: catalog.get('BP003'),
      bsds: signedSheet(stranger, { blueprintId: 'BP003', riskScore: 0.1 }),
    };
    // Germinates the first candidate it is offered, at the first site.
    const policy = new ScriptedPolicy((context) => {
      const offered = context.candidates[0];
      if (!context.epochBoundary || offered === undefined) return { kind: DecisionKind.WAIT };
      const site = toId('hidden1', 'site');
      return {
        kind: DecisionKind.GERMINATE,
        seedId: toId('hidden1#1', 'seed'),
        siteId: site,
        blueprintId: toId(offered.descriptor.blueprintId, 'bp'),
      };
    });
    const { tamiyo, telemetry } = service(policy, {
      candidates: [downgraded, foreign, candidate('BP001', {})],
      bsdsVerifier: hmacBsdsVerifier(RING),
    });
    expect(tamiyo.rejectedCandidates).toEqual([
      { blueprintId: 'BP002', reason: 'bad_signature' },
      { blueprintId: 'BP003', reason: 'unknown_key' },
    ]);
    expect(telemetry.events(TamiyoEvent.INTEGRITY_FAILURE).map((e) => e.attributes['blueprint_id'])).toEqual(['BP002', 'BP003']);
    const command = await tamiyo.evaluateEpoch(packet(10, 0), { signal: SIGNAL });
    expect(command?.payload.case === 'seedOperation' && command.payload.value.blueprintId).toBe('BP001');
  });
});

describe('TamiyoService field-report observations', () => {
  it('an epoch in which Tamiyo raised a CRITICAL event counts as critical: the open window becomes a REGRESSION', async () => {
    const run = async (riskScore: number) => {
      let call = 0;
      const policy = new ScriptedPolicy((context) => {
        call += 1;
        if (call === 1) return { kind: DecisionKind.CULL, seedId: toId('hidden1#1', 'seed') };
        // A later per-step proposal with a critical risk score: CRITICAL policy_risk_critical.
        return context.epochBoundary ? { kind: DecisionKind.WAIT } : { kind: DecisionKind.WAIT, policyRiskScore: riskScore };
      });
      const { tamiyo, store } = await withReports(policy);
      const seed = { seedId: 'hidden1#1', stage: SeedLifecycleStage.SEED_STAGE_PROBATIONARY };
      await tamiyo.evaluateEpoch(packet(10, 0, [seed], 1), { signal: SIGNAL });
      await tamiyo.evaluateStep(packet(11, 1, [seed], 1), { signal: SIGNAL });
      for (const epoch of [1, 2, 3])
        await tamiyo.evaluateEpoch(packet(10 * (epoch + 1), epoch, [seed], 1 - epoch / 10), { signal: SIGNAL });
      await tamiyo.close();
      return store.reports();
    };
    const [calm] = await run(0.1);
    expect(calm?.outcome).toBe(FieldReportOutcome.SUCCESS);
    const [alarmed] = await run(0.99);
    expect(alarmed?.outcome).toBe(FieldReportOutcome.REGRESSION);
  });

  it("carries Kasmina's latest contribution measurement of the seed, as a fraction, and none when it was never measured", async () => {
    let call = 0;
    const policy = new ScriptedPolicy(() => {
      call += 1;
      if (call === 1) return { kind: DecisionKind.CULL, seedId: toId('hidden1#1', 'seed') };
      if (call === 2) return { kind: DecisionKind.PAUSE };
      return { kind: DecisionKind.WAIT };
    });
    const { tamiyo, store } = await withReports(policy);
    const measured = { seedId: 'hidden1#1', stage: SeedLifecycleStage.SEED_STAGE_PROBATIONARY, contribution: -0.0067 };
    await tamiyo.evaluateEpoch(packet(10, 0, [measured]), { signal: SIGNAL });
    // The culled seed is gone from the next packet: Kasmina reset it and dropped it from its export.
    await tamiyo.evaluateEpoch(packet(20, 1), { signal: SIGNAL });
    await tamiyo.close();
    const [cull, pause] = store.reports();
    expect(cull?.notes).toBe('seed_culled');
    expect(cull?.delta?.counterfactualContribution).toBe(Math.fround(-0.0067));
    expect(pause?.delta?.counterfactualContribution).toBeUndefined();
  });
});

describe('TamiyoService close', () => {
  it('is idempotent, aborts open windows, frees the policy once and refuses later decisions', async () => {
    const policy = new ScriptedPolicy(() => ({ kind: DecisionKind.PAUSE }));
    const { tamiyo, store } = await withReports(policy);
    await tamiyo.evaluateEpoch(packet(10, 0), { signal: SIGNAL });
    expect(tamiyo.state).toBe('running');
    const first = tamiyo.close('run_completed');
    expect(tamiyo.close()).toBe(first);
    await first;
    await tamiyo[Symbol.asyncDispose]();
    expect(policy.disposed).toBe(1);
    expect(tamiyo.state).toBe('closed');
    expect(store.reports().map((r) => [r.outcome, r.notes])).toEqual([[FieldReportOutcome.ABORTED, 'aborted:run_completed']]);
    const error = await tamiyo.evaluateStep(packet(11, 0), { signal: SIGNAL }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.INVALID_STATE)).toBe(true);
  });

  it('frees the policy even when storing the aborted reports fails, and rejects with that failure', async () => {
    const policy = new ScriptedPolicy(() => ({ kind: DecisionKind.PAUSE }));
    const { tamiyo, store } = await withReports(policy);
    await tamiyo.evaluateEpoch(packet(10, 0), { signal: SIGNAL });
    await store.close();
    const error = await tamiyo.close().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error)).toBe(true);
    expect(policy.disposed).toBe(1);
  });
});
