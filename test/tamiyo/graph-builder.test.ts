import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import {
  BSDSSchema,
  HandlingClass,
  HazardBand,
  HostDescriptorSchema,
  SeedLifecycleStage,
  SeedMetricsSchema,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  SeedStateSchema,
  SystemStatePacketSchema,
  TrainingMetricsSchema,
  type BlueprintDescriptor,
  type HostDescriptor,
  type SeedState,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { mlpHost } from '../../src/tolaria/index.js';
import { GRAPH_MONITOR_DEFAULTS, type GraphMetadata } from '../../src/urza/index.js';
import {
  ACTIVATION_FEATURES,
  BLUEPRINT_FEATURES,
  GLOBAL_FEATURES,
  GRAPH_RELATIONS,
  GraphBuilder,
  LAYER_FEATURES,
  PARAMETER_FEATURES,
  SEED_FEATURES,
  SITE_FEATURES,
  type BlueprintCandidate,
  type GraphBuildInput,
} from '../../src/tamiyo/graph-builder.js';
import {
  EDGE_ATTR_DIM,
  NODE_FEATURE_DIMS,
  NODE_TYPES,
  type EdgeSet,
  type NodeType,
  type PolicyGraph,
} from '../../src/tamiyo/graph-types.js';
import { FeatureNormaliser } from '../../src/tamiyo/normaliser.js';
import { EmbeddingRegistries } from '../../src/tamiyo/registries.js';

const catalog = new KarnCatalog();
let host: HostDescriptor;

beforeAll(async () => {
  await initTensorBackend();
  const model = mlpHost({ inputSize: 16, hidden: [32, 32, 32], seed: 1, hostId: 'gb-host' });
  host = model.descriptor;
  model.dispose();
});

function metadata(
  descriptor: BlueprintDescriptor,
  layers: readonly (readonly [string, readonly number[]])[],
  activations: readonly string[],
  options: { siteShape?: number[]; adjacency?: [number, number][]; monitorFactor?: number } = {},
): GraphMetadata {
  const id = descriptor.blueprintId;
  const graphLayers = layers.map(([name, shape], index) => ({
    layerId: `${id}-L${index}`,
    index,
    name,
    shape: [...shape],
    dtype: 'float32',
    parameterCount: shape.reduce((a, b) => a * b, 1),
  }));
  const count = graphLayers.reduce((s, l) => s + l.parameterCount, 0);
  const factor = options.monitorFactor ?? 1;
  const source = factor === 1 ? ('default' as const) : ('bsds' as const);
  const siteShape = options.siteShape ?? [32];
  return {
    version: 1,
    blueprintId: id,
    family: descriptor.family,
    layers: graphLayers,
    activations: activations.map((kind, i) => ({ activationId: `${id}-A${i}`, kind })),
    parameters: {
      count,
      bytes: 4 * count,
      allowed: descriptor.allowedParameters.map((p) => ({
        name: p.name,
        min: p.minValue,
        max: p.maxValue,
        span: p.maxValue - p.minValue,
        value: (p.minValue + p.maxValue) / 2,
      })),
    },
    capabilities: {
      compiledSite: { kind: 'DENSE', shape: siteShape },
      siteKinds: ['DENSE', 'CONV'],
      inputShape: [1, ...siteShape],
      outputShape: [1, ...siteShape],
      allowedBlendModes: ['CONVEX', 'RESIDUAL', 'CHANNEL', 'CONFIDENCE'],
    },
    adjacency: options.adjacency ?? graphLayers.slice(1).map((_, i) => [i, i + 1] as [number, number]),
    monitors: [
      { metric: 'gradient_norm', threshold: GRAPH_MONITOR_DEFAULTS.gradientNorm * factor, source },
      { metric: 'output_scale', threshold: GRAPH_MONITOR_DEFAULTS.outputScale * factor, source },
      { metric: 'latency_ms', threshold: GRAPH_MONITOR_DEFAULTS.latencyMs * factor, source },
    ],
    source: 'tezzeret',
  };
}

/** BP009 (residual, 4 layers), BP010 (experts, 5 layers, non-chain adjacency), BP002 (adapter, compiled at 16), BP013 (conv, no metadata). */
function candidates(): BlueprintCandidate[] {
  const bp009 = catalog.get('BP009');
  const bp010 = catalog.get('BP010');
  const bp002 = catalog.get('BP002');
  return [
    {
      descriptor: bp009,
      graph: metadata(
        bp009,
        [
          ['dense0/w', [32, 32]],
          ['dense0/b', [32]],
          ['dense1/w', [32, 32]],
          ['dense1/b', [32]],
        ],
        ['relu'],
      ),
    },
    {
      descriptor: bp010,
      graph: metadata(
        bp010,
        [
          ['router/w', [32, 3]],
          ['expert0/w1', [32, 32]],
          ['expert1/w1', [32, 32]],
          ['expert2/w1', [32, 32]],
          ['out/b', [32]],
        ],
        ['softmax', 'relu'],
        {
          adjacency: [
            [0, 2],
            [2, 1],
            [3, 4],
          ],
        },
      ),
    },
    {
      descriptor: bp002,
      graph: metadata(
        bp002,
        [
          ['down/w', [16, 4]],
          ['up/w', [4, 16]],
        ],
        ['linear'],
        { siteShape: [16] },
      ),
    },
    { descriptor: catalog.get('BP013') },
  ];
}

function seeds(): SeedState[] {
  return [
    create(SeedStateSchema, {
      seedId: 'seed-a',
      stage: SeedLifecycleStage.SEED_STAGE_BLENDING,
      gradientNorm: 0.9,
      learningRate: 0.01,
      layerDepth: 1,
      ageEpochs: 3,
      riskScore: 0.3,
      blueprintId: 'BP009',
      siteId: 'hidden1',
      metrics: create(SeedMetricsSchema, {
        alpha: 0.4,
        alphaSteps: 2,
        alphaTotalSteps: 8,
        blendAllowed: true,
        isolationViolations: 1,
        counterfactualContribution: 0.02,
      }),
    }),
    create(SeedStateSchema, {
      seedId: 'seed-b',
      stage: SeedLifecycleStage.SEED_STAGE_TRAINING,
      gradientNorm: 1.2,
      learningRate: 0.02,
      ageEpochs: 1,
      riskScore: 0.5,
      blueprintId: 'BP010',
      siteId: 'hidden2',
      metrics: create(SeedMetricsSchema, { alpha: 0, blendAllowed: false }),
    }),
  ];
}

function fullPacket(): SystemStatePacket {
  return create(SystemStatePacketSchema, {
    packetId: 'pkt-1',
    trainingRunId: 'run-1',
    currentEpoch: 5,
    globalStep: 120n,
    validationLoss: 0.6,
    trainingLoss: 0.65,
    seedStates: seeds(),
    metrics: create(TrainingMetricsSchema, { lossEwma: 0.7, gradientNorm: 1.1, samplesPerS: 4000, hookLatencyMs: 10, epochsTotal: 20 }),
  });
}

function sparsePacket(): SystemStatePacket {
  return create(SystemStatePacketSchema, {
    packetId: 'pkt-2',
    currentEpoch: 1,
    seedStates: [create(SeedStateSchema, { seedId: 's1', stage: SeedLifecycleStage.SEED_STAGE_TRAINING })],
  });
}

function newBuilder(options: { maxLayers?: number } = {}): { builder: GraphBuilder; normaliser: FeatureNormaliser } {
  const normaliser = new FeatureNormaliser();
  return { builder: new GraphBuilder({ normaliser, registries: EmbeddingRegistries.inMemory(), ...options }), normaliser };
}

function fullInput(): GraphBuildInput {
  return { packet: fullPacket(), host, blueprints: candidates() };
}

function edges(graph: PolicyGraph, src: NodeType, name: string, dst: NodeType): EdgeSet {
  const set = graph.edges.find((e) => e.relation.src === src && e.relation.name === name && e.relation.dst === dst);
  if (set === undefined) throw new Error(`no relation ${src} ${name} ${dst}`);
  return set;
}

function pairs(set: EdgeSet): [number, number][] {
  return Array.from(set.src, (s, i) => [s, set.dst[i] as number]);
}

function attrsOf(set: EdgeSet, edge: number): number[] {
  return Array.from(set.attrs.subarray(edge * EDGE_ATTR_DIM, (edge + 1) * EDGE_ATTR_DIM));
}

function row(graph: PolicyGraph, type: NodeType, id: string): number[] {
  const r = graph.nodes[type].ids.indexOf(id);
  if (r < 0) throw new Error(`no ${type} node ${id}`);
  const dim = NODE_FEATURE_DIMS[type];
  return Array.from(graph.nodes[type].features.subarray(r * dim, (r + 1) * dim));
}

function expectWellFormed(graph: PolicyGraph): void {
  for (const type of NODE_TYPES) {
    const set = graph.nodes[type];
    expect(set.features.length).toBe(set.ids.length * NODE_FEATURE_DIMS[type]);
    expect(new Set(set.ids).size).toBe(set.ids.length);
    expect(set.features.every((x) => Number.isFinite(x))).toBe(true);
  }
  expect(graph.edges.map((e) => e.relation)).toEqual(GRAPH_RELATIONS);
  for (const set of graph.edges) {
    expect(set.dst.length).toBe(set.src.length);
    expect(set.attrs.length).toBe(set.src.length * EDGE_ATTR_DIM);
    expect(set.attrs.every((x) => Number.isFinite(x))).toBe(true);
    const srcCount = graph.nodes[set.relation.src].ids.length;
    const dstCount = graph.nodes[set.relation.dst].ids.length;
    expect(set.src.every((i) => i >= 0 && i < srcCount)).toBe(true);
    expect(set.dst.every((i) => i >= 0 && i < dstCount)).toBe(true);
  }
}

describe('GRAPH_RELATIONS', () => {
  it('lists the 21 reference relations then 7 site relations, each triple and name unique', () => {
    expect(GRAPH_RELATIONS).toHaveLength(28);
    expect(GRAPH_RELATIONS.slice(0, 3).map((r) => `${r.src} ${r.name} ${r.dst}`)).toEqual([
      'global influences seed',
      'seed reports global',
      'global annotates blueprint',
    ]);
    expect(GRAPH_RELATIONS.slice(21).map((r) => `${r.src} ${r.name} ${r.dst}`)).toEqual([
      'global operates_site site',
      'site reports_site global',
      'seed occupies site',
      'site hosts seed',
      'blueprint fits site',
      'site accepts blueprint',
      'site next site',
    ]);
    expect(new Set(GRAPH_RELATIONS.map((r) => r.name)).size).toBe(28);
    expect(Object.isFrozen(GRAPH_RELATIONS)).toBe(true);
  });
});

describe('feature layouts', () => {
  it('name exactly as many features as graph-types declares per node type', () => {
    const layouts: Record<NodeType, readonly string[]> = {
      global: GLOBAL_FEATURES,
      seed: SEED_FEATURES,
      site: SITE_FEATURES,
      blueprint: BLUEPRINT_FEATURES,
      layer: LAYER_FEATURES,
      activation: ACTIVATION_FEATURES,
      parameter: PARAMETER_FEATURES,
    };
    for (const type of NODE_TYPES) {
      expect(layouts[type]).toHaveLength(NODE_FEATURE_DIMS[type]);
      expect(new Set(layouts[type]).size).toBe(NODE_FEATURE_DIMS[type]);
    }
  });
});

describe('GraphBuilder structure', () => {
  it('emits one node per seed, site and candidate, capped metadata nodes, and well-formed edges', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    expectWellFormed(graph);
    expect(graph.nodes.global.ids).toEqual(['global']);
    expect(graph.nodes.seed.ids).toEqual(['seed-a', 'seed-b']);
    expect(graph.nodes.site.ids).toEqual(['hidden1', 'hidden2', 'hidden3']);
    expect(graph.nodes.blueprint.ids).toEqual(['BP009', 'BP010', 'BP002', 'BP013']);
    expect(graph.nodes.layer.ids).toEqual(['BP009-L0', 'BP009-L1', 'BP009-L2', 'BP010-L0', 'BP010-L1', 'BP010-L2', 'BP002-L0', 'BP002-L1']);
    expect(graph.nodes.activation.ids).toEqual(['BP009-A0', 'BP010-A0', 'BP002-A0']);
    expect(graph.nodes.parameter.ids).toEqual(['BP009-depth', 'BP010-branches', 'BP002-scale', 'BP013-groups']);
    const counts = Object.fromEntries(graph.edges.map((e) => [`${e.relation.src}.${e.relation.name}`, e.src.length]));
    expect(counts).toEqual({
      'global.influences': 2,
      'seed.reports': 2,
      'global.annotates': 4,
      'blueprint.annotated_by': 4,
      'seed.peer': 1,
      'global.operates': 8,
      'layer.feedback': 8,
      'layer.activates': 8,
      'activation.affects': 8,
      'activation.configures': 3,
      'parameter.modulates': 3,
      'seed.allowed': 1,
      'parameter.associated': 1,
      'blueprint.composes': 8,
      'layer.belongs_to': 8,
      'blueprint.energizes': 3,
      'parameter.targets': 4,
      'layer.connects': 5,
      'seed.monitors': 6,
      'layer.monitored_by': 6,
      'layer.feeds': 8,
      'global.operates_site': 3,
      'site.reports_site': 3,
      'seed.occupies': 2,
      'site.hosts': 2,
      'blueprint.fits': 9,
      'site.accepts': 9,
      'site.next': 2,
    });
  });

  it('keeps layer adjacency from the metadata within the kept layers, per blueprint', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    const ids = graph.nodes.layer.ids;
    const connects = pairs(edges(graph, 'layer', 'connects', 'layer')).map(([s, d]) => `${ids[s]}>${ids[d]}`);
    // BP010's [3, 4] is beyond the 3-layer cap and dropped; its order [0→2, 2→1] is kept, not chained.
    expect(connects).toEqual(['BP009-L0>BP009-L1', 'BP009-L1>BP009-L2', 'BP010-L0>BP010-L2', 'BP010-L2>BP010-L1', 'BP002-L0>BP002-L1']);
    const connectsSet = edges(graph, 'layer', 'connects', 'layer');
    expect(attrsOf(connectsSet, 2)).toEqual([Math.fround(1 / 3), 1, Math.fround(0.3)]);
    expect(graph.coverage.byKey.get('edges.layer_connects')).toBe(1);
  });

  it('falls back to a chain and reports layer_connects absent when no adjacency pair is usable', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const [first] = input.blueprints;
    const lonely = { ...first!, graph: { ...first!.graph!, adjacency: [[7, 9]] as [number, number][] } };
    const graph = builder.build({ ...input, blueprints: [lonely] });
    expect(pairs(edges(graph, 'layer', 'connects', 'layer'))).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(graph.coverage.byKey.get('edges.layer_connects')).toBe(0);
  });

  it('gives blend-allowed seeds capability edges to their blueprint parameters only', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    const allowed = edges(graph, 'seed', 'allowed', 'parameter');
    expect(pairs(allowed)).toEqual([[0, 0]]);
    expect(graph.nodes.parameter.ids[0]).toBe('BP009-depth');
    expect(attrsOf(allowed, 0)).toEqual([1, 1, Math.fround(4 / 11)]);
    expect(pairs(edges(graph, 'parameter', 'associated', 'seed'))).toEqual([[0, 0]]);
    expect(graph.coverage.byKey.get('edges.seed_param_allowed')).toBe(1);
    expect(graph.coverage.byGroup.has('edges.seed_param_allowed')).toBe(false);
  });

  it('has no capability edges when no seed may blend', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const packet = fullPacket();
    packet.seedStates = [packet.seedStates[1]!];
    const graph = builder.build({ ...input, packet });
    expect(edges(graph, 'seed', 'allowed', 'parameter').src.length).toBe(0);
    expect(graph.coverage.byKey.get('edges.seed_param_allowed')).toBe(0);
  });

  it('links each seed to the layers of its blueprint, weighted by BSDS-tightened monitors', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const bp009 = input.blueprints[0]!;
    const tightened: BlueprintCandidate = {
      descriptor: bp009.descriptor,
      graph: { ...bp009.graph!, monitors: metadata(bp009.descriptor, [], [], { monitorFactor: 0.1 }).monitors },
      bsds: create(BSDSSchema, {
        blueprintId: 'BP009',
        riskScore: 0.7,
        hazardBand: HazardBand.CRITICAL,
        handlingClass: HandlingClass.QUARANTINE,
      }),
    };
    const graph = builder.build({ ...input, blueprints: [tightened, ...input.blueprints.slice(1)] });
    const monitors = edges(graph, 'seed', 'monitors', 'layer');
    const layerIds = graph.nodes.layer.ids;
    expect(pairs(monitors).map(([s, l]) => `${graph.nodes.seed.ids[s]}>${layerIds[l]}`)).toEqual([
      'seed-a>BP009-L0',
      'seed-a>BP009-L1',
      'seed-a>BP009-L2',
      'seed-b>BP010-L0',
      'seed-b>BP010-L1',
      'seed-b>BP010-L2',
    ]);
    expect(attrsOf(monitors, 0)).toEqual([Math.fround(4 / 11), Math.fround(0.3), Math.fround(0.1)]);
    expect(attrsOf(monitors, 3)).toEqual([Math.fround(3 / 11), 0.5, 1]);
    expect(pairs(edges(graph, 'layer', 'monitored_by', 'seed'))).toEqual(pairs(monitors).map(([s, l]) => [l, s]));
    // The BSDS overrides the descriptor risk and flags hazard, handling and quarantine.
    const bp = row(graph, 'blueprint', 'BP009');
    expect(bp[2]).toBeCloseTo(0.7, 6);
    expect(bp[6]).toBe(1);
    expect(bp[7]).toBe(1);
    expect(bp[8]).toBe(1);
    expect(bp[9]).toBe(1);
  });

  it('relates sites: occupancy, exact-compile vs family fit, host order', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    expect(pairs(edges(graph, 'seed', 'occupies', 'site'))).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(pairs(edges(graph, 'site', 'next', 'site'))).toEqual([
      [0, 1],
      [1, 2],
    ]);
    const fits = edges(graph, 'blueprint', 'fits', 'site');
    const byPair = new Map(pairs(fits).map(([b, s], i) => [`${graph.nodes.blueprint.ids[b]}@${s}`, attrsOf(fits, i)]));
    expect([...byPair.keys()].filter((k) => k.startsWith('BP013'))).toEqual([]);
    expect(byPair.get('BP009@0')).toEqual([1, Math.fround(0.3), Math.fround(1 / 3)]);
    expect(byPair.get('BP002@2')?.[0]).toBe(0.5);
    expect(row(graph, 'site', 'hidden1')).toEqual([
      1,
      0,
      Math.fround(Math.log2(33) / 12),
      0,
      1,
      Math.fround(4 / 11),
      Math.fround(0.4),
      Math.fround(0.02),
      1,
      0,
    ]);
    expect(row(graph, 'site', 'hidden3')).toEqual([1, 0, Math.fround(Math.log2(33) / 12), Math.fround(2 / 3), 0, 0, 0, 0, 0, 1]);
    expect(row(graph, 'blueprint', 'BP013')[11]).toBe(0);
    expect(row(graph, 'blueprint', 'BP009')[11]).toBe(1);
  });

  it('fills seed features from the typed seed state and metrics', () => {
    const { builder } = newBuilder();
    const graph = builder.build(fullInput());
    const a = row(graph, 'seed', 'seed-a');
    expect(a[0]).toBe(Math.fround(4 / 11));
    expect(a[1]).toBe(Math.fround(0.4));
    expect(a[2]).toBe(1);
    expect(a[3]).toBe(Math.fround(Math.tanh(1)));
    expect(a[5]).toBe(1);
    expect(a[7]).toBe(1);
    expect(a[9]).toBe(1);
    expect(a[12]).toBeGreaterThan(0);
    expect(a[13]).toBe(0.25);
    const b = row(graph, 'seed', 'seed-b');
    expect([b[2], b[4], b[5]]).toEqual([0, 0, 0]);
  });

  it('emits the §5.1 defaults when no candidate has metadata, and falls back to depth-based monitors', () => {
    const { builder } = newBuilder();
    const packet = fullPacket();
    const graph = builder.build({ packet, host, blueprints: [] });
    expectWellFormed(graph);
    expect(graph.nodes.blueprint.ids).toEqual([]);
    expect(graph.nodes.layer.ids).toEqual(['default-L0', 'default-L1', 'default-L2']);
    expect(graph.nodes.activation.ids).toEqual(['default-A0']);
    expect(graph.nodes.parameter.ids).toEqual(['default-alpha']);
    expect(row(graph, 'layer', 'default-L1')).toEqual([Math.fround(2 / 3), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // seed-a has layer_depth 1; seed-b depth 0.
    expect(pairs(edges(graph, 'seed', 'monitors', 'layer'))).toEqual([
      [0, 1],
      [1, 0],
    ]);
    expect(pairs(edges(graph, 'seed', 'allowed', 'parameter'))).toEqual([[0, 0]]);
    expect(edges(graph, 'layer', 'connects', 'layer').src.length).toBe(2);
    expect(graph.coverage.byKey.get('node.layer.descriptor')).toBe(0);
    expect(graph.coverage.byKey.get('edges.global_operates')).toBe(0);
    expect(graph.coverage.byKey.get('edges.layer_connects')).toBe(0);
  });
});

