/**
 * A sampling GNN policy: it decides at the first epoch end and every k-th after (never per
 * step), draws only what Kasmina would carry out — germinates among (site, blueprint) pairs
 * the graph's fits edges join at sites no seed keeps busy, culls among growing seeds —
 * reports every decision with the log-probability it was drawn with, and replays with its seed.
 */
import { clone } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { BlendMode, HostDescriptorSchema, SeedLifecycleStage, SeedSiteKind } from '../../src/leyline/index.js';
import {
  allowedActions,
  choiceLogProb,
  cullableSeeds,
  sitesWithFit,
  DecisionKind,
  choiceMaskOf,
  GnnPolicy,
  gnnConfigFor,
  GRAPH_RELATIONS,
  modeChoice,
  PolicyAction,
  sampleChoice,
  TamiyoGnn,
  type SampledDecision,
} from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import { mlpHost } from '../../src/tolaria/index.js';
import { candidates, catalog, fullPacket, host, initGraphFixtures, newBuilder, seeds } from './fixtures/graph-inputs.js';

beforeAll(async () => {
  await initTensorBackend();
  await initGraphFixtures();
});

function samplingPolicy(seed: number, everyEpochs: number, decisions: SampledDecision[], decide?: 'sample' | 'mode'): GnnPolicy {
  return new GnnPolicy({
    gnn: new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 }), seededRng(3)),
    builder: newBuilder().builder,
    version: 'sampling-test',
    sampling: { rng: seededRng(seed), everyEpochs, onDecision: (d) => decisions.push(d), ...(decide === undefined ? {} : { decide }) },
  });
}

function play(policy: GnnPolicy, epochs: number): string[] {
  const kinds: string[] = [];
  for (let epoch = 0; epoch < epochs; epoch += 1) {
    for (const epochBoundary of [false, true]) {
      const packet = { ...fullPacket(), currentEpoch: epoch };
      kinds.push(policy.propose({ packet, host, candidates: candidates(), epochBoundary }).decision.kind);
    }
  }
  return kinds;
}

