/**
 * Soak of the shared async worker: the six scenarios of the prototype's soak plan
 * (prototype-rc1-plan §2.2, "Soak plan and harness"), with its `SoakConfig` defaults turned
 * into milliseconds. Every run is driven by a seeded PRNG, so a failure names its seed and
 * can be replayed with `ESPER_SOAK_SEED=<seed>`; `ESPER_SOAK_ITERATIONS` scales the run up.
 *
 * Invariants checked in every scenario:
 * - concurrency is never exceeded (tracked inside the tasks, abandoned ones included);
 * - every timed-out result rejects within {@link SOAK.timeoutSlackMs} after its deadline,
 *   measured from submission with `performance.now()`;
 * - an aborted task that had started sees `signal.aborted` inside itself; a task aborted
 *   while queued never starts;
 * - the worker's counters agree with what the callers observed.
 *
 * Arrival gaps between submissions are deliberate load shaping, not waits for async work.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AsyncWorker } from '../../src/core/async-worker.js';
import { ErrorCode, EsperError, isEsperError } from '../../src/core/errors.js';

/** The reference `SoakConfig`, in ms, plus this suite's knobs. */
const SOAK = {
  seed: Number(process.env.ESPER_SOAK_SEED ?? 0x5eed2026),
  iterations: Number(process.env.ESPER_SOAK_ITERATIONS ?? 2),
  concurrencyLevels: [2, 4],
  jobsPerIteration: 64,
  longJobMs: 120,
  shortJobMs: 20,
  timeoutMs: 50,
  cancelDelayMs: 10,
  timeoutProbability: 0.2,
  cancellationProbability: 0.15,
  failureProbability: 0.1,
  jitterMs: 20,
  /**
   * Acceptance bound: a timed-out result rejects at most this long after its deadline,
   * beyond the lateness of a plain timer armed for the same deadline (load delays both).
   */
  timeoutSlackMs: 25,
  /** Reconfiguration cycles per iteration. */
  reconfigurationCycles: 6,
} as const;

const SCENARIO_TIMEOUT_MS = 30_000;

/**
 * Event-loop stalls seen during the soak, reported next to a late timeout so a failure
 * says whether the whole process was starved (a loaded box) or the worker was late.
 */
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
beforeAll(() => loopDelay.enable());
afterAll(() => loopDelay.disable());

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rng {
  readonly seed: number;
  next(): number;
  between(min: number, max: number): number;
  chance(p: number): boolean;
  int(minInclusive: number, maxInclusive: number): number;
}

function makeRng(scenario: number): Rng {
  const seed = (SOAK.seed + scenario * 0x9e3779b9) >>> 0;
  const next = prng(seed);
  return {
    seed,
    next,
    between: (min, max) => min + next() * (max - min),
    chance: (p) => next() < p,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
  };
}

/** Counts tasks executing right now, as seen from inside them. */
class InFlightProbe {
  current = 0;
  max = 0;
  enter(): void {
    this.current += 1;
    this.max = Math.max(this.max, this.current);
  }
  exit(): void {
    this.current -= 1;
  }
}

type JobKind =
  /** Succeeds with 'ok'; no deadline. */
  | 'ok'
  /** Throws `error`; no deadline. */
  | 'fail'
  /** Runs far past its deadline; must time out. */
  | 'timeout'
  /** Cancelled after a delay, through its handle or its caller's signal. */
  | 'cancel'
  /** Has a deadline close to its duration: either outcome is fine, but checked. */
  | 'race'
  /** Never settles at all (shutdown-bound checks). */
  | 'never';

interface JobSpec {
  readonly index: number;
  readonly kind: JobKind;
  readonly durationMs: number;
  readonly deadlineMs?: number;
  /** Sleeps without its signal, i.e. ignores aborts. */
  readonly ignoresSignal: boolean;
  readonly error?: unknown;
  /** Throws synchronously instead of rejecting later. */
  readonly failSync?: boolean;
  readonly cancelAfterMs?: number;
  /** Whether `cancelAfterMs` counts from submission or from the task's start. */
  readonly cancelFrom?: 'submit' | 'start';
  readonly cancelVia?: 'handle' | 'signal';
}

