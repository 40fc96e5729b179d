import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BLUEPRINTS } from '../../src/karn/index.js';
import {
  HostDescriptorSchema,
  SeedLifecycleStage,
  SeedMetricsSchema,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  SeedStateSchema,
  SiteSignalSchema,
  SystemStatePacketSchema,
  type SeedSiteDescriptor,
  TrainingMetricsSchema,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { PolicyAction } from '../../src/tamiyo/gnn-config.js';
import type { BlueprintCandidate } from '../../src/tamiyo/candidates.js';
import { HEURISTIC_POLICY_DEFAULTS, type HeuristicPolicyOptions } from '../../src/tamiyo/heuristic-options.js';
import { HeuristicPolicy } from '../../src/tamiyo/heuristic-policy.js';
import type { PolicyContext, PolicyProposal } from '../../src/tamiyo/policy.js';
import { DecisionKind } from '../../src/tamiyo/decision.js';
import { convWidenSite } from '../support/conv-widen-site.js';

const S = SeedLifecycleStage;

const HOST = create(HostDescriptorSchema, {
  hostId: 'host-1',
  family: 'cnn',
  sites: [
    create(SeedSiteDescriptorSchema, { siteId: 's0', block: 'b0', kind: SeedSiteKind.DENSE, shape: [16], depth: 0 }),
    create(SeedSiteDescriptorSchema, { siteId: 's1', block: 'b1', kind: SeedSiteKind.DENSE, shape: [16], depth: 1 }),
    create(SeedSiteDescriptorSchema, { siteId: 's2', block: 'b2', kind: SeedSiteKind.CONV, shape: [4, 4, 8], depth: 2 }),
  ],
});

const CANDIDATES: readonly BlueprintCandidate[] = DEFAULT_BLUEPRINTS.map((entry) => ({ descriptor: entry.descriptor }));

interface SeedInit {
  readonly id: string;
  readonly site: string;
  readonly bp: string;
  readonly stage: SeedLifecycleStage;
  readonly contribution?: number;
}

function packet(epoch: number, accuracy: number, seeds: readonly SeedInit[] = []): SystemStatePacket {
  return create(SystemStatePacketSchema, {
    trainingRunId: 'run-1',
    packetId: `run-1-epoch-${epoch}`,
    currentEpoch: epoch,
    validationAccuracy: accuracy,
    seedStates: seeds.map((s) =>
      create(SeedStateSchema, {
        seedId: s.id,
        siteId: s.site,
        blueprintId: s.bp,
        stage: s.stage,
        metrics: create(SeedMetricsSchema, s.contribution === undefined ? {} : { counterfactualContribution: s.contribution }),
      }),
    ),
  });
}

function context(p: SystemStatePacket, epochBoundary = true, candidates = CANDIDATES): PolicyContext {
  return { packet: p, host: HOST, candidates, epochBoundary };
}

/** Feeds `accuracies` as epochs `first..`, with `seeds` in every packet; returns the proposals. */
function run(policy: HeuristicPolicy, accuracies: readonly number[], seeds: readonly SeedInit[] = [], first = 0): PolicyProposal[] {
  return accuracies.map((acc, i) => policy.propose(context(packet(first + i, acc, seeds))));
}

/** Five flat epochs: stabilised, plateaued, and 5 epochs complete at epoch 4. */
const FLAT5 = [0.5, 0.5, 0.5, 0.5, 0.5];

describe('HeuristicPolicy', () => {
  it('proposes WAIT on per-step calls and leaves its state unchanged', () => {
    const policy = new HeuristicPolicy();
    run(policy, FLAT5.slice(0, 3));
    const before = policy.snapshot();
    const proposal = policy.propose(context(packet(10, 0.9), false));
    expect(proposal.decision).toEqual({ kind: DecisionKind.WAIT });
    expect(proposal.actionId).toBe(PolicyAction.WAIT);
    expect(proposal.policyVersion).toBe(HEURISTIC_POLICY_DEFAULTS.version);
    expect(policy.snapshot()).toEqual(before);
  });

  it('waits while accuracy improves, latches stabilisation and germinates after three plateau epochs', () => {
    const policy = new HeuristicPolicy();
    const proposals = run(policy, [0.3, 0.4, 0.5, 0.6, 0.61, 0.615]);
    expect(proposals.map((p) => p.decision.kind)).toEqual(Array(6).fill(DecisionKind.WAIT));
    expect(policy.snapshot()).toMatchObject({ plateauEpochs: 2, stabilized: false });

    const germinate = policy.propose(context(packet(6, 0.62)));
    // Deepest free site is s2 (CONV); the default rotation starts with the first SAFE family (BP001).
    expect(germinate.decision).toEqual({ kind: DecisionKind.GERMINATE, seedId: 's2#1', siteId: 's2', blueprintId: 'BP001' });
    expect(germinate.actionId).toBe(PolicyAction.GERMINATE);
    const snap = policy.snapshot();
    expect(snap).toMatchObject({ stabilized: true, plateauEpochs: 0, rotationIndex: 1, germinations: 1, lastEpoch: 6 });
    expect(snap.seeds).toEqual([
      expect.objectContaining({ seedId: 's2#1', siteId: 's2', blueprintId: 'BP001', pending: true, germinatedEpoch: 6 }),
    ]);
  });

  it('keeps the stabilisation latch once set, even after accuracy jumps', () => {
    const policy = new HeuristicPolicy();
    run(policy, [0.5, 0.5, 0.5, 0.5]);
    run(policy, [0.9], [], 4);
    expect(policy.snapshot()).toMatchObject({ stabilized: true, plateauEpochs: 0 });
  });

  it('does not germinate before minEpochs epochs are complete', () => {
    const policy = new HeuristicPolicy();
    const proposals = run(policy, FLAT5);
    expect(proposals.slice(0, 4).map((p) => p.decision.kind)).toEqual(Array(4).fill(DecisionKind.WAIT));
    expect(proposals[3]?.notes).toBe('4/5 epochs complete');
    expect(proposals[4]?.decision.kind).toBe(DecisionKind.GERMINATE);
  });

  it('picks the rotation blueprint that fits the site and advances the rotation', () => {
    // BP004 (bottleneck_mlp) fits only DENSE sites; the deepest site s2 is CONV.
    const policy = new HeuristicPolicy({ rotation: ['BP004', 'BP005', 'BP013'] });
    const first = run(policy, FLAT5)[4];
    expect(first?.decision).toMatchObject({ kind: DecisionKind.GERMINATE, siteId: 's2', blueprintId: 'BP005' });
    expect(policy.snapshot().rotationIndex).toBe(2);

    // The seed fossilizes: s2 stays busy, growth moves to s1 with the next fitting blueprint.
    const fossil: SeedInit = { id: 's2#1', site: 's2', bp: 'BP005', stage: S.SEED_STAGE_FOSSILIZED };
    const next = run(policy, [0.5, 0.5, 0.5], [fossil], 5);
    expect(next.slice(0, 2).map((p) => p.decision.kind)).toEqual([DecisionKind.WAIT, DecisionKind.WAIT]);
    // BP013 (conv3x3) does not fit the DENSE site s1, so the rotation wraps to BP004.
    expect(next[2]?.decision).toEqual({ kind: DecisionKind.GERMINATE, seedId: 's1#2', siteId: 's1', blueprintId: 'BP004' });
    expect(policy.snapshot().rotationIndex).toBe(1);
  });

  it('skips blueprints that are not offered or quarantined', () => {
    const candidates = CANDIDATES.filter((c) => c.descriptor.blueprintId !== 'BP001').map((c) =>
      c.descriptor.blueprintId === 'BP002' ? { ...c, quarantined: true } : c,
    );
    const policy = new HeuristicPolicy();
    let proposal: PolicyProposal | undefined;
    FLAT5.forEach((acc, epoch) => {
      proposal = policy.propose(context(packet(epoch, acc), true, candidates));
    });
    expect(proposal?.decision).toMatchObject({ kind: DecisionKind.GERMINATE, siteId: 's2', blueprintId: 'BP003' });
  });

  it('does not germinate while a seed is live (sequential growth)', () => {
    const policy = new HeuristicPolicy({ pruneAfterEpochs: 100 });
    const live: SeedInit = { id: 'op-1', site: 's0', bp: 'BP002', stage: S.SEED_STAGE_TRAINING };
    const proposals = run(policy, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [live]);
    expect(proposals.every((p) => p.decision.kind === DecisionKind.WAIT)).toBe(true);
    expect(proposals[6]?.notes).toBe('1 live seed(s), at most 1');
  });

  it('does not germinate when every site is busy or embargoed', () => {
    const policy = new HeuristicPolicy({ maxSeeds: 3, pruneAfterEpochs: 100 });
    const fossil: SeedInit = { id: 'c', site: 's2', bp: 'BP005', stage: S.SEED_STAGE_FOSSILIZED };
    const at = (stage0: SeedLifecycleStage, stage1: SeedLifecycleStage): SeedInit[] => [
      { id: 'a', site: 's0', bp: 'BP002', stage: stage0 },
      { id: 'b', site: 's1', bp: 'BP003', stage: stage1 },
      fossil,
    ];
    run(policy, [0.5, 0.5, 0.5], at(S.SEED_STAGE_TRAINING, S.SEED_STAGE_TRAINING));
    // Kasmina culls both live seeds at epoch 3: their sites are EMBARGOED / RESETTING.
    const culled = run(policy, [0.5, 0.5], at(S.SEED_STAGE_EMBARGOED, S.SEED_STAGE_RESETTING), 3);
    expect(culled.map((p) => p.decision.kind)).toEqual([DecisionKind.WAIT, DecisionKind.WAIT]);
    expect(culled[1]?.notes).toBe('no free site');
    expect(policy.snapshot().siteEmbargoes).toEqual([
      { siteId: 's0', untilEpoch: 8 },
      { siteId: 's1', untilEpoch: 8 },
    ]);

    // Reset to DORMANT by Kasmina, but the heuristic's own 5-epoch embargo still holds.
    const dormant = at(S.SEED_STAGE_DORMANT, S.SEED_STAGE_DORMANT);
    const embargoed = run(policy, [0.5, 0.5, 0.5], dormant, 5);
    expect(embargoed.every((p) => p.notes === 'no free site')).toBe(true);
    const after = run(policy, [0.5], dormant, 8);
    expect(after[0]?.decision).toMatchObject({ kind: DecisionKind.GERMINATE, siteId: 's1' });
  });

  it('culls a seed whose accuracy drops 2 points below its germination value, once it is old enough', () => {
    const policy = new HeuristicPolicy();
    const germinate = run(policy, FLAT5)[4];
    expect(germinate?.decision).toMatchObject({ kind: DecisionKind.GERMINATE, seedId: 's2#1', blueprintId: 'BP001' });
    const seed = (stage: SeedLifecycleStage): SeedInit => ({ id: 's2#1', site: 's2', bp: 'BP001', stage });

    // Age 1: too young for the accuracy rules, even with a large drop.
    expect(policy.propose(context(packet(5, 0.45, [seed(S.SEED_STAGE_TRAINING)]))).decision.kind).toBe(DecisionKind.WAIT);
    // Age 2, 0.5 → 0.48: a 2-point drop.
    const cull = policy.propose(context(packet(6, 0.48, [seed(S.SEED_STAGE_BLENDING)])));
    expect(cull.decision).toEqual({ kind: DecisionKind.CULL, seedId: 's2#1', siteId: 's2', blueprintId: 'BP001' });
    expect(cull.actionId).toBe(PolicyAction.CULL);
    expect(cull.notes).toBe('cull s2#1 (accuracy_drop)');
    expect(policy.penaltyOf('BP001')).toBe(2);
    expect(policy.snapshot().siteEmbargoes).toEqual([{ siteId: 's2', untilEpoch: 11 }]);

    // Kasmina culls it; the penalty is charged once, and s2 stays closed for 5 epochs.
    const next = policy.propose(context(packet(7, 0.5, [seed(S.SEED_STAGE_EMBARGOED)])));
    expect(policy.penaltyOf('BP001')).toBe(1);
    expect(next.decision.kind).toBe(DecisionKind.WAIT);
  });

  it('does not cull a seed whose accuracy dropped less than the threshold', () => {
    const policy = new HeuristicPolicy();
    run(policy, FLAT5);
    const seed: SeedInit = { id: 's2#1', site: 's2', bp: 'BP001', stage: S.SEED_STAGE_TRAINING };
    const proposals = run(policy, [0.49, 0.485], [seed], 5);
    expect(proposals.map((p) => p.decision.kind)).toEqual([DecisionKind.WAIT, DecisionKind.WAIT]);
  });

  it('culls a seed after five epochs without beating its best accuracy', () => {
    const policy = new HeuristicPolicy();
    run(policy, FLAT5);
    const seed: SeedInit = { id: 's2#1', site: 's2', bp: 'BP001', stage: S.SEED_STAGE_TRAINING };
    // Improves at epoch 5, then flat for epochs 6..10.
    const proposals = run(policy, [0.51, 0.51, 0.505, 0.51, 0.51, 0.51], [seed], 5);
    expect(proposals.slice(0, 5).map((p) => p.decision.kind)).toEqual(Array(5).fill(DecisionKind.WAIT));
    expect(proposals[5]?.decision).toMatchObject({ kind: DecisionKind.CULL, seedId: 's2#1' });
    expect(proposals[5]?.notes).toBe('cull s2#1 (no_improvement)');
  });

  it('culls a PROBATIONARY seed with a negative counterfactual contribution and records contributions', () => {
    const policy = new HeuristicPolicy();
    run(policy, FLAT5);
    const seed = (contribution: number): SeedInit => ({
      id: 's2#1',
      site: 's2',
      bp: 'BP001',
      stage: S.SEED_STAGE_PROBATIONARY,
      contribution,
    });
    const keep = policy.propose(context(packet(5, 0.6, [seed(0.004)])));
    expect(keep.decision.kind).toBe(DecisionKind.WAIT);
    expect(policy.snapshot().seeds[0]).toMatchObject({ seedId: 's2#1', contribution: expect.closeTo(0.004, 6) });

    const cull = policy.propose(context(packet(6, 0.6, [seed(-0.01)])));
    expect(cull.decision).toMatchObject({ kind: DecisionKind.CULL, seedId: 's2#1' });
    expect(cull.notes).toBe('cull s2#1 (negative_counterfactual)');
  });

  it('never proposes to fossilize', () => {
    const policy = new HeuristicPolicy();
    run(policy, FLAT5);
    const seed: SeedInit = { id: 's2#1', site: 's2', bp: 'BP001', stage: S.SEED_STAGE_PROBATIONARY, contribution: 0.05 };
    const proposals = run(policy, [0.6, 0.61, 0.62], [seed], 5);
    expect(proposals.every((p) => p.decision.kind === DecisionKind.WAIT)).toBe(true);
  });

  it('adds 2.0 per culled seed, decays penalties ×0.5 per epoch and skips blueprints above 3.0', () => {
    const policy = new HeuristicPolicy({ maxSeeds: 2, rotation: ['BP005', 'BP003'] });
    // Two BP005 seeds grown elsewhere are culled by Kasmina in the same epoch: penalty 4.0.
    const culled: SeedInit[] = [
      { id: 'x1', site: 's0', bp: 'BP005', stage: S.SEED_STAGE_TRAINING },
      { id: 'x2', site: 's1', bp: 'BP005', stage: S.SEED_STAGE_TRAINING },
    ];
    run(policy, [0.5, 0.5, 0.5, 0.5], culled);
    const gone = culled.map((s) => ({ ...s, stage: S.SEED_STAGE_EMBARGOED }));
    const proposal = policy.propose(context(packet(4, 0.5, gone)));
    expect(policy.penaltyOf('BP005')).toBe(4);
    // BP005 is skipped at s2; BP003 is next.
    expect(proposal.decision).toMatchObject({ kind: DecisionKind.GERMINATE, siteId: 's2', blueprintId: 'BP003' });
    expect(policy.snapshot().penalties).toEqual([{ blueprintId: 'BP005', penalty: 4 }]);

    policy.propose(context(packet(5, 0.5, gone)));
    expect(policy.penaltyOf('BP005')).toBe(2);
    policy.propose(context(packet(8, 0.5, gone)));
    expect(policy.penaltyOf('BP005')).toBe(0.25);
    policy.propose(context(packet(13, 0.5, gone)));
    // 0.25 / 32 is below the floor and forgotten.
    expect(policy.snapshot().penalties).toEqual([]);
  });

  it('charges a seed that went from live to DORMANT between packets as culled', () => {
    const policy = new HeuristicPolicy();
    run(policy, [0.5], [{ id: 'k', site: 's0', bp: 'BP002', stage: S.SEED_STAGE_TRAINING }]);
    run(policy, [0.5], [{ id: 'k', site: 's0', bp: 'BP002', stage: S.SEED_STAGE_DORMANT }], 1);
    expect(policy.penaltyOf('BP002')).toBe(2);
    expect(policy.snapshot().seeds).toEqual([]);
  });

  it('forgets a germination whose seed never shows up and may germinate again', () => {
    const policy = new HeuristicPolicy({ plateauEpochsToGerminate: 1 });
    const first = run(policy, FLAT5)[4];
    expect(first?.decision).toMatchObject({ seedId: 's2#1', siteId: 's2' });
    const again = policy.propose(context(packet(5, 0.5)));
    expect(policy.snapshot().unconfirmedGerminations).toBe(1);
    expect(again.decision).toMatchObject({ kind: DecisionKind.GERMINATE, seedId: 's2#2', siteId: 's2' });
  });

  it('never reuses a seed id already present in the packet', () => {
    const policy = new HeuristicPolicy();
    const stale: SeedInit[] = [
      { id: 's2#1', site: 's2', bp: 'BP001', stage: S.SEED_STAGE_DORMANT },
      { id: 's2#2', site: 's2', bp: 'BP001', stage: S.SEED_STAGE_DORMANT },
    ];
    const proposal = run(policy, FLAT5, stale)[4];
    expect(proposal?.decision).toMatchObject({ kind: DecisionKind.GERMINATE, seedId: 's2#3' });
  });

  it('ignores a repeated or rewound epoch', () => {
    const policy = new HeuristicPolicy();
    run(policy, [0.5, 0.5, 0.5]);
    const before = policy.snapshot();
    const repeat = policy.propose(context(packet(2, 0.5)));
    const rewound = policy.propose(context(packet(1, 0.5)));
    expect([repeat.decision.kind, rewound.decision.kind]).toEqual([DecisionKind.WAIT, DecisionKind.WAIT]);
    expect(repeat.notes).toBe('epoch 2 is not after the last evaluated epoch 2');
    expect(policy.snapshot()).toEqual(before);
  });

  /** A tiny Kasmina stand-in: carries out proposals between epoch packets. */
  function simulate(accuracies: readonly number[], fossilizeAt: ReadonlySet<number>, options: HeuristicPolicyOptions) {
    const policy = new HeuristicPolicy(options);
    const seeds = new Map<string, SeedInit>();
    const proposals: PolicyProposal[] = [];
    const violations: string[] = [];
    accuracies.forEach((acc, epoch) => {
      const p = packet(epoch, acc, [...seeds.values()]);
      const proposal = policy.propose(context(p));
      proposals.push(proposal);
      const d = proposal.decision;
      // Lifecycle moves of the stand-in, before the next packet.
      for (const [id, s] of seeds) {
        if (s.stage === S.SEED_STAGE_GERMINATED) seeds.set(id, { ...s, stage: S.SEED_STAGE_TRAINING });
        else if (s.stage === S.SEED_STAGE_TRAINING && fossilizeAt.has(epoch)) seeds.set(id, { ...s, stage: S.SEED_STAGE_FOSSILIZED });
        else if (s.stage === S.SEED_STAGE_EMBARGOED) seeds.set(id, { ...s, stage: S.SEED_STAGE_DORMANT });
      }
      if (d.kind === DecisionKind.GERMINATE) {
        const live = p.seedStates.filter((s) => s.stage >= S.SEED_STAGE_GERMINATED && s.stage <= S.SEED_STAGE_PROBATIONARY).length;
        if (live >= (options.maxSeeds ?? 1)) violations.push(`epoch ${epoch}: germinated with ${live} live`);
        const busy = p.seedStates.some((s) => s.siteId === d.siteId && s.stage !== S.SEED_STAGE_DORMANT);
        if (busy) violations.push(`epoch ${epoch}: germinated at busy site ${d.siteId}`);
        seeds.set(d.seedId as string, {
          id: d.seedId as string,
          site: d.siteId as string,
          bp: d.blueprintId as string,
          stage: S.SEED_STAGE_GERMINATED,
        });
      } else if (d.kind === DecisionKind.CULL) {
        const s = seeds.get(d.seedId as string);
        if (s !== undefined) seeds.set(s.id, { ...s, stage: S.SEED_STAGE_EMBARGOED });
      }
    });
    return { proposals, snapshot: policy.snapshot(), violations };
  }

  it('grows, culls and regrows over a scripted run with the stand-in executor', () => {
    const accuracies = [0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47];
    const { proposals, violations } = simulate(accuracies, new Set(), {});
    expect(violations).toEqual([]);
    const acted = proposals.flatMap((p, epoch) =>
      p.decision.kind === DecisionKind.WAIT ? [] : [[epoch, p.decision.kind, p.decision.seedId]],
    );
    expect(acted).toEqual([
      [5, DecisionKind.GERMINATE, 's2#1'], // stabilised after 3 plateau epochs, 6 epochs complete
      [7, DecisionKind.CULL, 's2#1'], // 3-point drop at age 2
      [8, DecisionKind.GERMINATE, 's1#2'], // s2 embargoed until 12
      [13, DecisionKind.CULL, 's1#2'], // 5 epochs without improvement
      [14, DecisionKind.GERMINATE, 's2#3'], // s2 open again, s1 embargoed
    ]);
  });

  it('is deterministic, keeps seed ids unique and never over-grows (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: Math.fround(0.05), max: Math.fround(0.95), noNaN: true }), { minLength: 5, maxLength: 40 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 3 }),
        (accuracies, fossilizeAt, maxSeeds) => {
          const options = { maxSeeds, minEpochs: 2, plateauEpochsToGerminate: 1, stabilizationEpochs: 1 };
          const a = simulate(accuracies, new Set(fossilizeAt), options);
          const b = simulate(accuracies, new Set(fossilizeAt), options);
          expect(b.proposals).toEqual(a.proposals);
          expect(b.snapshot).toEqual(a.snapshot);
          expect(a.violations).toEqual([]);
          const ids = a.proposals.filter((p) => p.decision.kind === DecisionKind.GERMINATE).map((p) => p.decision.seedId);
          expect(new Set(ids).size).toBe(ids.length);
          for (const id of ids) expect(id).toMatch(/^s[012]#\d+$/);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('HeuristicPolicy capacity growth', () => {
  const WIDE_HOST = create(HostDescriptorSchema, {
    hostId: 'narrow',
    family: 'mlp',
    sites: [
      create(SeedSiteDescriptorSchema, { siteId: 'hidden1', block: 'hidden1', kind: SeedSiteKind.DENSE, shape: [8], depth: 0 }),
      create(SeedSiteDescriptorSchema, {
        siteId: 'hidden1.widen',
        block: 'hidden1',
        kind: SeedSiteKind.WIDEN,
        shape: [784],
        outputShape: [10],
        depth: 0,
      }),
    ],
  });
  const WIDEN_IDS = CANDIDATES.filter((c) => c.descriptor.family === 'widen').map((c) => c.descriptor.blueprintId);

  function epochPacket(epoch: number, trainingLoss: number, validationLoss: number, seeds: readonly SeedInit[] = []): SystemStatePacket {
    const p = packet(epoch, 0.8, seeds);
    p.trainingLoss = trainingLoss;
    p.validationLoss = validationLoss;
    return p;
  }
  const propose = (policy: HeuristicPolicy, p: SystemStatePacket): PolicyProposal =>
    policy.propose({ packet: p, host: WIDE_HOST, candidates: CANDIDATES, epochBoundary: true });

  it('widens a hidden layer after the first epoch when the host does not overfit, without waiting for a plateau', () => {
    expect(WIDEN_IDS.length).toBeGreaterThan(0);
    const proposal = propose(new HeuristicPolicy(), epochPacket(0, 0.62, 0.55));
    expect(proposal.decision).toMatchObject({ kind: DecisionKind.GERMINATE, siteId: 'hidden1.widen', seedId: 'hidden1.widen#1' });
    expect(WIDEN_IDS).toContain((proposal.decision as { blueprintId: string }).blueprintId);
    expect(proposal.notes).toMatch(/for capacity: validation loss 0\.5500 vs training 0\.6200/);
  });

  it('waits while the validation loss runs ahead of the training loss (overfitting: data, not capacity, limits)', () => {
    const proposal = propose(new HeuristicPolicy(), epochPacket(0, 0.3, 0.4));
    expect(proposal.decision.kind).toBe(DecisionKind.WAIT);
  });

  it('honours capacityGrowth, capacityMinEpochs, maxSeeds and a busy site', () => {
    expect(propose(new HeuristicPolicy({ capacityGrowth: false }), epochPacket(0, 0.6, 0.5)).decision.kind).toBe(DecisionKind.WAIT);
    const later = new HeuristicPolicy({ capacityMinEpochs: 3 });
    expect(propose(later, epochPacket(0, 0.6, 0.5)).decision.kind).toBe(DecisionKind.WAIT);
    expect(propose(later, epochPacket(1, 0.6, 0.5)).decision.kind).toBe(DecisionKind.WAIT);
    expect(propose(later, epochPacket(2, 0.6, 0.5)).decision).toMatchObject({ kind: DecisionKind.GERMINATE, siteId: 'hidden1.widen' });
    const fossil: SeedInit = { id: 'hidden1.widen#1', site: 'hidden1.widen', bp: WIDEN_IDS[0] as string, stage: S.SEED_STAGE_FOSSILIZED };
    expect(propose(new HeuristicPolicy(), epochPacket(3, 0.6, 0.5, [fossil])).decision.kind).toBe(DecisionKind.WAIT);
  });

  it("widens a CNN's last conv block by new channels (BP056, the only blueprint that fits a conv WIDEN site), then the one before it", () => {
    const at = (site: SeedSiteDescriptor, block: string, depth: number) => create(SeedSiteDescriptorSchema, { ...site, block, depth });
    const cnn = create(HostDescriptorSchema, {
      hostId: 'cnn-small',
      family: 'cnn',
      sites: [
        at(convWidenSite([28, 28, 1], [14, 14, 8], 'block1.widen'), 'conv1', 0),
        create(SeedSiteDescriptorSchema, { siteId: 'block1', block: 'pool1', kind: SeedSiteKind.CONV, shape: [14, 14, 4], depth: 1 }),
        at(convWidenSite([14, 14, 4], [10], 'block2.widen'), 'conv2', 2),
        create(SeedSiteDescriptorSchema, { siteId: 'block2', block: 'pool2', kind: SeedSiteKind.CONV, shape: [7, 7, 8], depth: 3 }),
      ],
    });
    const grow = (p: SystemStatePacket) =>
      new HeuristicPolicy().propose({ packet: p, host: cnn, candidates: CANDIDATES, epochBoundary: true });
    expect(grow(epochPacket(0, 0.5, 0.45)).decision).toMatchObject({
      kind: DecisionKind.GERMINATE,
      siteId: 'block2.widen',
      blueprintId: 'BP056',
    });
    const fossil: SeedInit = { id: 'block2.widen#1', site: 'block2.widen', bp: 'BP056', stage: S.SEED_STAGE_FOSSILIZED };
    expect(grow(epochPacket(1, 0.5, 0.45, [fossil])).decision).toMatchObject({
      kind: DecisionKind.GERMINATE,
      siteId: 'block1.widen',
      blueprintId: 'BP056',
    });
  });

  const TWO_LAYERS = create(HostDescriptorSchema, {
    hostId: 'two-layers',
    family: 'mlp',
    sites: [
      create(SeedSiteDescriptorSchema, {
        siteId: 'hidden1.widen',
        block: 'hidden1',
        kind: SeedSiteKind.WIDEN,
        shape: [784],
        outputShape: [8],
        depth: 0,
      }),
      create(SeedSiteDescriptorSchema, {
        siteId: 'hidden2.widen',
        block: 'hidden2',
        kind: SeedSiteKind.WIDEN,
        shape: [8],
        outputShape: [10],
        depth: 1,
      }),
    ],
  });
  const signalled = (p: SystemStatePacket, signals: Record<string, number>): SystemStatePacket => {
    p.siteSignals = Object.entries(signals).map(([siteId, widenGradientNorm]) => create(SiteSignalSchema, { siteId, widenGradientNorm }));
    return p;
  };
  const proposeOn = (p: SystemStatePacket): PolicyProposal =>
    new HeuristicPolicy().propose({ packet: p, host: TWO_LAYERS, candidates: CANDIDATES, epochBoundary: true });

  it('widens where the growth signal is largest; without one (or a non-finite one), the deepest WIDEN site', () => {
    const where = (signals: Record<string, number>) =>
      (proposeOn(signalled(epochPacket(0, 0.6, 0.5), signals)).decision as { siteId?: string }).siteId;
    expect(where({})).toBe('hidden2.widen');
    expect(where({ 'hidden1.widen': 0.9, 'hidden2.widen': 0.2 })).toBe('hidden1.widen');
    expect(where({ 'hidden1.widen': 0.1, 'hidden2.widen': 0.2 })).toBe('hidden2.widen');
    expect(where({ 'hidden1.widen': 0.5 })).toBe('hidden1.widen');
    expect(where({ 'hidden1.widen': Number.NaN, 'hidden2.widen': 0.2 })).toBe('hidden2.widen');
    expect(where({ 'hidden1.widen': Number.POSITIVE_INFINITY, 'hidden2.widen': 0.2 })).toBe('hidden2.widen');
    expect(where({ 'hidden1.widen': 3, 'nowhere.widen': 99 })).toBe('hidden1.widen');
    const notes = proposeOn(signalled(epochPacket(0, 0.6, 0.5), { 'hidden1.widen': 0.9 })).notes;
    expect(notes).toMatch(/widen gradient 9\.00e-1/);
  });

  it('does not germinate with fewer than minEpochsLeft epochs left (epochs_planned); an open-ended run always may', () => {
    const planned = (epoch: number, epochsPlanned: number): SystemStatePacket => {
      const p = epochPacket(epoch, 0.6, 0.5);
      p.metrics = create(TrainingMetricsSchema, { epochsPlanned });
      return p;
    };
    const last = propose(new HeuristicPolicy(), planned(3, 4));
    expect(last.decision.kind).toBe(DecisionKind.WAIT);
    expect(last.notes).toBe('0 epoch(s) left, a seed needs 1');
    expect(propose(new HeuristicPolicy(), planned(2, 4)).decision.kind).toBe(DecisionKind.GERMINATE);
    expect(propose(new HeuristicPolicy({ minEpochsLeft: 2 }), planned(2, 4)).decision.kind).toBe(DecisionKind.WAIT);
    expect(propose(new HeuristicPolicy(), planned(9, 0)).decision.kind).toBe(DecisionKind.GERMINATE);
    expect(() => new HeuristicPolicy({ minEpochsLeft: -1 })).toThrow(/minEpochsLeft/);
  });

  it('refuses a non-boolean capacityGrowth naming the field', () => {
    expect(() => new HeuristicPolicy({ capacityGrowth: 'yes' as never })).toThrow(/capacityGrowth/);
  });
});
