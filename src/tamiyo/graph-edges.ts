/** The edges of the policy graph, per relation (reference §5.8 plus the site relations). */
import type { SeedSiteDescriptor, SystemStatePacket } from '../leyline/index.js';
import type { CoverageRecorder } from './coverage.js';
import { blendAllowed, chain, clamp01, fin, occupies, stageNorm } from './graph-features.js';
import type { CandidatePlan, OwnerGroup } from './graph-plan.js';
import { RELATION_INDEX, type RelationKey } from './graph-relations.js';
import { EDGE_ATTR_DIM, type EdgeSet, type RelationSpec } from './graph-types.js';

/** Growable per-relation edge buffer, reused across builds. */
export class EdgeBuffer {
  #src = new Int32Array(32);
  #dst = new Int32Array(32);
  #attrs = new Float32Array(32 * EDGE_ATTR_DIM);
  length = 0;

  reset(): void {
    this.length = 0;
  }

  push(src: number, dst: number, a0: number, a1: number, a2: number): void {
    if (this.length === this.#src.length) this.#grow();
    const n = this.length;
    this.#src[n] = src;
    this.#dst[n] = dst;
    const o = n * EDGE_ATTR_DIM;
    this.#attrs[o] = fin(a0);
    this.#attrs[o + 1] = fin(a1);
    this.#attrs[o + 2] = fin(a2);
    this.length = n + 1;
  }

  toEdgeSet(relation: RelationSpec): EdgeSet {
    return {
      relation,
      src: this.#src.slice(0, this.length),
      dst: this.#dst.slice(0, this.length),
      attrs: this.#attrs.slice(0, this.length * EDGE_ATTR_DIM),
    };
  }

  #grow(): void {
    const size = this.#src.length * 2;
    const src = new Int32Array(size);
    src.set(this.#src);
    const dst = new Int32Array(size);
    dst.set(this.#dst);
    const attrs = new Float32Array(size * EDGE_ATTR_DIM);
    attrs.set(this.#attrs);
    this.#src = src;
    this.#dst = dst;
    this.#attrs = attrs;
  }
}

export function buildEdges(
  edges: readonly EdgeBuffer[],
  packet: SystemStatePacket,
  sites: readonly SeedSiteDescriptor[],
  plans: readonly CandidatePlan[],
  groups: readonly OwnerGroup[],
  siteIndex: ReadonlyMap<string, number>,
  planIndex: ReadonlyMap<string, number>,
  coverage: CoverageRecorder,
): void {
  const e = (key: RelationKey): EdgeBuffer => edges[RELATION_INDEX[key]] as EdgeBuffer;
  const seeds = packet.seedStates;
  const defaults = groups.find((g) => g.owner < 0);

  // Global ↔ seed, seed chain.
  seeds.forEach((seed, s) => {
    const stage = stageNorm(seed);
    const risk = fin(seed.riskScore);
    e('influences').push(0, s, 1, stage, risk);
    e('reports').push(s, 0, 1, stage, risk);
    if (s + 1 < seeds.length) e('peer').push(s, s + 1, 0.5, 0, 0);
  });

  // Global ↔ blueprint.
  plans.forEach((plan, b) => {
    e('annotates').push(0, b, 1, plan.stageNorm, plan.risk);
    e('annotatedBy').push(b, 0, 1, plan.stageNorm, plan.risk);
  });

  // Layer / activation / parameter structure, within each owner.
  let realLayerEdges = 0;
  let realActivationEdges = 0;
  let realConfigureEdges = 0;
  let explicitConnects = 0;
  for (const group of groups) {
    const real = group.owner >= 0;
    const L = group.layerCount;
    const A = group.activationCount;
    const P = group.parameterCount;
    for (let l = 0; l < L; l += 1) {
      const row = group.layerStart + l;
      const d = (l + 1) / L;
      e('operates').push(0, row, 1, d, group.risk);
      e('feedback').push(row, 0, 1, d, group.risk);
      if (real) {
        e('composes').push(group.owner, row, group.risk, d, 1);
        e('belongsTo').push(row, group.owner, group.risk, d, 1);
        realLayerEdges += 1;
      }
      for (let j = 0; j < A; j += 1) {
        const a = (j + 1) / A;
        const col = group.activationStart + j;
        e('activates').push(row, col, d, a, 1);
        e('affects').push(col, row, d, a, 1);
        e('feeds').push(row, col, d, a, 1);
        if (real) realActivationEdges += 1;
      }
    }
    for (let j = 0; j < A; j += 1) {
      const a = (j + 1) / A;
      const col = group.activationStart + j;
      if (real) e('energizes').push(group.owner, col, group.risk, a, 1);
      for (let k = 0; k < P; k += 1) {
        const p = (k + 1) / P;
        const prow = group.parameterStart + k;
        e('configures').push(col, prow, a, p, 1);
        e('modulates').push(prow, col, a, p, 1);
        if (real) realConfigureEdges += 1;
      }
    }
    if (real) {
      for (let k = 0; k < P; k += 1) e('targets').push(group.parameterStart + k, group.owner, (k + 1) / P, group.risk, 1);
    }
    const pairs = group.adjacency.length > 0 ? group.adjacency : chain(L);
    if (group.adjacency.length > 0) explicitConnects += pairs.length;
    for (const [s, d] of pairs) e('connects').push(group.layerStart + s, group.layerStart + d, (s + 1) / L, (d + 1) / L, group.risk);
  }

  // Seed → its blueprint's layers (monitors) and parameters (capabilities); defaults as fallback.
  seeds.forEach((seed, s) => {
    const stage = stageNorm(seed);
    const risk = fin(seed.riskScore);
    const planAt = planIndex.get(seed.blueprintId);
    const plan = planAt === undefined ? undefined : plans[planAt];
    const own = plan?.group;
    if (own !== undefined && own.layerCount > 0) {
      for (let l = 0; l < own.layerCount; l += 1) {
        const row = own.layerStart + l;
        e('monitors').push(s, row, stage, risk, plan?.monitorFactor ?? 1);
        e('monitoredBy').push(row, s, stage, risk, plan?.monitorFactor ?? 1);
      }
    } else if (defaults !== undefined && defaults.layerCount > 0) {
      // Reference §5.8 heuristic: the layer at the seed's depth.
      const l = Math.max(0, Math.min(defaults.layerCount - 1, Math.round(seed.layerDepth)));
      const row = defaults.layerStart + l;
      const d = (l + 1) / defaults.layerCount;
      e('monitors').push(s, row, stage, risk, d);
      e('monitoredBy').push(row, s, stage, risk, d);
    }
    if (blendAllowed(seed)) {
      const target =
        own !== undefined && own.parameterCount > 0 ? own : defaults !== undefined && defaults.parameterCount > 0 ? defaults : undefined;
      for (let k = 0; k < (target?.parameterCount ?? 0); k += 1) {
        const prow = (target as OwnerGroup).parameterStart + k;
        e('allowed').push(s, prow, 1, 1, stage);
        e('associated').push(prow, s, 1, 1, stage);
      }
    }
  });

  // Sites: global ↔ site, occupancy, fit, host order.
  sites.forEach((site, i) => {
    const ratio = i / sites.length;
    const occupied = seeds.some((s) => s.siteId === site.siteId && occupies(s)) ? 1 : 0;
    e('operatesSite').push(0, i, 1, ratio, occupied);
    e('reportsSite').push(i, 0, 1, ratio, occupied);
    if (i + 1 < sites.length) e('next').push(i, i + 1, 1, ratio, (i + 1) / sites.length);
  });
  seeds.forEach((seed, s) => {
    const i = siteIndex.get(seed.siteId);
    if (i === undefined) return;
    const attrs = [occupies(seed) ? 1 : 0, stageNorm(seed), clamp01(seed.metrics?.alpha ?? 0)] as const;
    e('occupies').push(s, i, ...attrs);
    e('hosts').push(i, s, ...attrs);
  });
  plans.forEach((plan, b) => {
    plan.fits.forEach((fit, i) => {
      if (fit === 0) return;
      e('fits').push(b, i, fit, plan.risk, plan.tierNorm);
      e('accepts').push(i, b, fit, plan.risk, plan.tierNorm);
    });
  });

  // Edge coverage (§5.8 keys plus two site keys; see the module comment).
  if (seeds.length > 0) {
    coverage.observe('edges.global_influences', e('influences').length > 0);
    coverage.observe('edges.seed_reports', e('reports').length > 0);
    coverage.observe('edges.seed_param_allowed', e('allowed').length > 0);
    coverage.observe('edges.seed_monitors', e('monitors').length > 0);
    coverage.observe('edges.seed_occupies', e('occupies').length > 0);
  }
  const realLayers = realLayerEdges > 0;
  coverage.observe('edges.global_operates', realLayers);
  coverage.observe('edges.layer_feedback', realLayers);
  coverage.observe('edges.blueprint_composes', realLayers);
  coverage.observe('edges.layer_activates', realActivationEdges > 0);
  coverage.observe('edges.layer_feeds', realActivationEdges > 0);
  coverage.observe('edges.activation_configures', realConfigureEdges > 0);
  coverage.observe('edges.parameter_modulates', realConfigureEdges > 0);
  coverage.observe('edges.parameter_targets', e('targets').length > 0);
  coverage.observe('edges.layer_connects', explicitConnects > 0);
  if (sites.length > 0 && plans.length > 0) coverage.observe('edges.blueprint_fits', e('fits').length > 0);
}
