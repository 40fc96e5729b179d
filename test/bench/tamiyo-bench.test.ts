/**
 * Smoke test of the Tamiyo decision-latency benchmark: runs it with tiny counts and checks
 * the shape of the JSON object it prints. Timings are never asserted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  resolveTamiyoBenchOptions,
  runTamiyoBench,
  scenarioFor,
  TAMIYO_AIMS,
  TAMIYO_BENCH_DEFAULTS,
  type LatencyMs,
  type TamiyoBenchOptions,
} from '../../bench/tamiyo.bench.js';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { EmbeddingRegistries, FeatureNormaliser, GraphBuilder, NODE_TYPES } from '../../src/tamiyo/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';

const TINY: Partial<TamiyoBenchOptions> = {
  warmup: 1,
  runsPerRound: 3,
  rounds: 2,
  targetNodes: [10, 50],
  heuristicTargetNodes: 20,
  log: () => undefined,
};

beforeAll(async () => {
  await initTensorBackend();
});

function fieldOfError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    return isEsperError(error) ? error.details?.['field'] : undefined;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

function expectLatency(latency: LatencyMs, n: number): void {
  expect(Object.keys(latency).sort()).toEqual(['cpuMean', 'cpuP50', 'cpuP95', 'max', 'n', 'p50', 'p95']);
  expect(latency.n).toBe(n);
  expect(Number.isFinite(latency.p50)).toBe(true);
  expect(latency.p50).toBeGreaterThan(0);
  expect(latency.p95).toBeGreaterThanOrEqual(latency.p50);
  expect(latency.max).toBeGreaterThanOrEqual(latency.p95);
  expect(latency.cpuP95).toBeGreaterThanOrEqual(latency.cpuP50);
  expect(latency.cpuP50).toBeGreaterThanOrEqual(0);
  expect(Number.isFinite(latency.cpuMean)).toBe(true);
}

describe('tamiyo bench options', () => {
  it('defaults to the documented protocol: 10, 50 and 200 nodes, heuristic at 50', () => {
    const resolved = resolveTamiyoBenchOptions();
    expect(resolved.targetNodes).toEqual([10, 50, 200]);
    expect(resolved.heuristicTargetNodes).toBe(50);
    expect(resolved.runsPerRound * resolved.rounds).toBeGreaterThanOrEqual(200);
    expect(resolved).toEqual(TAMIYO_BENCH_DEFAULTS);
  });

  it('rejects bad options with INVALID_ARGUMENT naming the field', () => {
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ rounds: 0 }))).toBe('rounds');
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ runsPerRound: 1.5 }))).toBe('runsPerRound');
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ warmup: -1 }))).toBe('warmup');
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ targetNodes: [] }))).toBe('targetNodes');
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ targetNodes: [9] }))).toBe('targetNodes');
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ targetNodes: [50, 50] }))).toBe('targetNodes');
    expect(fieldOfError(() => resolveTamiyoBenchOptions({ heuristicTargetNodes: 5000 }))).toBe('heuristicTargetNodes');
  });
});

describe('tamiyo bench scenarios', () => {
  it('size the policy graph to exactly the target node count', () => {
    const catalog = new KarnCatalog();
    for (const target of [10, 50, 200]) {
      const scenario = scenarioFor(target, catalog);
      const builder = new GraphBuilder({ normaliser: new FeatureNormaliser(), registries: EmbeddingRegistries.inMemory() });
      const graph = builder.build({ packet: scenario.packet, host: scenario.host, blueprints: scenario.candidates });
      const nodes = NODE_TYPES.reduce((n, type) => n + graph.nodes[type].ids.length, 0);
      expect(nodes).toBe(target);
      expect(graph.nodes.seed.ids).toHaveLength(scenario.seeds);
      expect(graph.nodes.site.ids).toHaveLength(scenario.host.sites.length);
      expect(scenario.packet.metrics).toBeDefined();
      // Every candidate carries Urza graph metadata.
      expect(scenario.candidates.every((c) => c.graph !== undefined)).toBe(true);
    }
  });
});

describe('tamiyo bench run', () => {
  it('measures every series and returns one JSON-safe object of the documented shape, freeing its tensors', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const lines: string[] = [];
    const result = await runTamiyoBench({ ...TINY, log: (m) => lines.push(m) });
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result.bench).toBe('tamiyo');
    expect(result.protocol).toMatchObject({ warmup: 1, runsPerRound: 3, rounds: 2, interleaved: true });
    expect(result.gnn.parameters).toBeGreaterThan(0);
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(result.loadAvg).toHaveLength(3);
    // One line per size and one heuristic line per round, after one line per scenario.
    expect(lines.filter((l) => l.startsWith('round 2/2 '))).toHaveLength(3);

    expect(result.sizes.map((s) => s.targetNodes)).toEqual([10, 50]);
    for (const size of result.sizes) {
      expect(size.nodes).toBe(size.targetNodes);
      expect(NODE_TYPES.reduce((n, type) => n + size.nodesByType[type], 0)).toBe(size.nodes);
      expect(size.nodesByType.global).toBe(1);
      expect(size.edges).toBeGreaterThan(size.nodes);
      for (const latency of [size.buildMs, size.inferenceMs, size.decisionMs, size.decisionGerminateMs]) expectLatency(latency, 6);
      // The forced-germinate path signed a command on every timed decision.
      expect(size.germinateCommands).toBe(6);
      expect(size.decodedWait).toBeGreaterThanOrEqual(0);
      expect(size.decodedWait).toBeLessThanOrEqual(6);
    }
    expectLatency(result.heuristicDecisionMs, 6);
    expectLatency(result.heuristicWaitDecisionMs, 6);
    expect(result.heuristicNodes).toBe(20);
    // Every timed heuristic epoch call germinated through risk into a signed command.
    expect(result.heuristicCommands).toBe(6);
    expect(Object.keys(result.gc).sort()).toEqual(['count', 'maxMs', 'totalMs']);
    expect(result.gc.count).toBeGreaterThanOrEqual(0);

    expect(result.aims).toEqual(TAMIYO_AIMS);
    expect(typeof result.met.inferenceAt50).toBe('boolean');
    expect(result.met.inferenceAt50Fast).toBe(result.sizes.find((s) => s.targetNodes === 50)!.inferenceMs.p95 < 2.5);
    expect(typeof result.met.decisionWithinPrototypeBudget).toBe('boolean');
  });

  it('reports met as null for the 50-node aims when no size targets 50 nodes', async () => {
    const result = await runTamiyoBench({ ...TINY, targetNodes: [12], heuristicTargetNodes: 12, rounds: 1, runsPerRound: 1, warmup: 0 });
    expect(result.sizes.map((s) => s.nodes)).toEqual([12]);
    expect(result.met.inferenceAt50).toBeNull();
    expect(result.met.inferenceCpuAt50).toBeNull();
    expect(result.met.inferenceAt50Fast).toBeNull();
    expect(result.met.decisionAt50).toBeNull();
  });
});