type Outcome =
  | { readonly kind: 'ok'; readonly value: unknown; readonly at: number }
  | { readonly kind: 'failed'; readonly error: unknown; readonly at: number }
  | { readonly kind: 'timeout' | 'cancelled'; readonly error: EsperError; readonly at: number };

interface JobRun {
  readonly spec: JobSpec;
  readonly submittedAt: number;
  readonly handle: ReturnType<AsyncWorker['submit']>;
  readonly outcome: Promise<Outcome>;
  readonly controller: AbortController;
  settled: Outcome | undefined;
  started: boolean;
  bodyCompleted: boolean;
  sawAbort: boolean | undefined;
  endedAt: number | undefined;
  ended: Promise<void>;
  cancelEffective: boolean | undefined;
  cancelTimer: NodeJS.Timeout | undefined;
  /**
   * When a plain timer armed at submission for the job's deadline fired: the baseline of
   * what "on time" means in this process right now (a starved event loop delays every timer).
   */
  referenceFiredAt: number | undefined;
}

function classify(error: unknown, at: number): Outcome {
  if (isEsperError(error, ErrorCode.WORKER_TIMEOUT)) return { kind: 'timeout', error, at };
  if (isEsperError(error, ErrorCode.WORKER_CANCELLED)) return { kind: 'cancelled', error, at };
  return { kind: 'failed', error, at };
}

function issueCancel(run: JobRun): void {
  run.cancelTimer = undefined;
  if (run.spec.cancelVia === 'signal') {
    const pending = run.handle.state === 'queued' || run.handle.state === 'running';
    run.controller.abort(new Error('soak cancel'));
    run.cancelEffective = pending;
  } else {
    run.cancelEffective = run.handle.cancel('soak cancel');
  }
}

/** Submits one job, instrumenting its task; `null` if submit refused it (queue full). */
function submitJob(worker: AsyncWorker, spec: JobSpec, probe: InFlightProbe): JobRun | null {
  let endedResolve!: () => void;
  const ended = new Promise<void>((resolve) => (endedResolve = resolve));
  const controller = new AbortController();
  const run = {
    spec,
    controller,
    settled: undefined,
    started: false,
    bodyCompleted: false,
    sawAbort: undefined,
    endedAt: undefined,
    ended,
    cancelEffective: undefined,
    cancelTimer: undefined,
    referenceFiredAt: undefined,
  } as Omit<JobRun, 'submittedAt' | 'handle' | 'outcome'> as JobRun;

  const finish = (signal: AbortSignal): void => {
    run.sawAbort = signal.aborted;
    run.endedAt = performance.now();
    probe.exit();
    endedResolve();
  };
  const begin = (): void => {
    run.started = true;
    probe.enter();
    if (spec.cancelFrom === 'start' && spec.cancelAfterMs !== undefined) {
      run.cancelTimer = setTimeout(() => issueCancel(run), spec.cancelAfterMs);
    }
  };
  const task =
    spec.failSync === true
      ? (signal: AbortSignal): never => {
          begin();
          try {
            throw spec.error;
          } finally {
            finish(signal);
          }
        }
      : async (signal: AbortSignal): Promise<string> => {
          begin();
          try {
            if (spec.kind === 'never') return await new Promise<never>(() => {});
            await sleep(spec.durationMs, undefined, spec.ignoresSignal ? {} : { signal });
            if (spec.kind === 'fail') throw spec.error;
            run.bodyCompleted = true;
            return 'ok';
          } finally {
            finish(signal);
          }
        };

  const submittedAt = performance.now();
  let handle: JobRun['handle'];
  try {
    handle = worker.submit(task, {
      name: `job-${spec.index}`,
      deadlineMs: spec.deadlineMs,
      signal: controller.signal,
    });
  } catch (error) {
    if (isEsperError(error, ErrorCode.WORKER_QUEUE_FULL)) return null;
    throw error;
  }
  const outcome = handle.result.then(
    (value): Outcome => ({ kind: 'ok', value, at: performance.now() }),
    (error: unknown) => classify(error, performance.now()),
  );
  Object.assign(run, { submittedAt, handle, outcome });
  if (spec.deadlineMs !== undefined) setTimeout(() => (run.referenceFiredAt = performance.now()), spec.deadlineMs);
  void outcome.then((settled) => (run.settled = settled));
  if (spec.cancelFrom === 'submit' && spec.cancelAfterMs !== undefined) {
    run.cancelTimer = setTimeout(() => issueCancel(run), spec.cancelAfterMs);
  }
  return run;
}

