/**
 * Urza benchmark:
 * - compile time per Karn family: one representative blueprint per family (the first in
 *   catalog order) at the first bench site it fits, median of COMPILE_RUNS compiles;
 * - cold fetch (first load from a freshly opened library: SQLite row, file read, SHA-256
 *   check, module rebuild) and warm fetch (cached verified bytes + rebuild) medians, through
 *   `UrzaRuntime.fetchKernel`. "Cold" means Urza's cache is empty; the OS page cache is warm;
 * - the prototype's prefetch benchmark (`bench_kasmina_prefetch.py --requests 300
 *   --ready-latency-ms 40 --jitter-ms 8 --concurrency 6`, reference prototype-rc1-plan
 *   "Kasmina prefetch bench") reproduced on StreamBus over MemoryStreamStore: Kasmina sends
 *   `KernelPrefetchRequest`s with `bus.request` from 6 concurrent lanes; 6 real
 *   `UrzaPrefetchWorker`s (one consumer group) load and prewarm the real artifact, then a
 *   simulated readiness latency (40 ms ± 8 ms, uniform, seeded) is injected before each
 *   answer by wrapping the workers' bus here (no fake in live code). Overhead = measured
 *   request→ready latency minus the delay injected for that request (as actually slept;
 *   the nominal figure is reported too). Unlike the prototype's stub, the overhead here
 *   includes the real verified load and prewarm.
 *
 * Prints progress to stderr and one JSON object as the last line of stdout.
 *
 *   npm run bench:urza
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { create, isMessage } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { MemoryTelemetrySink } from '../src/core/index.js';
import { FamilyId, KarnCatalog } from '../src/karn/index.js';
import {
  BusMessageType,
  KernelArtifactReadySchema,
  KernelPrefetchRequestSchema,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  type BusMessage,
  type SeedSiteDescriptor,
} from '../src/leyline/index.js';
import type {
  Bus,
  BusMetrics,
  Delivery,
  PublishOptions,
  PublishReceipt,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from '../src/oona/bus.js';
import { MemoryStreamStore } from '../src/oona/memory-stream-store.js';
import { StreamBus } from '../src/oona/stream-bus.js';
import { KeyRing } from '../src/security/index.js';
import { initTensorBackend } from '../src/tensor/index.js';
import { TezzeretCompiler, type CompiledArtifact } from '../src/tezzeret/index.js';
import { UrzaLibrary } from '../src/urza/library.js';
import { UrzaPrefetchWorker } from '../src/urza/prefetch-worker.js';
import { UrzaRuntime } from '../src/urza/runtime.js';
import { quantile } from './stats.js';

/** Compiles per family (median reported). */
const COMPILE_RUNS = 5;
/** Fresh-library rounds of the fetch benchmark; each does one cold and WARM_FETCHES warm fetches per artifact. */
const FETCH_ROUNDS = 5;
const WARM_FETCHES = 5;
/** The prototype's prefetch benchmark parameters. */
const PREFETCH_REQUESTS = 300;
const PREFETCH_CONCURRENCY = 6;
const READY_LATENCY_MS = 40;
const JITTER_MS = 8;
const PREFETCH_WARMUP_REQUESTS = 24;
const PREFETCH_SEED = 0x5eed;
const REPLY_TIMEOUT_MS = 10_000;
const PROTOTYPE = { meanMs: 40.1, p50Ms: 39.9, p95Ms: 53.4 } as const;
const AIM_OVERHEAD_P50_MS = 1;

const site = (kind: SeedSiteKind, shape: number[]): SeedSiteDescriptor =>
  create(SeedSiteDescriptorSchema, { siteId: `bench-${shape.join('x')}`, kind, shape });
const BENCH_SITES = [site(SeedSiteKind.DENSE, [256]), site(SeedSiteKind.CONV, [16, 16, 32]), site(SeedSiteKind.CONV, [8, 8, 64])] as const;
const RING = new KeyRing([{ keyId: 'bench', secret: Buffer.from('urza-bench-secret-0123456789abcdef', 'utf8') }]);

function log(text: string): void {
  process.stderr.write(`[bench:urza] ${text}\n`);
}