describe('GnnPolicy sampling', () => {
  it('decides at epoch ends 0, k, 2k, … only, and says so (stepDecisions false)', () => {
    const decisions: SampledDecision[] = [];
    const policy = samplingPolicy(1, 3, decisions);
    expect(policy.stepDecisions).toBe(false);
    const kinds = play(policy, 8);
    expect(decisions.map((d) => d.epoch)).toEqual([0, 3, 6]);
    // Per-step calls and the other epoch ends wait without a forward pass.
    kinds.forEach((kind, i) => {
      if (![1, 7, 13].includes(i)) expect(kind).toBe(DecisionKind.WAIT);
    });
    policy.dispose();
  });

  it('germinates only fitting pairs, at the log-probability it reports, and replays with the same seed', () => {
    const first: SampledDecision[] = [];
    const again: SampledDecision[] = [];
    const a = samplingPolicy(7, 1, first);
    const b = samplingPolicy(7, 1, again);
    play(a, 40);
    play(b, 40);
    expect(again.map((d) => d.choice)).toEqual(first.map((d) => d.choice));
    const germinates = first.filter((d) => d.choice.action === PolicyAction.GERMINATE);
    expect(germinates.length).toBeGreaterThan(0);
    for (const d of germinates) {
      const fits = choiceMaskOf(d.graph);
      expect(fits.pairs[(d.choice.siteIndex as number) * fits.blueprints + (d.choice.blueprintIndex as number)]).toBe(1);
    }
    const gnn = a.gnn;
    for (const d of first.slice(0, 5))
      expect(choiceLogProb(gnn.forward(d.graph), choiceMaskOf(d.graph), d.choice)).toBeCloseTo(d.logProb, 5);
    a.dispose();
    b.dispose();
  });

  it("decide 'mode' takes each factor's most likely allowed choice, whatever the draws' seed", () => {
    const byMode: SampledDecision[][] = [[], []];
    const policies = [
      samplingPolicy(1, 1, byMode[0] as SampledDecision[], 'mode'),
      samplingPolicy(2, 1, byMode[1] as SampledDecision[], 'mode'),
    ];
    for (const policy of policies) play(policy, 6);
    const [first, second] = byMode as [SampledDecision[], SampledDecision[]];
    expect(second.map((d) => d.choice)).toEqual(first.map((d) => d.choice));
    const gnn = (policies[0] as GnnPolicy).gnn;
    for (const d of first) {
      const output = gnn.forward(d.graph);
      const mask = choiceMaskOf(d.graph);
      const mode = modeChoice(output, mask);
      expect(d.choice).toEqual(mode.choice);
      expect(d.logProb).toBeCloseTo(mode.logProb, 6);
      expect(d.logProb).toBeCloseTo(choiceLogProb(output, mask, d.choice), 6);
    }
    for (const policy of policies) policy.dispose();
  });

  it('asks for RESIDUAL at a WIDEN site and never for CHANNEL, whatever its blend head prefers', () => {
    // The test host with its WIDEN sites, and a widening blueprint (BP051) that fits only them.
    const model = mlpHost({ inputSize: 16, hidden: [32, 32], seed: 1, hostId: 'widen-host' });
    const wideHost = clone(HostDescriptorSchema, model.descriptor);
    model.dispose();
    const kindOf = new Map(wideHost.sites.map((s) => [s.siteId, s.kind]));
    expect([...kindOf.values()]).toContain(SeedSiteKind.WIDEN);
    const offered = [{ descriptor: catalog.get('BP051') }, ...candidates()];
    const policy = samplingPolicy(11, 1, []);
    const germinates: { kind: SeedSiteKind | undefined; blendMode: BlendMode | undefined; preferred: number }[] = [];
    for (let epoch = 0; epoch < 80; epoch += 1) {
      const packet = { ...fullPacket(), currentEpoch: epoch, seeds: [] };
      const proposal = policy.propose({ packet, host: wideHost, candidates: offered, epochBoundary: true });
      const { decision } = proposal;
      if (decision.kind !== DecisionKind.GERMINATE) continue;
      const logits = proposal.blendLogits ?? [];
      const preferred = logits.indexOf(Math.max(...logits));
      germinates.push({ kind: kindOf.get(decision.siteId), blendMode: proposal.blendMode, preferred });
    }
    policy.dispose();
    const atWiden = germinates.filter((g) => g.kind === SeedSiteKind.WIDEN);
    // The head's own favourite (order CONVEX, RESIDUAL, CHANNEL, CONFIDENCE) is not RESIDUAL at some of them.
    expect(atWiden.some((g) => g.preferred !== 1)).toBe(true);
    for (const g of atWiden) expect(g.blendMode).toBe(BlendMode.RESIDUAL);
    for (const g of germinates) expect(g.blendMode).not.toBe(BlendMode.CHANNEL);
  });

  it('gives a germinate no mass when no pair may be chosen, and a cull none without a growing seed', () => {
    const gnn = new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 }), seededRng(4));
    const graph = newBuilder().builder.build({ packet: fullPacket(), host, blueprints: candidates() });
    const output = gnn.forward(graph);
    const mask = choiceMaskOf(graph);
    const none = { ...mask, pairs: new Uint8Array(mask.pairs.length), seeds: new Uint8Array(mask.seeds.length) };
    expect(allowedActions(none)).toEqual([true, false, false]);
    const rng = seededRng(9);
    for (let i = 0; i < 200; i += 1) {
      expect(sampleChoice(output, none, rng).choice.action).toBe(PolicyAction.WAIT);
    }
    expect(choiceLogProb(output, none, { action: PolicyAction.CULL, seedIndex: 0 })).toBe(-Infinity);
    gnn.dispose();
  });

  it('keeps a site busy while its seed grows, is a fossil or is on its cull path; culls growing seeds only', () => {
    const S = SeedLifecycleStage;
    const builder = newBuilder().builder;
    const maskWith = (stageA: SeedLifecycleStage, stageB: SeedLifecycleStage) => {
      const [a, b] = seeds();
      const packet = {
        ...fullPacket(),
        seedStates: [
          { ...a!, stage: stageA },
          { ...b!, stage: stageB },
        ],
      };
      const graph = builder.build({ packet, host, blueprints: candidates() });
      const mask = choiceMaskOf(graph);
      const site = (id: string) => graph.nodes.site.ids.indexOf(id);
      const seed = (id: string) => graph.nodes.seed.ids.indexOf(id);
      return {
        free: ['hidden1', 'hidden2', 'hidden3'].map((id) => sitesWithFit(mask)[site(id)]),
        cullable: ['seed-a', 'seed-b'].map((id) => cullableSeeds(mask)[seed(id)]),
      };
    };
    // Both growing: their sites are busy, both may be culled; the third site is free.
    expect(maskWith(S.SEED_STAGE_BLENDING, S.SEED_STAGE_TRAINING)).toEqual({ free: [false, false, true], cullable: [true, true] });
    // A fossil keeps its site and cannot be culled; a seed back to dormant frees its site.
    expect(maskWith(S.SEED_STAGE_FOSSILIZED, S.SEED_STAGE_DORMANT)).toEqual({ free: [false, true, true], cullable: [false, false] });
    // On the cull path the site stays busy (Kasmina embargoes it until the reset).
    expect(maskWith(S.SEED_STAGE_EMBARGOED, S.SEED_STAGE_PROBATIONARY)).toEqual({ free: [false, false, true], cullable: [false, true] });
  });
});