describe('GraphBuilder coverage', () => {
  it('reports full coverage for a complete packet', () => {
    const { builder } = newBuilder();
    const c = builder.build(fullInput()).coverage;
    expect(c.byGroup.get('node.global')).toBe(1);
    // 18 seed observations, seed-b has no contribution.
    expect(c.byKey.get('node.seed.contribution')).toBe(0.5);
    expect(c.byGroup.get('node.seed')).toBeCloseTo(17 / 18, 12);
    // Only seed-a's occupied site has a contribution.
    expect(c.byGroup.get('node.site')).toBeCloseTo(7 / 8, 12);
    expect(c.byKey.get('node.blueprint.graph')).toBe(0.75);
    expect(c.byKey.get('node.blueprint.bsds')).toBe(0);
    for (const key of [
      'edges.layer_connects',
      'edges.seed_monitors',
      'edges.blueprint_composes',
      'edges.layer_activates',
      'edges.blueprint_fits',
    ]) {
      expect(c.byGroup.get(key)).toBe(1);
    }
    expect(c.average).toBeGreaterThan(0.85);
  });

  it('reports the missing inputs of a sparse packet', () => {
    const { builder } = newBuilder();
    const c = builder.build({ packet: sparsePacket(), host, blueprints: [{ descriptor: catalog.get('BP013') }] }).coverage;
    expect(c.byGroup.get('node.global')).toBeCloseTo(0.3, 12);
    expect(c.byKey.get('node.global.loss')).toBe(0);
    expect(c.byKey.get('node.global.epoch')).toBe(1);
    expect(c.byKey.get('node.seed.metrics')).toBe(0);
    expect(c.byKey.get('node.seed.site')).toBe(0);
    expect(c.byGroup.get('node.layer')).toBe(0);
    expect(c.byGroup.get('node.activation')).toBe(0);
    expect(c.byKey.get('edges.seed_monitors')).toBe(1);
    expect(c.byKey.get('edges.blueprint_fits')).toBe(0);
    const full = newBuilder().builder.build(fullInput()).coverage;
    expect(c.average).toBeLessThan(full.average - 0.3);
  });

  it('omits seed groups when there are no seeds', () => {
    const { builder } = newBuilder();
    const packet = fullPacket();
    packet.seedStates = [];
    const c = builder.build({ ...fullInput(), packet }).coverage;
    expect(c.byGroup.has('node.seed')).toBe(false);
    expect(c.byGroup.has('edges.global_influences')).toBe(false);
  });
});