/** Waits for every result and every started task body, then checks each job's invariants. */
async function settleAndVerify(runs: readonly JobRun[], where: string): Promise<void> {
  await Promise.all(runs.map((run) => run.outcome));
  await Promise.all(runs.filter((run) => run.started && run.spec.kind !== 'never').map((run) => run.ended));
  for (const run of runs) {
    clearTimeout(run.cancelTimer);
    verifyRun(run, `${where} job#${run.spec.index} (${run.spec.kind}${run.spec.ignoresSignal ? ', ignores signal' : ''})`);
  }
}

/** How late the job's reference timer fired after the deadline (0 when it has not fired or was early). */
function referenceLatenessMs(run: JobRun): number {
  const { referenceFiredAt } = run;
  if (referenceFiredAt === undefined || run.spec.deadlineMs === undefined) return 0;
  return Math.max(0, referenceFiredAt - run.submittedAt - run.spec.deadlineMs);
}

function verifyRun(run: JobRun, where: string): void {
  const outcome = run.settled;
  const { spec } = run;
  expect(outcome, where).toBeDefined();
  if (outcome === undefined) return;

  if (outcome.kind === 'timeout') {
    expect(spec.deadlineMs, `${where}: timed out without a deadline`).toBeDefined();
    const latenessMs = outcome.at - run.submittedAt - (spec.deadlineMs ?? 0);
    const stallMs = (loopDelay.max / 1e6).toFixed(1);
    expect(
      latenessMs,
      `${where}: timeout fired ${latenessMs.toFixed(2)} ms after its deadline, a plain timer ${referenceLatenessMs(run).toFixed(2)} ms (worst event-loop stall so far ${stallMs} ms)`,
    ).toBeLessThanOrEqual(SOAK.timeoutSlackMs + referenceLatenessMs(run));
    expect(latenessMs, `${where}: timeout fired before its deadline`).toBeGreaterThanOrEqual(0);
  }
  if (outcome.kind === 'timeout' || outcome.kind === 'cancelled') {
    if (outcome.error.details.wasQueued === true) {
      expect(run.started, `${where}: aborted while queued yet started`).toBe(false);
    }
    if (run.started && spec.kind !== 'never') {
      expect(run.sawAbort, `${where}: abort never reached the task's signal`).toBe(true);
    }
    if (run.started && !spec.ignoresSignal && spec.kind !== 'never') {
      expect(run.bodyCompleted, `${where}: a cooperative task ran to completion after its abort`).toBe(false);
    }
    if (run.started && spec.ignoresSignal && run.endedAt !== undefined && run.endedAt - outcome.at > 5) {
      expect(run.handle.abandoned, `${where}: ran on after its abort but was not reported abandoned`).toBe(true);
    }
  }
  if (!spec.ignoresSignal && spec.kind !== 'never') {
    expect(run.handle.abandoned, `${where}: a cooperative task was reported abandoned`).toBe(false);
  }
  if (outcome.kind === 'ok') {
    expect(outcome.value, where).toBe('ok');
    if (spec.deadlineMs !== undefined) {
      expect(outcome.at - run.submittedAt, `${where}: completed after its deadline`).toBeLessThanOrEqual(
        spec.deadlineMs + SOAK.timeoutSlackMs + referenceLatenessMs(run),
      );
    }
  }

  // Close cancels whatever is still pending, whatever its kind (rapid reconfiguration).
  if (outcome.kind === 'cancelled' && outcome.error.details.source === 'shutdown') return;
  switch (spec.kind) {
    case 'ok':
      expect(outcome.kind, where).toBe('ok');
      break;
    case 'fail':
      expect(outcome.kind, where).toBe('failed');
      if (outcome.kind === 'failed') expect(outcome.error, `${where}: failure not propagated as-is`).toBe(spec.error);
      break;
    case 'timeout':
      expect(outcome.kind, where).toBe('timeout');
      break;
    case 'cancel':
      expect(outcome.kind, where).toBe(run.cancelEffective === true ? 'cancelled' : 'ok');
      if (outcome.kind === 'cancelled') {
        expect(outcome.error.details.source, where).toBe(spec.cancelVia === 'signal' ? 'signal' : 'handle');
      }
      break;
    case 'race':
      expect(['ok', 'timeout'], where).toContain(outcome.kind);
      break;
    case 'never':
      break;
  }
}

