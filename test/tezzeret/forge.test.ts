import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, MemoryTelemetrySink, RecordLog } from '../../src/core/index.js';
import { BusMessageType, type KernelCatalogUpdate, type SeedSiteDescriptor } from '../../src/leyline/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { parseUrzaArtifactRef, UrzaLibrary } from '../../src/urza/index.js';
import { loadArtifact, TezzeretCompiler } from '../../src/tezzeret/compiler.js';
import type { ForgeCompiler } from '../../src/tezzeret/compile-deadline.js';
import { TezzeretForge, type ForgeRunSummary } from '../../src/tezzeret/forge.js';
import { forgeJobsFor, siteKeyOf } from '../../src/tezzeret/forge-jobs.js';
import { TezzeretForgeEvent, TezzeretForgeMetric } from '../../src/tezzeret/names.js';
import { BENCH_SITES, crashJobs } from './fixtures/forge-jobs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'fixtures', 'forge-child.ts');
const catalog = new KarnCatalog();
const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tezzeret-forge-'));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  await initTensorBackend();
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function input(s: SeedSiteDescriptor, seed: number): tf.Tensor {
  const rng = seededRng(seed);
  const shape = [2, ...s.shape];
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i += 1) values[i] = rng.nextNormal();
  return tf.tensor(values, shape);
}

/** Every catalogued artifact loads with its checksum verified; returns `job → guardDigest`. */
async function verifiedCatalog(library: UrzaLibrary): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of library.list()) {
    for (const siteKey of entry.siteKeys) {
      const loaded = await library.load(entry.descriptor.blueprintId, siteKey);
      out.set(`${entry.descriptor.blueprintId}@${siteKey}`, loaded.record.guardDigest);
    }
  }
  return out;
}

function digestsOf(summary: ForgeRunSummary): Map<string, string> {
  return new Map(summary.jobs.map((j) => [`${j.blueprintId}@${j.siteKey}`, j.guardDigest ?? '']));
}

/** A clean run's digests per job, shared by the crash tests. */
let cleanDigests: Map<string, string> | undefined;