describe('GraphBuilder normalisation and determinism', () => {
  it('updates running stats for present features and leaves absent ones untouched', () => {
    const full = newBuilder();
    full.builder.build(fullInput());
    expect(full.normaliser.stats('loss')?.mean).toBeCloseTo(0.8 + 0.1 * (0.7 - 0.8), 6);
    const sparse = newBuilder();
    const before = sparse.normaliser.toJSON();
    sparse.builder.build({ packet: sparsePacket(), host, blueprints: [] });
    const after = sparse.normaliser.toJSON();
    for (const key of [
      'loss',
      'validation_loss',
      'samples_per_s',
      'seed_contribution',
      'seed_gradient_norm',
      'epoch_progress',
      'parameter_min',
    ]) {
      expect(after[key]).toEqual(before[key]);
    }
    expect(after.global_epoch).not.toEqual(before.global_epoch);
  });

  it('gives identical arrays for identical inputs on fresh builders', () => {
    const a = newBuilder().builder.build(fullInput());
    const b = newBuilder().builder.build(fullInput());
    for (const type of NODE_TYPES) {
      expect(b.nodes[type].ids).toEqual(a.nodes[type].ids);
      expect(b.nodes[type].features).toEqual(a.nodes[type].features);
    }
    b.edges.forEach((set, i) => {
      expect(set.src).toEqual(a.edges[i]?.src);
      expect(set.dst).toEqual(a.edges[i]?.dst);
      expect(set.attrs).toEqual(a.edges[i]?.attrs);
    });
    expect([...b.coverage.byKey]).toEqual([...a.coverage.byKey]);
  });

  it('returns graphs that later builds do not overwrite', () => {
    const { builder } = newBuilder();
    const first = builder.build(fullInput());
    const snapshot = Float32Array.from(first.edges[0]!.attrs);
    const packet = fullPacket();
    packet.seedStates[0]!.riskScore = 0.99;
    builder.build({ ...fullInput(), packet });
    expect(first.edges[0]!.attrs).toEqual(snapshot);
  });

  it('keeps every feature and edge attribute finite for arbitrary seed numbers (property)', () => {
    const { builder } = newBuilder();
    const num = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1e300, 1e300));
    fc.assert(
      fc.property(num, num, num, num, num, num, (gradient, rate, risk, alpha, contribution, loss) => {
        const packet = fullPacket();
        packet.validationLoss = loss;
        const seed = packet.seedStates[0]!;
        seed.gradientNorm = gradient;
        seed.learningRate = rate;
        seed.riskScore = risk;
        seed.metrics!.alpha = alpha;
        seed.metrics!.counterfactualContribution = contribution;
        expectWellFormed(builder.build({ ...fullInput(), packet }));
      }),
      { numRuns: 60 },
    );
  });
});

