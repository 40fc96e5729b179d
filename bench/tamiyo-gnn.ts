/**
 * Tamiyo GNN inference benchmark: forward latency p50/p95 (200 forwards after 20 warm-up)
 * on random graphs of about 10, 50 and 200 nodes over the test relation list (21 reference
 * relations + 8 site relations), for the default sizes, the reference sizes (256/128/4)
 * and a few candidates in between; plus parameter counts, serialised payload bytes and
 * the mean CPU ms per forward (a contention-robust figure on a shared machine). Progress
 * on stderr, one JSON object as the last line of stdout.
 *
 *   npx tsx bench/tamiyo-gnn.ts
 */
import { CONTRACT_LIMITS } from '../src/core/index.js';
import { DEFAULT_GNN_CONFIG, gnnConfigFor, REFERENCE_GNN_SIZES, type GnnSizes } from '../src/tamiyo/gnn-config.js';
import { TamiyoGnn } from '../src/tamiyo/gnn.js';
import { serialisePolicy } from '../src/tamiyo/policy-weights.js';
import { describeTensorBackend, initTensorBackend, seededRng } from '../src/tensor/index.js';
import { edgeCount, graphOfSize, nodeCount, TEST_RELATIONS } from '../test/tamiyo/fixtures/graphs.js';
import { quantile } from './stats.js';

const WARMUP = 20;
const RUNS = 200;
const SIZES = [10, 50, 200] as const;

const CANDIDATES: readonly { name: string; sizes: Partial<GnnSizes> }[] = [
  { name: 'default', sizes: DEFAULT_GNN_CONFIG },
  { name: 'reference', sizes: REFERENCE_GNN_SIZES },
  { name: 'h32-g32-k2', sizes: { hidden: 32, gatHidden: 32, heads: 2 } },
  { name: 'h64-g64-k4', sizes: { hidden: 64, gatHidden: 64, heads: 4 } },
  { name: 'h128-g64-k4', sizes: { hidden: 128, gatHidden: 64, heads: 4 } },
];

const round = (x: number): number => Math.round(x * 1000) / 1000;

await initTensorBackend();
const results = [];
for (const candidate of CANDIDATES) {
  const config = gnnConfigFor(TEST_RELATIONS, candidate.sizes);
  const gnn = new TamiyoGnn(config, seededRng(1));
  const payloadBytes = serialisePolicy(gnn, { version: 'bench' }).byteLength;
  const bySize = [];
  for (const size of SIZES) {
    const graph = graphOfSize(seededRng(size), size);
    for (let i = 0; i < WARMUP; i += 1) gnn.forward(graph);
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < RUNS; i += 1) {
      const t0 = performance.now();
      gnn.forward(graph);
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    const row = {
      nodes: nodeCount(graph),
      edges: edgeCount(graph),
      p50Ms: round(quantile(times, 0.5)),
      p95Ms: round(quantile(times, 0.95)),
      cpuMsPerForward: round((cpu.user + cpu.system) / 1000 / RUNS),
    };
    process.stderr.write(`${candidate.name} ${JSON.stringify(row)}\n`);
    bySize.push(row);
  }
  results.push({
    name: candidate.name,
    hidden: config.hidden,
    gatHidden: config.gatHidden,
    heads: config.heads,
    parameterCount: gnn.parameterCount,
    payloadBytes,
    fitsPolicyUpdate: payloadBytes < CONTRACT_LIMITS.messageMaxBytes,
    latency: bySize,
  });
  gnn.dispose();
}
console.log(
  JSON.stringify({
    bench: 'tamiyo-gnn',
    backend: describeTensorBackend(),
    relations: TEST_RELATIONS.length,
    warmup: WARMUP,
    runs: RUNS,
    results,
  }),
);