describe('TezzeretForge over the 50 default descriptors', () => {
  it('forges every descriptor at every bench site it fits, publishes KernelCatalogUpdate, and each artifact loads by checksum and runs forward+backward', async () => {
    const dir = await tempDir();
    const library = await UrzaLibrary.open({ rootDir: path.join(dir, 'urza') });
    const bus = new StreamBus({
      store: new MemoryStreamStore(),
      keyRing: new KeyRing([{ keyId: 'k1', secret: Buffer.from('forge-test-secret-0123456789', 'utf8') }]),
      telemetry: new MemoryTelemetrySink(),
      blockMs: 20,
      reclaimIntervalMs: 20,
    });
    const updates: KernelCatalogUpdate[] = [];
    const sub = bus.subscribe({
      group: 'catalog',
      consumer: 'c',
      types: [BusMessageType.KERNEL_CATALOG_UPDATE],
      handler: (d) => {
        updates.push(d.message as KernelCatalogUpdate);
      },
    });
    const sink = new MemoryTelemetrySink();
    try {
      await sub.ready;
      const forge = new TezzeretForge({ compiler, library, bus, telemetry: sink, walPath: path.join(dir, 'forge.wal') });
      const jobs = forgeJobsFor(catalog, BENCH_SITES);
      const summary = await forge.forgeAll(BENCH_SITES);
      expect(new Set(jobs.map((j) => j.blueprintId)).size).toBe(50);
      expect(summary.completed).toBe(jobs.length);
      expect(summary.failed + summary.skipped + summary.notAttempted).toBe(0);
      console.log(`forge: ${jobs.length} jobs (50 descriptors × fitting bench sites) in ${summary.durationMs.toFixed(0)} ms`);

      const tensorsBefore = tf.memory().numTensors;
      for (const job of summary.jobs) {
        const loaded = await library.load(job.blueprintId, job.siteKey);
        expect(loaded.record.checksum).toBe(job.checksum);
        const s = jobs.find((j) => j.blueprintId === job.blueprintId && siteKeyOf(j.site) === job.siteKey)?.site as SeedSiteDescriptor;
        const module = loadArtifact(loaded.bytes, { catalog, scope: `forge-${job.blueprintId}-${job.siteKey}` });
        try {
          const report = tf.tidy(() => {
            const x = input(s, 11);
            const r = input(s, 12);
            const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(module.apply(x), r)) as tf.Scalar, [...module.variables]);
            return { loss: value.dataSync()[0] as number, norms: Object.values(grads).map((g) => tf.norm(g).dataSync()[0] as number) };
          });
          expect(Number.isFinite(report.loss), `${job.blueprintId}@${job.siteKey}`).toBe(true);
          expect(report.norms.length).toBe(module.variables.length);
          expect(report.norms.every(Number.isFinite), `${job.blueprintId}@${job.siteKey}`).toBe(true);
        } finally {
          module.dispose();
        }
      }
      expect(tf.memory().numTensors).toBe(tensorsBefore);

      const deadline = Date.now() + 10_000;
      while (updates.length < jobs.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(updates.length).toBe(jobs.length);
      const first = updates.find((u) => u.blueprintId === summary.jobs[0]?.blueprintId);
      expect(first?.checksum).toBe(summary.jobs[0]?.checksum);
      expect(parseUrzaArtifactRef(first?.artifactRef ?? '')).toEqual({
        blueprintId: summary.jobs[0]?.blueprintId,
        siteKey: summary.jobs[0]?.siteKey,
      });
      expect(first?.guardDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(first?.compileMs).toBeGreaterThan(0);

      const metrics = forge.metricsSnapshot();
      expect(metrics[TezzeretForgeMetric.JOBS_COMPLETED]).toBe(jobs.length);
      expect(metrics[TezzeretForgeMetric.BREAKER_STATE]).toBe(0);
      expect(
        sink.packets.some(
          (p) => p.sourceSubsystem === 'tezzeret' && p.events.some((e) => e.description === TezzeretForgeEvent.COMPILE_SUCCEEDED),
        ),
      ).toBe(true);

      const again = await forge.forgeAll(BENCH_SITES);
      expect(again.skipped).toBe(jobs.length);
      expect(again.completed).toBe(0);
      const wal = await RecordLog.open(path.join(dir, 'forge.wal'));
      expect((await wal.readAll()).length).toBe(jobs.length);
      await wal.close();
      cleanDigests = digestsOf(summary);
    } finally {
      await sub.close();
      await bus.close();
      await library.close();
    }
  }, 60_000);
});

interface ChildOutcome {
  readonly started: string[];
  readonly done: string[];
  readonly killed: boolean;
}

/**
 * Runs the forge child and SIGKILLs it as soon as it reports `at` lines of kind `on`:
 * after the k-th completed job (`done`), or inside a job right after it started (`started`).
 */
function runChild(dir: string, on: 'done' | 'started', at: number): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const started: string[] = [];
    const done: string[] = [];
    let killed = false;
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, job] = line.split(' ');
        if (kind === 'started' && job !== undefined) started.push(job);
        if (kind === 'done' && job !== undefined) done.push(job);
        if (!killed && (on === 'done' ? done : started).length >= at) {
          killed = child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' || code === 0) resolve({ started, done, killed: signal === 'SIGKILL' });
      else reject(new Error(`forge child exited with ${code}: ${stderr}`));
    });
  });
}