/** Checks the worker's counters against what the callers observed, once it is idle. */
async function verifyWorker(worker: AsyncWorker, runs: readonly JobRun[], probe: InFlightProbe, where: string): Promise<void> {
  await vi.waitFor(() => expect(worker.stats().running, where).toBe(0));
  const count = (kind: Outcome['kind']): number => runs.filter((run) => run.settled?.kind === kind).length;
  const stats = worker.stats();
  expect(probe.max, `${where}: concurrency exceeded`).toBeLessThanOrEqual(worker.options.maxConcurrency);
  expect(stats, where).toMatchObject({
    submitted: runs.length,
    started: runs.filter((run) => run.started).length,
    completed: count('ok'),
    failed: count('failed'),
    timedOut: count('timeout'),
    cancelled: count('cancelled'),
    abandoned: runs.filter((run) => run.handle.abandoned).length,
    abandonedNow: 0,
    queueDepth: 0,
  });
}

/** Runs `body` once per concurrency level, all levels at once, each with its own worker. */
async function perLevel(
  scenario: string,
  body: (worker: AsyncWorker, probe: InFlightProbe, where: string) => Promise<void>,
): Promise<void> {
  await Promise.all(
    SOAK.concurrencyLevels.map(async (level) => {
      const worker = new AsyncWorker({ name: `soak-${scenario}-c${level}`, maxConcurrency: level, shutdownTimeoutMs: 1000 });
      const probe = new InFlightProbe();
      try {
        await body(worker, probe, `${scenario} c=${level}`);
      } finally {
        const summary = await worker.close();
        expect(summary.drained, `${scenario} c=${level}: close did not drain`).toBe(true);
      }
    }),
  );
}

/** Submits specs with random arrival gaps of up to `maxGapMs`. */
async function submitPaced(
  worker: AsyncWorker,
  specs: readonly JobSpec[],
  probe: InFlightProbe,
  rng: Rng,
  maxGapMs: number,
): Promise<JobRun[]> {
  const runs: JobRun[] = [];
  for (const spec of specs) {
    const run = submitJob(worker, spec, probe);
    if (run === null) throw new Error(`job ${spec.index} refused: queue full`);
    runs.push(run);
    if (maxGapMs > 0 && rng.chance(0.5)) await sleep(rng.between(0, maxGapMs));
  }
  return runs;
}

function shortDurationMs(rng: Rng): number {
  return SOAK.shortJobMs + rng.between(0, SOAK.jitterMs);
}