function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function mean(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

function summary(values: readonly number[]): { meanMs: number; p50Ms: number; p95Ms: number; maxMs: number; samples: number } {
  return {
    meanMs: round(mean(values)),
    p50Ms: round(quantile(values, 0.5)),
    p95Ms: round(quantile(values, 0.95)),
    maxMs: round(Math.max(...values)),
    samples: values.length,
  };
}

/** mulberry32: a small seeded PRNG in [0, 1), so the jitter sequence is reproducible. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function siteKeyOf(s: SeedSiteDescriptor): string {
  return `${SeedSiteKind[s.kind].toLowerCase()}:${s.shape.join('x')}`;
}

interface Representative {
  readonly family: FamilyId;
  readonly blueprintId: string;
  readonly site: SeedSiteDescriptor;
  readonly siteKey: string;
}

/**
 * One blueprint per family at the first bench site it fits. The growth families (`widen`,
 * `widen_conv`) fit only a host's WIDEN sites, whose descriptor carries the host layer's path:
 * they are listed as skipped rather than given a made-up host.
 */
function representatives(catalog: KarnCatalog): { reps: Representative[]; skipped: { family: FamilyId; reason: string }[] } {
  const reps: Representative[] = [];
  const skipped: { family: FamilyId; reason: string }[] = [];
  for (const family of Object.values(FamilyId)) {
    const descriptor = catalog.list().find((d) => catalog.familyOf(d.blueprintId).id === family);
    if (descriptor === undefined) throw new Error(`no blueprint of family ${family}`);
    const config = catalog.familyOf(descriptor.blueprintId);
    const fitting = BENCH_SITES.find((s) => config.fits(s));
    if (fitting === undefined) {
      skipped.push({
        family,
        reason: `fits none of the bench sites (${BENCH_SITES.map(siteKeyOf).join(', ')}): a host's WIDEN sites only`,
      });
      continue;
    }
    reps.push({ family, blueprintId: descriptor.blueprintId, site: fitting, siteKey: siteKeyOf(fitting) });
  }
  return { reps, skipped };
}

interface CompileResult {
  readonly blueprintId: string;
  readonly site: string;
  readonly artifactBytes: number;
  readonly compileMedianMs: number;
  readonly compileMinMs: number;
  readonly prewarmP50Ms: number;
}

async function benchCompile(
  compiler: TezzeretCompiler,
  catalog: KarnCatalog,
  reps: readonly Representative[],
  library: UrzaLibrary,
): Promise<Record<string, CompileResult>> {
  const out: Record<string, CompileResult> = {};
  for (const rep of reps) {
    const descriptor = catalog.get(rep.blueprintId);
    const parameters = catalog.defaultParameters(rep.blueprintId);
    const times: number[] = [];
    let first: CompiledArtifact | undefined;
    for (let run = 0; run < COMPILE_RUNS; run += 1) {
      const compiled = await compiler.compile(descriptor, parameters, rep.site, { seed: run + 1 });
      times.push(compiled.compileMs);
      first ??= compiled;
    }
    if (first === undefined) throw new Error('no compile ran');
    await library.save({
      descriptor,
      siteKey: rep.siteKey,
      artifact: first.bytes,
      guardDigest: first.guardDigest,
      compileMs: first.compileMs,
      prewarm: first.prewarm,
    });
    out[rep.family] = {
      blueprintId: rep.blueprintId,
      site: rep.siteKey,
      artifactBytes: first.bytes.byteLength,
      compileMedianMs: round(quantile(times, 0.5)),
      compileMinMs: round(Math.min(...times)),
      prewarmP50Ms: round(first.prewarm.p50Ms),
    };
    log(
      `compile ${rep.family} (${rep.blueprintId} @ ${rep.siteKey}): median ${quantile(times, 0.5).toFixed(2)} ms, ${first.bytes.byteLength} bytes`,
    );
  }
  return out;
}

async function benchFetch(
  rootDir: string,
  catalog: KarnCatalog,
  reps: readonly Representative[],
): Promise<{ cold: number[]; warm: number[]; perFamily: Record<string, { coldMedianMs: number; warmMedianMs: number }> }> {
  const cold: number[] = [];
  const warm: number[] = [];
  const coldBy = new Map<string, number[]>();
  const warmBy = new Map<string, number[]>();
  let scope = 0;
  for (let roundIndex = 0; roundIndex < FETCH_ROUNDS; roundIndex += 1) {
    const library = await UrzaLibrary.open({ rootDir, telemetry: new MemoryTelemetrySink() });
    try {
      const runtime = new UrzaRuntime({ library, catalog });
      for (const rep of reps) {
        const fetch = async (): Promise<number> => {
          scope += 1;
          const fetched = await runtime.fetchKernel(rep.blueprintId, rep.siteKey, { scope: `bench-fetch-${scope}` });
          fetched.module.dispose();
          return fetched.fetchMs;
        };
        const c = await fetch();
        cold.push(c);
        coldBy.set(rep.family, [...(coldBy.get(rep.family) ?? []), c]);
        for (let i = 0; i < WARM_FETCHES; i += 1) {
          const w = await fetch();
          warm.push(w);
          warmBy.set(rep.family, [...(warmBy.get(rep.family) ?? []), w]);
        }
      }
      const stats = library.stats();
      log(`fetch round ${roundIndex + 1}/${FETCH_ROUNDS}: library stats ${JSON.stringify(stats)}`);
    } finally {
      await library.close();
    }
  }
  const perFamily: Record<string, { coldMedianMs: number; warmMedianMs: number }> = {};
  for (const rep of reps) {
    perFamily[rep.family] = {
      coldMedianMs: round(quantile(coldBy.get(rep.family) ?? [], 0.5)),
      warmMedianMs: round(quantile(warmBy.get(rep.family) ?? [], 0.5)),
    };
  }
  return { cold, warm, perFamily };
}

/**
 * The workers' view of the bus: every call goes straight through, except that `reply`
 * first sleeps the simulated readiness latency chosen for that request (keyed by the
 * correlation id of the request delivery) and records how long it actually slept.
 */
class SimulatedReadinessBus implements Bus {
  readonly #inner: Bus;
  readonly #delayMsOf: (correlationId: string) => number;
  readonly slept = new Map<string, number>();
  readonly replyCalledAtMs = new Map<string, number>();

  constructor(inner: Bus, delayMsOf: (correlationId: string) => number) {
    this.#inner = inner;
    this.#delayMsOf = delayMsOf;
  }

  publish(message: BusMessage, options?: PublishOptions): Promise<PublishReceipt> {
    return this.#inner.publish(message, options);
  }

  subscribe(options: SubscribeOptions): Subscription {
    return this.#inner.subscribe(options);
  }

  request(message: BusMessage, options: RequestOptions): Promise<Delivery> {
    return this.#inner.request(message, options);
  }

  async reply(to: Delivery, message: BusMessage, options?: Omit<PublishOptions, 'correlationId'>): Promise<PublishReceipt> {
    const startMs = performance.now();
    this.replyCalledAtMs.set(to.correlationId, startMs);
    await new Promise<void>((resolve) => setTimeout(resolve, this.#delayMsOf(to.correlationId)));
    this.slept.set(to.correlationId, performance.now() - startMs);
    return this.#inner.reply(to, message, options);
  }

  metrics(): BusMetrics {
    return this.#inner.metrics();
  }

  housekeeping(): ReturnType<Bus['housekeeping']> {
    return this.#inner.housekeeping();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#inner.close();
  }
}

interface PrefetchSample {
  readonly latencyMs: number;
  readonly nominalDelayMs: number;
  readonly sleptMs: number;
  /** Send → the worker's reply call (bus delivery + verified load + prewarm). */
  readonly requestLegMs: number;
  /** End of the simulated wait → Kasmina holds the READY (reply publish + delivery). */
  readonly replyLegMs: number;
}

async function benchPrefetch(
  rootDir: string,
  catalog: KarnCatalog,
  rep: Representative,
  prewarmPasses: number,
): Promise<{ samples: PrefetchSample[]; errors: number; prewarmPasses: number }> {
  const store = new MemoryStreamStore();
  const bus = new StreamBus({ store, keyRing: RING, telemetry: new MemoryTelemetrySink(), readCount: 1 });
  const library = await UrzaLibrary.open({ rootDir, telemetry: new MemoryTelemetrySink() });
  const random = seededRandom(PREFETCH_SEED);
  // Kasmina's requests and the delays chosen for them, by the correlation id `bus.request`
  // gives them; the id is not known before the call, so delays are handed out in
  // order of arrival at the worker from a seeded sequence (the same sequence every run).
  const delays = new Map<string, number>();
  const delayMsOf = (correlationId: string): number => {
    let delay = delays.get(correlationId);
    if (delay === undefined) {
      delay = READY_LATENCY_MS + (random() * 2 - 1) * JITTER_MS;
      delays.set(correlationId, delay);
    }
    return delay;
  };
  const workerBus = new SimulatedReadinessBus(bus, delayMsOf);
  const workers: UrzaPrefetchWorker[] = [];
  try {
    for (let i = 0; i < PREFETCH_CONCURRENCY; i += 1) {
      const worker = new UrzaPrefetchWorker({
        bus: workerBus,
        library,
        catalog,
        telemetry: new MemoryTelemetrySink(),
        consumer: `urza-prefetch-bench-${i}`,
        prewarmPasses,
      });
      workers.push(worker);
      await worker.start();
    }
    const samples: PrefetchSample[] = [];
    let errors = 0;
    const runLanes = async (total: number, record: boolean): Promise<void> => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < total) {
          next += 1;
          const message = create(KernelPrefetchRequestSchema, {
            requestId: `bench-${randomUUID()}`,
            blueprintId: rep.blueprintId,
            trainingRunId: 'run-urza-bench',
            seedId: rep.siteKey,
            issuedAt: timestampFromMs(Date.now()),
          });
          const startMs = performance.now();
          try {
            const delivery = await bus.request(message, { replyType: BusMessageType.KERNEL_PREFETCH_READY, timeoutMs: REPLY_TIMEOUT_MS });
            const endMs = performance.now();
            if (!isMessage(delivery.message, KernelArtifactReadySchema)) throw new Error(`unexpected ${delivery.message.$typeName}`);
            if (!record) continue;
            const id = delivery.correlationId;
            const sleptMs = workerBus.slept.get(id) ?? Number.NaN;
            const replyCalledAtMs = workerBus.replyCalledAtMs.get(id) ?? Number.NaN;
            samples.push({
              latencyMs: endMs - startMs,
              nominalDelayMs: delays.get(id) ?? Number.NaN,
              sleptMs,
              requestLegMs: replyCalledAtMs - startMs,
              replyLegMs: endMs - (replyCalledAtMs + sleptMs),
            });
          } catch (error) {
            errors += 1;
            log(`prefetch request failed: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: PREFETCH_CONCURRENCY }, () => lane()));
    };
    log(`prefetch warm-up: ${PREFETCH_WARMUP_REQUESTS} requests`);
    await runLanes(PREFETCH_WARMUP_REQUESTS, false);
    log(
      `prefetch ${rep.blueprintId} (prewarm ${prewarmPasses}): ${PREFETCH_REQUESTS} requests, concurrency ${PREFETCH_CONCURRENCY}, readiness ${READY_LATENCY_MS} ± ${JITTER_MS} ms`,
    );
    await runLanes(PREFETCH_REQUESTS, true);
    const hits = workers.reduce((s, w) => s + w.stats().hits, 0);
    log(`prefetch done: ${samples.length} samples, ${errors} errors, worker hits ${hits}`);
    return { samples, errors, prewarmPasses };
  } finally {
    for (const worker of workers.reverse()) await worker.close();
    await bus.close();
    await store.close();
    await library.close();
  }
}

function prefetchReport(rep: Representative, run: { samples: PrefetchSample[]; errors: number; prewarmPasses: number }) {
  const { samples } = run;
  return {
    blueprint: rep.blueprintId,
    family: rep.family,
    site: rep.siteKey,
    worker_prewarm_passes: run.prewarmPasses,
    errors: run.errors,
    latency: summary(samples.map((s) => s.latencyMs)),
    injected_delay_slept: summary(samples.map((s) => s.sleptMs)),
    overhead_above_slept_delay: summary(samples.map((s) => s.latencyMs - s.sleptMs)),
    overhead_above_nominal_delay: summary(samples.map((s) => s.latencyMs - s.nominalDelayMs)),
    breakdown_p50_ms: {
      request_leg: round(
        quantile(
          samples.map((s) => s.requestLegMs),
          0.5,
        ),
      ),
      reply_leg: round(
        quantile(
          samples.map((s) => s.replyLegMs),
          0.5,
        ),
      ),
      timer_overshoot: round(
        quantile(
          samples.map((s) => s.sleptMs - s.nominalDelayMs),
          0.5,
        ),
      ),
    },
  };
}

async function main(): Promise<void> {
  const loadAtStart = round(loadavg()[0] ?? 0, 2);
  await initTensorBackend();
  const catalog = new KarnCatalog();
  const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 3 });
  const rootDir = await mkdtemp(path.join(tmpdir(), 'urza-bench-'));
  try {
    const { reps, skipped } = representatives(catalog);
    for (const s of skipped) log(`skipping family ${s.family}: ${s.reason}`);
    log(`compiling ${reps.length} families × ${COMPILE_RUNS}`);
    const library = await UrzaLibrary.open({ rootDir, telemetry: new MemoryTelemetrySink() });
    let compile: Record<string, CompileResult>;
    try {
      compile = await benchCompile(compiler, catalog, reps, library);
    } finally {
      await library.close();
    }

    log(`fetching: ${FETCH_ROUNDS} fresh-library rounds × ${reps.length} artifacts (1 cold + ${WARM_FETCHES} warm each)`);
    const fetch = await benchFetch(rootDir, catalog, reps);

    // Two runs: a light kernel (norm_affine, one prewarm pass), which like the prototype's
    // stub leaves mostly the coordinator and bus, and a heavier one (residual_mlp, the
    // worker's default 5 prewarm passes), whose synchronous load + prewarm shares the one
    // JS thread with the 6 lanes' timers.
    const lightRep = reps.find((r) => r.family === FamilyId.NORM_AFFINE) as Representative;
    const heavyRep = reps.find((r) => r.family === FamilyId.RESIDUAL_MLP) as Representative;
    const light = prefetchReport(lightRep, await benchPrefetch(rootDir, catalog, lightRep, 1));
    const heavy = prefetchReport(heavyRep, await benchPrefetch(rootDir, catalog, heavyRep, 5));
    const overheadP50Ms = light.overhead_above_slept_delay.p50Ms;
    const heavyOverheadP50Ms = heavy.overhead_above_slept_delay.p50Ms;

    process.stdout.write(
      `${JSON.stringify({
        bench: 'urza',
        node: process.version,
        cpus: cpus().length,
        load_average_1m_at_start: loadAtStart,
        fetch: {
          method:
            'UrzaRuntime.fetchKernel; cold = first load from a freshly opened library (row + file read + SHA-256 + rebuild, OS page cache warm); warm = cached verified bytes + rebuild',
          rounds: FETCH_ROUNDS,
          artifacts: reps.length,
          cold_median_ms: round(quantile(fetch.cold, 0.5)),
          cold_p95_ms: round(quantile(fetch.cold, 0.95)),
          warm_median_ms: round(quantile(fetch.warm, 0.5)),
          warm_p95_ms: round(quantile(fetch.warm, 0.95)),
          per_family: fetch.perFamily,
        },
        compile_per_family: {
          runs: COMPILE_RUNS,
          prewarm_samples: 3,
          families: compile,
          skipped: skipped,
        },
        prefetch: {
          method:
            'StreamBus on MemoryStreamStore; Kasmina bus.request from 6 lanes → 6 UrzaPrefetchWorkers (one group) doing the real verified load + prewarm, then a seeded uniform 40 ± 8 ms delay before reply (bench wrapper); overhead = latency − delay actually slept',
          requests: PREFETCH_REQUESTS,
          warmup_requests: PREFETCH_WARMUP_REQUESTS,
          concurrency: PREFETCH_CONCURRENCY,
          ready_latency_ms: READY_LATENCY_MS,
          jitter_ms: JITTER_MS,
          seed: PREFETCH_SEED,
          light_kernel: light,
          real_kernel: heavy,
          prototype: PROTOTYPE,
        },
        aims: {
          overhead_p50_max_ms: AIM_OVERHEAD_P50_MS,
          overhead_p50_ms: overheadP50Ms,
          overhead_p50_lt_1ms: overheadP50Ms < AIM_OVERHEAD_P50_MS,
          real_kernel_overhead_p50_ms: heavyOverheadP50Ms,
          real_kernel_overhead_p50_lt_1ms: heavyOverheadP50Ms < AIM_OVERHEAD_P50_MS,
        },
      })}\n`,
    );
  } finally {
    await rm(rootDir, { recursive: true, force: true });
  }
}

await main();