describe('TezzeretForge crash recovery (child process, SIGKILL)', () => {
  const jobs = crashJobs(catalog);
  const rng = seededRng(0xf0a6e);
  const killPoints = (['done', 'started', 'started'] as const).map((on) => ({
    on,
    k: 1 + Math.floor(rng.nextFloat() * (jobs.length - 2)),
  }));

  for (const [i, { on, k }] of killPoints.entries()) {
    it(`a forge killed at its ${k}-th '${on}' of ${jobs.length} jobs (kill point ${i + 1}) leaves Urza consistent, and the next run redoes only the missing jobs`, async () => {
      const dir = await tempDir();
      const outcome = await runChild(dir, on, k);
      expect(outcome.killed).toBe(true);
      expect(on === 'done' ? outcome.done.length : outcome.started.length).toBeGreaterThanOrEqual(k);

      const library = await UrzaLibrary.open({ rootDir: path.join(dir, 'urza') });
      try {
        const before = await verifiedCatalog(library);
        expect(before.size).toBeGreaterThanOrEqual(outcome.done.length);
        // at most one job finished unseen plus one saved whose `done` record was not written
        expect(before.size).toBeLessThanOrEqual(outcome.done.length + 2);

        const forge = new TezzeretForge({ compiler, library, walPath: path.join(dir, 'forge.wal') });
        const summary = await forge.run(jobs);
        console.log(
          `kill point ${i + 1}: killed after ${outcome.done.length} done / ${outcome.started.length} started; resume skipped ${summary.skipped}, redid ${summary.completed} (resumed ${summary.resumed})`,
        );
        // SIGKILL lands asynchronously: the child prints after its WAL record is durable and
        // keeps working until the signal arrives, so the WAL may hold one more `done` (or one
        // more `started`) than the parent had read. Jobs run one at a time, so at most one
        // job can be interrupted.
        const unseenDone = summary.skipped - outcome.done.length;
        expect(unseenDone === 0 || unseenDone === 1).toBe(true);
        expect(summary.completed + summary.skipped).toBe(jobs.length);
        expect(summary.failed).toBe(0);
        expect(summary.resumed).toBeLessThanOrEqual(1);
        if (outcome.started.length > outcome.done.length) {
          expect(summary.resumed + unseenDone).toBeGreaterThanOrEqual(1);
        }
        const skippedJobs = summary.jobs.filter((j) => j.status === 'skipped').map((j) => `${j.blueprintId}@${j.siteKey}`);
        expect(skippedJobs).toEqual(expect.arrayContaining(outcome.done));

        const after = await verifiedCatalog(library);
        expect([...after.keys()].sort()).toEqual(jobs.map((j) => `${j.blueprintId}@${siteKeyOf(j.site)}`).sort());
        if (cleanDigests !== undefined) for (const [job, digest] of after) expect(digest).toBe(cleanDigests.get(job));
      } finally {
        await library.close();
      }
    }, 40_000);
  }
});

