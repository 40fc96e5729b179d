/**
 * The demonstrating policy: it returns its inner policy's proposals unchanged, builds its
 * graphs at the learner's cadence only, and labels each window with the inner policy's
 * first decision there that a sampled choice can express on the window's graph.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  choiceMaskOf,
  choiceOfDecision,
  DecisionKind,
  DemonstratingPolicy,
  PolicyAction,
  toId,
  type PolicyContext,
  type PolicyProposal,
  type ProposedDecision,
  type SampledDecision,
  type TamiyoPolicy,
} from '../../src/tamiyo/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { candidates, fullPacket, host, initGraphFixtures, newBuilder } from './fixtures/graph-inputs.js';

beforeAll(async () => {
  await initTensorBackend();
  await initGraphFixtures();
});

/** A free pair and a cullable seed of the fixture's packet (ids, as the inner policy names them). */
function fixtureChoices() {
  const graph = newBuilder().builder.build({ packet: fullPacket(), host, blueprints: candidates() });
  const mask = choiceMaskOf(graph);
  const pair = mask.pairs.indexOf(1);
  const seed = mask.seeds.indexOf(1);
  expect(pair).toBeGreaterThanOrEqual(0);
  expect(seed).toBeGreaterThanOrEqual(0);
  const siteIndex = Math.floor(pair / mask.blueprints);
  const blueprintIndex = pair % mask.blueprints;
  return {
    germinate: {
      kind: DecisionKind.GERMINATE,
      siteId: toId(graph.nodes.site.ids[siteIndex] as string, 'site'),
      blueprintId: toId(graph.nodes.blueprint.ids[blueprintIndex] as string, 'blueprint'),
      seedId: toId('new-seed', 'seed'),
    } as ProposedDecision,
    germinateChoice: { action: PolicyAction.GERMINATE, siteIndex, blueprintIndex },
    cull: { kind: DecisionKind.CULL, seedId: toId(graph.nodes.seed.ids[seed] as string, 'seed') } as ProposedDecision,
    cullChoice: { action: PolicyAction.CULL, seedIndex: seed },
  };
}

/** Proposes `byEpoch[epoch]` at epoch ends (WAIT otherwise). */
function scripted(byEpoch: Record<number, ProposedDecision>): TamiyoPolicy & { proposals: PolicyProposal[] } {
  const proposals: PolicyProposal[] = [];
  return {
    name: 'scripted',
    version: 'scripted-1',
    stepDecisions: false,
    proposals,
    propose(context: PolicyContext): PolicyProposal {
      const decision = (context.epochBoundary ? byEpoch[context.packet.currentEpoch] : undefined) ?? { kind: DecisionKind.WAIT };
      const proposal = { decision, policyVersion: 'scripted-1', actionId: 0 };
      proposals.push(proposal);
      return proposal;
    },
  };
}

describe('DemonstratingPolicy', () => {
  it("labels each window of its cadence with the inner policy's first expressible decision, and proposes what the inner policy proposes", () => {
    const c = fixtureChoices();
    const unknownBlueprint = { ...c.germinate, blueprintId: toId('BP999', 'blueprint') } as ProposedDecision;
    const inner = scripted({
      1: c.germinate, // window 0: germinate (epoch 2's cull comes second)
      2: c.cull,
      3: { kind: DecisionKind.OPTIMIZER, paramDelta: 0.5 } as ProposedDecision, // window 3: nothing expressible: WAIT
      6: unknownBlueprint, // window 6: not on the graph, then a cull
      7: c.cull,
    });
    const demonstrations: SampledDecision[] = [];
    const policy = new DemonstratingPolicy({
      inner,
      builder: newBuilder().builder,
      everyEpochs: 3,
      onDemonstration: (d) => demonstrations.push(d),
    });
    expect(policy.name).toBe('scripted');
    expect(policy.stepDecisions).toBe(false);
    const returned: PolicyProposal[] = [];
    for (let epoch = 0; epoch < 8; epoch += 1) {
      for (const epochBoundary of [false, true]) {
        returned.push(policy.propose({ packet: { ...fullPacket(), currentEpoch: epoch }, host, candidates: candidates(), epochBoundary }));
      }
    }
    expect(returned).toEqual(inner.proposals);
    expect(demonstrations.map((d) => d.epoch)).toEqual([0, 3]);
    policy.flush();
    policy.flush();
    expect(demonstrations.map((d) => [d.epoch, d.choice])).toEqual([
      [0, c.germinateChoice],
      [3, { action: PolicyAction.WAIT }],
      [6, c.cullChoice],
    ]);
    expect(demonstrations.every((d) => d.policyVersion === 'scripted-1')).toBe(true);
  });

  it('choiceOfDecision: a pair the graph does not allow, an unknown seed and a wait are not choices', () => {
    const c = fixtureChoices();
    const graph = newBuilder().builder.build({ packet: fullPacket(), host, blueprints: candidates() });
    expect(choiceOfDecision(c.germinate, graph)).toEqual(c.germinateChoice);
    expect(choiceOfDecision({ ...c.germinate, siteId: toId('nowhere', 'site') } as ProposedDecision, graph)).toBeUndefined();
    expect(choiceOfDecision({ kind: DecisionKind.CULL, seedId: toId('ghost', 'seed') } as ProposedDecision, graph)).toBeUndefined();
    expect(choiceOfDecision({ kind: DecisionKind.WAIT } as ProposedDecision, graph)).toBeUndefined();
    expect(
      () =>
        new DemonstratingPolicy({ inner: scripted({}), builder: newBuilder().builder, everyEpochs: 0, onDemonstration: () => undefined }),
    ).toThrow(/everyEpochs/);
  });
});
