import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { DEFAULT_BLUEPRINTS } from '../../src/karn/index.js';
import {
  HostDescriptorSchema,
  SeedLifecycleStage,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  SeedStateSchema,
  SystemStatePacketSchema,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import type { BlueprintCandidate } from '../../src/tamiyo/candidates.js';
import { DecisionKind } from '../../src/tamiyo/decision.js';
import type { PolicyContext, PolicyProposal } from '../../src/tamiyo/policy.js';
import { ScheduledGrowthPolicy, type GrowthScheduleEntry } from '../../src/tamiyo/scheduled-policy.js';

const S = SeedLifecycleStage;

const widen = (siteId: string, block: string, depth: number) =>
  create(SeedSiteDescriptorSchema, { siteId, block, kind: SeedSiteKind.WIDEN, shape: [10], outputShape: [10], depth });

/** A 10-5-10 student with two growth slots on hidden1 and one on hidden2. */
const HOST = create(HostDescriptorSchema, {
  hostId: 'student',
  family: 'mlp',
  sites: [
    create(SeedSiteDescriptorSchema, { siteId: 'hidden1', block: 'hidden1', kind: SeedSiteKind.DENSE, shape: [5], depth: 0 }),
    widen('hidden1.widen', 'hidden1', 0),
    widen('hidden1.widen2', 'hidden1', 0),
    create(SeedSiteDescriptorSchema, { siteId: 'hidden2', block: 'hidden2', kind: SeedSiteKind.DENSE, shape: [5], depth: 1 }),
    widen('hidden2.widen', 'hidden2', 1),
  ],
});

const CANDIDATES: readonly BlueprintCandidate[] = DEFAULT_BLUEPRINTS.map((entry) => ({ descriptor: entry.descriptor }));

type Seed = readonly [id: string, site: string, stage: SeedLifecycleStage];

function packet(step: number, seeds: readonly Seed[] = []): SystemStatePacket {
  return create(SystemStatePacketSchema, {
    trainingRunId: 'run-1',
    globalStep: BigInt(step),
    seedStates: seeds.map(([seedId, siteId, stage]) => create(SeedStateSchema, { seedId, siteId, blueprintId: 'BP053', stage })),
  });
}

const context = (p: SystemStatePacket, overrides: Partial<PolicyContext> = {}): PolicyContext => ({
  packet: p,
  host: HOST,
  candidates: CANDIDATES,
  epochBoundary: false,
  ...overrides,
});

const germination = (proposal: PolicyProposal): [string, string, string] | undefined =>
  proposal.decision.kind === DecisionKind.GERMINATE
    ? [proposal.decision.seedId, proposal.decision.siteId, proposal.decision.blueprintId]
    : undefined;

const PLAN: readonly GrowthScheduleEntry[] = [
  { atStep: 400, layer: 'hidden1', blueprintId: 'BP054' },
  { atStep: 200, layer: 'hidden1', blueprintId: 'BP053' },
];

describe('ScheduledGrowthPolicy', () => {
  it('germinates each growth at its step (step calls only) at the next free slot of its layer, in step order', () => {
    const policy = new ScheduledGrowthPolicy({ schedule: PLAN });
    expect(policy.propose(context(packet(199))).decision.kind).toBe(DecisionKind.WAIT);
    expect(policy.propose(context(packet(200), { epochBoundary: true })).decision.kind).toBe(DecisionKind.WAIT);
    expect(germination(policy.propose(context(packet(200))))).toEqual(['hidden1.widen#1', 'hidden1.widen', 'BP053']);
    const first: Seed = ['hidden1.widen#1', 'hidden1.widen', S.SEED_STAGE_TRAINING];
    expect(policy.propose(context(packet(201, [first]))).notes).toBe('next growth at step 400');
    const fossil: Seed = ['hidden1.widen#1', 'hidden1.widen', S.SEED_STAGE_FOSSILIZED];
    expect(germination(policy.propose(context(packet(400, [fossil]))))).toEqual(['hidden1.widen2#2', 'hidden1.widen2', 'BP054']);
    const second: Seed = ['hidden1.widen2#2', 'hidden1.widen2', S.SEED_STAGE_TRAINING];
    expect(policy.propose(context(packet(401, [fossil, second]))).notes).toBe('schedule complete');
    expect(policy.snapshot().entries.map((e) => [e.atStep, e.status, e.attempts, e.seedId, e.proposedAtStep])).toEqual([
      [200, 'grown', 1, 'hidden1.widen#1', 200],
      [400, 'grown', 1, 'hidden1.widen2#2', 400],
    ]);
  });

  it('proposes again, with a fresh seed id, a growth whose seed never showed up, and gives it up after maxAttempts', () => {
    const policy = new ScheduledGrowthPolicy({ schedule: [{ atStep: 10, layer: 'hidden1', blueprintId: 'BP053' }], maxAttempts: 2 });
    expect(germination(policy.propose(context(packet(10))))).toEqual(['hidden1.widen#1', 'hidden1.widen', 'BP053']);
    expect(germination(policy.propose(context(packet(11))))).toEqual(['hidden1.widen#2', 'hidden1.widen', 'BP053']);
    expect(policy.propose(context(packet(12))).notes).toBe('growth at step 10 given up after 2 attempts');
    expect(policy.propose(context(packet(13))).notes).toBe('schedule complete');
    expect(policy.snapshot().entries[0]).toMatchObject({ status: 'given_up', attempts: 2 });
  });

  it('waits while every slot of the layer is held (a culled seed holds its slot until reset) or the blueprint is not offered', () => {
    const policy = new ScheduledGrowthPolicy({ schedule: [{ atStep: 0, layer: 'hidden1', blueprintId: 'BP053' }] });
    const held: Seed[] = [
      ['a', 'hidden1.widen', S.SEED_STAGE_FOSSILIZED],
      ['b', 'hidden1.widen2', S.SEED_STAGE_EMBARGOED],
    ];
    expect(policy.propose(context(packet(5, held))).notes).toBe('no free growth slot of hidden1 fits BP053');
    const offered = CANDIDATES.filter((c) => c.descriptor.blueprintId !== 'BP053');
    expect(policy.propose(context(packet(6), { candidates: offered })).notes).toBe('blueprint BP053 is not offered');
    const quarantined = CANDIDATES.map((c) => (c.descriptor.blueprintId === 'BP053' ? { ...c, quarantined: true } : c));
    expect(policy.propose(context(packet(6), { candidates: quarantined })).decision.kind).toBe(DecisionKind.WAIT);
    const freed: Seed = ['b', 'hidden1.widen2', S.SEED_STAGE_DORMANT];
    expect(germination(policy.propose(context(packet(7, [held[0]!, freed]))))).toEqual(['hidden1.widen2#1', 'hidden1.widen2', 'BP053']);
  });

  it('refuses a malformed schedule, naming the field', () => {
    const refusal = (schedule: unknown): unknown => {
      try {
        new ScheduledGrowthPolicy({ schedule: schedule as GrowthScheduleEntry[] });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const [schedule, field] of [
      [[{ atStep: -1, layer: 'hidden1', blueprintId: 'BP053' }], 'schedule[0].atStep'],
      [[{ atStep: 1, layer: ' ', blueprintId: 'BP053' }], 'schedule[0].layer'],
      [undefined, 'schedule'],
    ] as const) {
      const error = refusal(schedule);
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT), field).toBe(true);
      expect((error as { details: Record<string, unknown> }).details['field'], field).toBe(field);
    }
  });
});