describe('TezzeretForge retries, breaker and conservative mode', () => {
  const DENSE = BENCH_SITES[0] as SeedSiteDescriptor;
  const job = (id: string) => ({ blueprintId: id, site: DENSE });

  async function harness(primary: ForgeCompiler, extra: Partial<ConstructorParameters<typeof TezzeretForge>[0]> = {}) {
    const dir = await tempDir();
    const library = await UrzaLibrary.open({ rootDir: path.join(dir, 'urza') });
    const sink = new MemoryTelemetrySink();
    const forge = new TezzeretForge({
      compiler: primary,
      library,
      telemetry: sink,
      walPath: path.join(dir, 'forge.wal'),
      backoffBaseMs: 1,
      ...extra,
    });
    return { library, sink, forge, dir };
  }

  const events = (sink: MemoryTelemetrySink) => sink.packets.flatMap((p) => p.events.map((e) => e.description));

  it('retries a transient failure with backoff and completes the job', async () => {
    let failures = 2;
    const flaky: ForgeCompiler = {
      catalog,
      compile: async (...args) => {
        if (failures-- > 0) throw new Error('flaky compile');
        return compiler.compile(...args);
      },
    };
    const { library, forge, sink } = await harness(flaky, { maxRetries: 2 });
    try {
      const summary = await forge.run([job('BP001')]);
      expect(summary.jobs[0]).toMatchObject({ status: 'completed', attempts: 3, strategy: 'standard' });
      const metrics = forge.metricsSnapshot();
      expect(metrics[TezzeretForgeMetric.JOBS_RETRIED]).toBe(2);
      expect(metrics[TezzeretForgeMetric.FAILED_ATTEMPTS]).toBe(2);
      expect(metrics[TezzeretForgeMetric.COMPILE_CONSECUTIVE_FAILURES]).toBe(0);
      expect(events(sink).filter((e) => e === TezzeretForgeEvent.COMPILE_FAILED)).toHaveLength(2);
      expect((await library.load('BP001', 'dense:256')).record.checksum).toBe(summary.jobs[0]?.checksum);
    } finally {
      await library.close();
    }
  });

  it('does not retry a terminal error (invalid parameters) and moves on to the next job', async () => {
    const terminal: ForgeCompiler = {
      catalog,
      compile: async (descriptor, parameters, site, options) =>
        descriptor.blueprintId === 'BP001'
          ? compiler.compile(descriptor, { nonexistent_knob: 1 }, site, options)
          : compiler.compile(descriptor, parameters, site, options),
    };
    const { library, forge } = await harness(terminal, { maxRetries: 3 });
    try {
      const summary = await forge.run([job('BP001'), job('BP002')]);
      expect(summary.jobs.map((j) => [j.status, j.attempts])).toEqual([
        ['failed', 1],
        ['completed', 1],
      ]);
      expect(summary.jobs[0]?.reason).toBe(ErrorCode.KARN_PARAMETER_INVALID);
    } finally {
      await library.close();
    }
  });

  it('opens the breaker after repeated failures, stops the run, enters conservative mode, and a later run finishes the jobs', async () => {
    let broken = true;
    const failing: ForgeCompiler = {
      catalog,
      compile: async (...args) => {
        if (broken) throw new Error('compiler down');
        return compiler.compile(...args);
      },
    };
    const clock = new FakeClock();
    const { library, forge, sink } = await harness(failing, {
      maxRetries: 1,
      breakerFailureThreshold: 3,
      breakerOpenTimeoutMs: 1_000,
      clock,
      conservativeCompiler: failing,
    });
    try {
      const jobs = [job('BP001'), job('BP002'), job('BP003')];
      const first = await forge.run(jobs);
      expect(first.jobs.map((j) => [j.status, j.attempts])).toEqual([
        ['failed', 2],
        ['failed', 1],
        ['not_attempted', 0],
      ]);
      expect(first.stoppedByBreaker).toBe(true);
      expect(forge.conservativeMode).toBe(true);
      const metrics = forge.metricsSnapshot();
      expect(metrics[TezzeretForgeMetric.BREAKER_STATE]).toBe(2);
      expect(metrics[TezzeretForgeMetric.BREAKER_OPEN_TOTAL]).toBe(1);
      expect(metrics[TezzeretForgeMetric.MODE_CONSERVATIVE]).toBe(1);
      expect(events(sink)).toContain(TezzeretForgeEvent.BREAKER_OPEN);
      expect(events(sink)).toContain(TezzeretForgeEvent.BREAKER_OPEN_SKIP);

      broken = false;
      clock.advance(1_000);
      const second = await forge.run(jobs);
      expect(second.jobs.map((j) => [j.status, j.strategy])).toEqual([
        ['completed', 'conservative'],
        ['completed', 'standard'],
        ['completed', 'standard'],
      ]);
      expect(forge.conservativeMode).toBe(false);
      expect(forge.metricsSnapshot()[TezzeretForgeMetric.BREAKER_STATE]).toBe(0);
    } finally {
      await library.close();
    }
  });

  it('counts a synchronous compile that overruns its deadline as a timeout, discards the artifact and retries in conservative mode', async () => {
    const clock = new FakeClock();
    const slow: ForgeCompiler = {
      catalog,
      compile: async (...args) => {
        const artifact = await compiler.compile(...args);
        clock.advance(500);
        return artifact;
      },
    };
    const conservative = new TezzeretCompiler({ catalog, prewarmSamples: 1, prewarmBatch: 1 });
    const { library, forge } = await harness(slow, { timeoutMs: 100, clock, conservativeCompiler: conservative });
    try {
      const summary = await forge.run([job('BP004')]);
      expect(summary.jobs[0]).toMatchObject({ status: 'completed', attempts: 2, strategy: 'conservative' });
      const metrics = forge.metricsSnapshot();
      expect(metrics[TezzeretForgeMetric.TIMED_OUT]).toBe(1);
      expect(metrics[TezzeretForgeMetric.MODE_CONSERVATIVE]).toBe(0);
      expect(library.artifacts('BP004')).toHaveLength(1);
    } finally {
      await library.close();
    }
  });

  it('times out an asynchronous compile at its deadline through the worker and waits for it to settle', async () => {
    let settled = 0;
    const hanging: ForgeCompiler = {
      catalog,
      compile: async () => {
        await new Promise((r) => setTimeout(r, 300));
        settled += 1;
        throw new Error('too late anyway');
      },
    };
    const { library, forge } = await harness(hanging, { timeoutMs: 30, maxRetries: 0, conservativeCompiler: hanging });
    try {
      const summary = await forge.run([job('BP001')]);
      expect(summary.jobs[0]).toMatchObject({ status: 'failed', reason: 'timeout' });
      expect(settled).toBe(1);
      expect(forge.conservativeMode).toBe(true);
    } finally {
      await library.close();
    }
  });
});