describe('GraphBuilder input validation', () => {
  function failure(build: () => unknown): unknown {
    try {
      build();
    } catch (error) {
      return error;
    }
    throw new Error('expected a failure');
  }

  it('rejects empty or duplicate seed ids with TAMIYO_GRAPH_INVALID', () => {
    const { builder } = newBuilder();
    const packet = fullPacket();
    packet.seedStates[1]!.seedId = 'seed-a';
    const duplicate = failure(() => builder.build({ ...fullInput(), packet }));
    expect(isEsperError(duplicate, ErrorCode.TAMIYO_GRAPH_INVALID)).toBe(true);
    expect((duplicate as { details: Record<string, unknown> }).details).toEqual({ field: 'seed_id', index: 1 });
    packet.seedStates[1]!.seedId = '';
    expect(
      isEsperError(
        failure(() => builder.build({ ...fullInput(), packet })),
        ErrorCode.TAMIYO_GRAPH_INVALID,
      ),
    ).toBe(true);
  });

  it('rejects duplicate candidates, duplicate sites, and metadata or BSDS of another blueprint', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    const [a, b] = input.blueprints;
    const cases: GraphBuildInput[] = [
      { ...input, blueprints: [a!, a!] },
      { ...input, blueprints: [{ ...a!, graph: b!.graph }] },
      { ...input, blueprints: [{ ...a!, bsds: create(BSDSSchema, { blueprintId: 'BP999' }) }] },
      { ...input, host: create(HostDescriptorSchema, { sites: [host.sites[0]!, host.sites[0]!] }) },
    ];
    for (const bad of cases) {
      expect(
        isEsperError(
          failure(() => builder.build(bad)),
          ErrorCode.TAMIYO_GRAPH_INVALID,
        ),
      ).toBe(true);
    }
  });

  it('rejects caps outside [1, 64] with INVALID_ARGUMENT naming the field', () => {
    const error = failure(() => newBuilder({ maxLayers: 0 }));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details.field).toBe('maxLayers');
  });

  it('builds on a conv site without fitting dense-only compiles exactly', () => {
    const { builder } = newBuilder();
    const convHost = create(HostDescriptorSchema, {
      hostId: 'cnn',
      sites: [create(SeedSiteDescriptorSchema, { siteId: 'conv1', kind: SeedSiteKind.CONV, shape: [8, 8, 32] })],
    });
    const graph = builder.build({ packet: sparsePacket(), host: convHost, blueprints: candidates() });
    expectWellFormed(graph);
    const fits = edges(graph, 'blueprint', 'fits', 'site');
    const ids = graph.nodes.blueprint.ids;
    const fitted = new Map(pairs(fits).map(([bp], i) => [ids[bp], attrsOf(fits, i)[0]]));
    expect(fitted.get('BP013')).toBe(0.5);
    expect(fitted.get('BP009')).toBe(0.5);
    expect(row(graph, 'site', 'conv1').slice(0, 2)).toEqual([0, 1]);
  });
});

describe('GraphBuilder performance', () => {
  // The guard is on CPU time per build (process.cpuUsage), which excludes time the OS had
  // this process descheduled: on a loaded CI box wall-clock p95 is dominated by preemption.
  // Both figures are printed; the reference target is p95 ≤ 5 ms.
  it('builds 2 seeds / 3 sites / 4 blueprints with metadata at p95 well under the guard', () => {
    const { builder } = newBuilder();
    const input = fullInput();
    for (let i = 0; i < 300; i += 1) builder.build(input);
    const wallMs: number[] = [];
    const cpuMs: number[] = [];
    for (let i = 0; i < 200; i += 1) {
      const start = performance.now();
      const cpu = process.cpuUsage();
      builder.build(input);
      const used = process.cpuUsage(cpu);
      cpuMs.push((used.user + used.system) / 1000);
      wallMs.push(performance.now() - start);
    }
    const p95 = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(0.95 * xs.length)] as number;
    console.log(`graph builder p95: cpu ${p95(cpuMs).toFixed(3)} ms, wall ${p95(wallMs).toFixed(3)} ms (target ≤ 5 ms)`);
    expect(p95(cpuMs)).toBeLessThan(25);
  });
});