describe('AsyncWorker soak', () => {
  it(
    'concurrent load never exceeds the concurrency limit and completes every job',
    async () => {
      const rng = makeRng(1);
      for (let iteration = 0; iteration < SOAK.iterations; iteration += 1) {
        await perLevel(`load seed=${rng.seed} it=${iteration}`, async (worker, probe, where) => {
          const specs = Array.from({ length: SOAK.jobsPerIteration }, (_, index): JobSpec => ({
            index,
            kind: 'ok',
            durationMs: shortDurationMs(rng),
            ignoresSignal: false,
          }));
          const runs = specs.map((spec) => submitJob(worker, spec, probe)).filter((run) => run !== null);
          expect(runs).toHaveLength(SOAK.jobsPerIteration);
          await settleAndVerify(runs, where);
          await verifyWorker(worker, runs, probe, where);
          const level = worker.options.maxConcurrency;
          expect(probe.max, `${where}: the pool never filled`).toBe(level);
          expect(worker.stats().maxQueueDepthSeen).toBe(SOAK.jobsPerIteration - level);
        });
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'timeout enforcement rejects every overdue job within the slack of its deadline counted from submission',
    async () => {
      const rng = makeRng(2);
      for (let iteration = 0; iteration < SOAK.iterations; iteration += 1) {
        await perLevel(`timeout seed=${rng.seed} it=${iteration}`, async (worker, probe, where) => {
          const specs = Array.from({ length: SOAK.jobsPerIteration }, (_, index): JobSpec => {
            const deadlineMs = SOAK.timeoutMs + rng.between(0, SOAK.jitterMs);
            const overdue = index % 16 === 0 || rng.chance(SOAK.timeoutProbability * 2);
            return {
              index,
              kind: overdue ? 'timeout' : 'race',
              durationMs: overdue ? 2 * SOAK.longJobMs : rng.between(SOAK.shortJobMs, SOAK.longJobMs),
              deadlineMs,
              ignoresSignal: index % 4 === 0,
            };
          });
          const runs = await submitPaced(worker, specs, probe, rng, 4);
          await settleAndVerify(runs, where);
          await verifyWorker(worker, runs, probe, where);
          const stats = worker.stats();
          expect(stats.timedOut).toBeGreaterThanOrEqual(specs.filter((spec) => spec.kind === 'timeout').length);
          expect(stats.abandoned, `${where}: no runaway task was caught running`).toBeGreaterThan(0);
        });
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    "mid-flight cancellation reaches each task's signal and queued cancellations never start",
    async () => {
      const rng = makeRng(3);
      for (let iteration = 0; iteration < SOAK.iterations; iteration += 1) {
        await perLevel(`cancel seed=${rng.seed} it=${iteration}`, async (worker, probe, where) => {
          const specs = Array.from({ length: SOAK.jobsPerIteration }, (_, index): JobSpec => {
            const cancelled = index % 16 === 1 || index % 16 === 5 || rng.chance(SOAK.cancellationProbability);
            if (!cancelled) return { index, kind: 'ok', durationMs: shortDurationMs(rng), ignoresSignal: false };
            return {
              index,
              kind: 'cancel',
              durationMs: SOAK.longJobMs,
              ignoresSignal: rng.chance(0.2),
              cancelAfterMs: SOAK.cancelDelayMs + rng.between(0, SOAK.jitterMs),
              cancelFrom: index % 16 === 5 ? 'submit' : 'start',
              cancelVia: rng.chance(0.5) ? 'handle' : 'signal',
            };
          });
          const runs = await submitPaced(worker, specs, probe, rng, 2);
          await settleAndVerify(runs, where);
          await verifyWorker(worker, runs, probe, where);
          const midFlight = runs.filter((run) => run.spec.cancelFrom === 'start');
          expect(midFlight.length).toBeGreaterThan(0);
          for (const run of midFlight) {
            expect(run.settled?.kind, `${where} job#${run.spec.index}`).toBe('cancelled');
            expect(run.sawAbort, `${where} job#${run.spec.index}`).toBe(true);
          }
        });
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'failure propagation hands every thrown value back unchanged and keeps the worker serving',
    async () => {
      const rng = makeRng(4);
      class SoakFailure extends Error {}
      const failures: readonly (() => unknown)[] = [
        () => new Error('plain failure'),
        () => new SoakFailure('custom failure'),
        () => new EsperError(ErrorCode.DEPENDENCY_VIOLATION, 'typed failure'),
        () => 'a thrown string',
        () => ({ reason: 'a thrown object' }),
      ];
      for (let iteration = 0; iteration < SOAK.iterations; iteration += 1) {
        await perLevel(`failure seed=${rng.seed} it=${iteration}`, async (worker, probe, where) => {
          const specs = Array.from({ length: SOAK.jobsPerIteration }, (_, index): JobSpec => {
            const fails = index % 16 === 2 || index % 16 === 3 || rng.chance(SOAK.failureProbability);
            if (!fails) return { index, kind: 'ok', durationMs: SOAK.shortJobMs, ignoresSignal: false };
            const makeError = failures[rng.int(0, failures.length - 1)] ?? failures[0];
            return {
              index,
              kind: 'fail',
              durationMs: SOAK.shortJobMs,
              ignoresSignal: false,
              error: makeError?.(),
              failSync: index % 16 === 3,
            };
          });
          const runs = specs.map((spec) => submitJob(worker, spec, probe)).filter((run) => run !== null);
          await settleAndVerify(runs, where);
          await verifyWorker(worker, runs, probe, where);
          expect(worker.stats().failed).toBe(specs.filter((spec) => spec.kind === 'fail').length);
          await expect(worker.submit(() => 'still serving').result).resolves.toBe('still serving');
        });
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'rapid reconfiguration: close/create cycles with varying concurrency shut down within their bound',
    async () => {
      const rng = makeRng(5);
      const cycles = SOAK.reconfigurationCycles * SOAK.iterations;
      for (let cycle = 0; cycle < cycles; cycle += 1) {
        const where = `reconfigure seed=${rng.seed} cycle=${cycle}`;
        const maxConcurrency = rng.int(1, 8);
        const shutdownTimeoutMs = SOAK.timeoutMs + rng.between(0, SOAK.jitterMs);
        const worker = new AsyncWorker({
          name: `soak-reconfigure-${cycle}`,
          maxConcurrency,
          maxQueueDepth: rng.int(4, 32),
          shutdownTimeoutMs,
        });
        const probe = new InFlightProbe();
        const withNever = cycle % 3 === 0;
        const runs: JobRun[] = [];
        let refused = 0;
        for (let index = 0; index < 24; index += 1) {
          const spec: JobSpec =
            withNever && index === 0
              ? { index, kind: 'never', durationMs: 0, ignoresSignal: true }
              : rng.chance(SOAK.failureProbability)
                ? { index, kind: 'fail', durationMs: shortDurationMs(rng), ignoresSignal: false, error: new Error(`f${index}`) }
                : { index, kind: 'race', durationMs: rng.between(SOAK.shortJobMs, SOAK.longJobMs), ignoresSignal: rng.chance(0.25) };
          const run = submitJob(worker, spec, probe);
          if (run === null) refused += 1;
          else runs.push(run);
        }
        expect(worker.stats().rejected, where).toBe(refused);
        await sleep(rng.between(0, 30));

        const closeStartedAt = performance.now();
        const summary = await worker.close();
        const closeTookMs = performance.now() - closeStartedAt;
        expect(closeTookMs, `${where}: close overran its ${shutdownTimeoutMs.toFixed(1)} ms bound`).toBeLessThanOrEqual(
          shutdownTimeoutMs + SOAK.timeoutSlackMs,
        );
        expect(worker.state).toBe('stopped');
        expect(
          runs.every((run) => run.settled !== undefined),
          `${where}: a result was left pending by close`,
        ).toBe(true);
        const shutdownCancels = runs.filter((run) => run.settled?.kind === 'cancelled' && run.settled.error.details.source === 'shutdown');
        expect(summary.cancelledQueued + summary.abortedRunning, where).toBe(shutdownCancels.length);
        expect(summary.abandoned, where).toBe(worker.stats().running);
        expect(summary.drained, where).toBe(summary.abandoned === 0);
        if (withNever && runs[0]?.started === true) {
          expect(summary.drained, `${where}: a never-settling task yet drained`).toBe(false);
          expect(summary.abandoned, where).toBeGreaterThanOrEqual(1);
        }
        expect(() => worker.submit(() => 'late'), where).toThrow(expect.objectContaining({ code: ErrorCode.WORKER_CLOSED }));

        await settleAndVerify(runs, where);
        await vi.waitFor(() => expect(worker.stats().running).toBe(withNever && runs[0]?.started === true ? 1 : 0));
        expect(probe.max, `${where}: concurrency exceeded`).toBeLessThanOrEqual(maxConcurrency);
        expect(worker.stats().abandonedNow, where).toBe(worker.stats().running);
      }
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'jitter storm of random durations, deadlines, cancels and failures keeps every invariant',
    async () => {
      const rng = makeRng(6);
      for (let iteration = 0; iteration < SOAK.iterations; iteration += 1) {
        await perLevel(`storm seed=${rng.seed} it=${iteration}`, async (worker, probe, where) => {
          const specs = Array.from({ length: SOAK.jobsPerIteration }, (_, index): JobSpec => {
            const slot = index % 16;
            const ignoresSignal = rng.chance(0.1);
            const cancelSpec = (): JobSpec => ({
              index,
              kind: 'cancel',
              durationMs: rng.between(SOAK.shortJobMs, SOAK.longJobMs),
              ignoresSignal,
              cancelAfterMs: SOAK.cancelDelayMs + rng.between(0, SOAK.jitterMs),
              cancelFrom: rng.chance(0.5) ? 'start' : 'submit',
              cancelVia: rng.chance(0.5) ? 'handle' : 'signal',
            });
            const timeoutSpec = (): JobSpec => ({
              index,
              kind: 'timeout',
              durationMs: 2 * SOAK.longJobMs,
              deadlineMs: SOAK.timeoutMs + rng.between(0, SOAK.jitterMs),
              ignoresSignal,
            });
            const failSpec = (): JobSpec => ({
              index,
              kind: 'fail',
              durationMs: shortDurationMs(rng),
              ignoresSignal,
              error: new Error(`storm failure ${index}`),
              failSync: rng.chance(0.3),
            });
            if (slot === 0) return timeoutSpec();
            if (slot === 1) return cancelSpec();
            if (slot === 2) return failSpec();
            const roll = rng.next();
            if (roll < SOAK.timeoutProbability) return timeoutSpec();
            if (roll < SOAK.timeoutProbability + SOAK.cancellationProbability) return cancelSpec();
            if (roll < SOAK.timeoutProbability + SOAK.cancellationProbability + SOAK.failureProbability) return failSpec();
            const durationMs = shortDurationMs(rng);
            if (rng.chance(0.3)) {
              return { index, kind: 'race', durationMs, deadlineMs: durationMs + rng.between(-10, 40), ignoresSignal };
            }
            return { index, kind: 'ok', durationMs, ignoresSignal };
          });
          const runs = await submitPaced(worker, specs, probe, rng, 3);
          await settleAndVerify(runs, where);
          await verifyWorker(worker, runs, probe, where);
        });
      }
    },
    SCENARIO_TIMEOUT_MS,
  );
});
