import { describe, expect, it } from 'vitest';
import { PolicyAction } from '../../src/tamiyo/gnn-config.js';
import { blendChoiceAmong, decodeOutput, type GnnOutput } from '../../src/tamiyo/gnn-output.js';
import { BlendMode, blendModesAt, SeedSiteKind } from '../../src/leyline/index.js';
import { decisionOfOutput } from '../../src/tamiyo/gnn-policy.js';
import type { PolicyGraph } from '../../src/tamiyo/graph-types.js';
import { BP, engine, inputs } from './fixtures/risk.js';

/** A network's germinate at site-a with blueprint BP, its risk head given by `riskLogits`. */
function germinateWithRisk(riskLogits: Float32Array) {
  const actionLogits = new Float32Array(32);
  actionLogits[PolicyAction.GERMINATE] = 4;
  const output: GnnOutput = {
    actionLogits,
    paramVector: new Float32Array(4),
    blendLogits: new Float32Array(4),
    schedule: new Float32Array(2),
    riskLogits,
    value: 0,
    breakerLogits: new Float32Array(2),
    seedScores: new Float32Array(0),
    siteScores: Float32Array.of(1),
    blueprintScores: Float32Array.of(1),
  };
  const graph = { nodes: { site: { ids: ['site-a'] }, blueprint: { ids: [BP] }, seed: { ids: [] } } } as unknown as PolicyGraph;
  return decisionOfOutput(decodeOutput(output), graph, (site) => `${site}#g1`);
}

describe("a GNN policy's risk head in Tamiyo's risk engine", () => {
  it('a head sure the risk is low lets the germinate through', () => {
    const proposal = germinateWithRisk(Float32Array.of(9, 0, 0, 0, 0));
    expect(proposal.policyRiskScore).toBeLessThan(0.01);
    const { engine: e } = engine();
    expect(e.evaluate(proposal, inputs()).decision.kind).toBe('germinate');
  });

  it('a head sure the risk is critical pauses', () => {
    const proposal = germinateWithRisk(Float32Array.of(0, 0, 0, 0, 9));
    expect(proposal.policyRiskScore).toBeGreaterThan(0.98);
    const { engine: e } = engine();
    expect(e.evaluate(proposal, inputs()).decision.kind).toBe('pause');
  });
});

describe("a GNN policy's blend head", () => {
  // Head order: CONVEX, RESIDUAL, CHANNEL, CONFIDENCE; CHANNEL most likely.
  const logits = Float32Array.of(1, 0.5, 3, 2);

  it('chooses among the modes the site accepts: RESIDUAL only at a WIDEN site', () => {
    expect(blendModesAt({ kind: SeedSiteKind.WIDEN })).toEqual([BlendMode.RESIDUAL]);
    expect(blendChoiceAmong(logits, blendModesAt({ kind: SeedSiteKind.WIDEN }))).toEqual({ blendIndex: 1, blendMode: BlendMode.RESIDUAL });
  });

  it('elsewhere takes the most likely allowed mode, and none when nothing is allowed', () => {
    expect(blendModesAt({ kind: SeedSiteKind.DENSE })).toContain(BlendMode.CHANNEL);
    expect(blendChoiceAmong(logits, [BlendMode.CONVEX, BlendMode.RESIDUAL, BlendMode.CONFIDENCE])).toEqual({
      blendIndex: 3,
      blendMode: BlendMode.CONFIDENCE,
    });
    expect(blendChoiceAmong(logits, [])).toBeUndefined();
    expect(blendChoiceAmong(Float32Array.of(Number.NaN, Number.NaN), [BlendMode.CONVEX])).toBeUndefined();
  });
});
