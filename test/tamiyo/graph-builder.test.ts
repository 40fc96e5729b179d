import { beforeAll, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { BSDSSchema, HostDescriptorSchema, SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { type GraphBuildInput } from '../../src/tamiyo/graph-builder.js';
import { NODE_TYPES } from '../../src/tamiyo/graph-types.js';
import {
  catalog,
  host,
  initGraphFixtures,
  candidates,
  fullPacket,
  sparsePacket,
  newBuilder,
  fullInput,
  edges,
  pairs,
  attrsOf,
  row,
  expectWellFormed,
} from './fixtures/graph-inputs.js';

beforeAll(initGraphFixtures);

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
